"""Sharded capture: several processes (or Dask workers) fill disjoint document ranges of one Zarr store.

The coordinator tokenises and plans once (the plan, with every document's token ids and captured positions, is
saved in the store as ``plan.npz``), sizes every array to its final row count, and hands out shards of whole
batches. A shard computes exactly the batches a single-process capture would, so its rows are bit-identical, and
writes them into its row region. Chunks that straddle a region boundary are written under a per-chunk lock (a
``filelock`` file lock, or a ``distributed.Lock`` on Dask). Each shard commits its progress to ``shards/<k>.json``
after every flush, so a killed capture resumes shard by shard; the main manifest is marked complete when every shard
is.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from modscope.capture import positions as pos
from modscope.capture.run import (
    _chunk_rows,
    _Doc,
    _forward,
    _resumable,
    plan_capture,
)
from modscope.capture.store import MANIFEST, ActivationStore, _open_group, array_layout, read_manifest, record_checksums
from modscope.errors import ModscopeError
from modscope.locking import directory_lock, remove_orphans
from modscope.paths import write_json_atomic

PLAN = "plan.npz"
SHARD_BACKENDS = ("processes", "dask", "serial")


def plan_shards(docs: list[_Doc], batch_size: int, shards: int) -> list[dict]:
    """Contiguous shards of whole batches with about equal token counts: [{docs: [a, b], rows: [r0, r1]}, ...]."""
    starts = list(range(0, len(docs), batch_size))
    tokens = np.array([sum(len(d.ids) for d in docs[s:s + batch_size]) for s in starts], dtype=np.float64)
    shards = max(1, min(shards, len(starts)))
    cuts = np.searchsorted(np.cumsum(tokens), tokens.sum() * np.arange(1, shards) / shards)
    bounds = [0, *sorted(set(int(c) + 1 for c in cuts) - {len(starts)}), len(starts)]
    row_offsets = np.concatenate([[0], np.cumsum([len(d.rows) for d in docs])])
    plan = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        d0, d1 = starts[a], min(len(docs), starts[b - 1] + batch_size)
        plan.append({"docs": [d0, d1], "rows": [int(row_offsets[d0]), int(row_offsets[d1])]})
    return plan


def _save_plan(path: Path, docs: list[_Doc]) -> None:
    tmp = path / f".{PLAN}.tmp.npz"
    np.savez(tmp, ids=np.concatenate([d.ids for d in docs]), id_lengths=[len(d.ids) for d in docs],
             rows=np.concatenate([d.rows for d in docs]), row_lengths=[len(d.rows) for d in docs])
    os.replace(tmp, path / PLAN)


def _load_plan(path: Path, manifest: dict) -> list[_Doc]:
    with np.load(path / PLAN) as plan:
        ids = np.split(plan["ids"], np.cumsum(plan["id_lengths"])[:-1])
        rows = np.split(plan["rows"], np.cumsum(plan["row_lengths"])[:-1])
    return [_Doc(doc_id, category, i, r) for (doc_id, category), i, r in zip(manifest["docs"], ids, rows)]


def capture_sharded(
    model: Any,
    source: Any,
    sites: str | Sequence[str],
    *,
    out: str | Path,
    shards: int = 2,
    positions: pos.PositionSpec = None,
    max_tokens: int | None = None,
    ctx: int = 512,
    batch_size: int | None = None,
    backend: str = "processes",
    client: Any = None,
    scheduler: str | None = None,
    start_method: str = "spawn",
    sample: str = "balanced",
    seed: int = 0,
    engine: str | None = None,
) -> ActivationStore:
    """``capture(..., out=out)`` spread over ``shards`` workers; the store equals a single-process capture row for row.

    Args:
        model: a loaded ``Model`` or a model name. Worker processes reload it by name and seed and check its
            fingerprint; Dask workers receive the loaded model (scattered once).
        source, sites, positions, max_tokens, ctx, batch_size, sample, seed: as ``capture``.
        out: the Zarr directory (required). Re-running with the same arguments resumes unfinished shards. This
            process (not the workers, which write disjoint regions of it) holds its lock for the whole capture.
        shards: number of disjoint document ranges (each a whole number of batches).
        backend: where the shards run: ``processes`` (a local process pool), ``dask`` (one task per shard on
            ``client`` / ``scheduler`` / a LocalCluster), or ``serial`` (one after another in this process).
            ``engine=`` is its old name, accepted for one release.
        start_method: how ``processes`` starts workers: ``spawn`` (clean, a few seconds of imports each) or
            ``fork`` (instant; safe here because torch resets its thread pool in a forked child).

    Returns:
        The completed ``ActivationStore``.
    """
    from modscope.models import Model, load_model

    backend = engine if engine is not None else backend
    if backend not in SHARD_BACKENDS:
        raise ModscopeError(f"unknown shard backend '{backend}'; use one of: {', '.join(SHARD_BACKENDS)}")
    if shards < 1:
        raise ModscopeError(f"shards must be >= 1, got {shards}")
    model = model if isinstance(model, Model) else load_model(str(model))
    path = Path(out)
    _, docs, manifest, batch_size = plan_capture(model, source, sites, positions=positions, max_tokens=max_tokens,
                                                 ctx=ctx, batch_size=batch_size, sample=sample, seed=seed)
    with directory_lock(path):
        remove_orphans(path)  # before any worker starts: what is there now was left by a killed run
        return _capture_locked(model, path, docs, manifest, batch_size, shards, backend, client, scheduler,
                               start_method)


def _capture_locked(model: Any, path: Path, docs: list[_Doc], manifest: dict, batch_size: int, shards: int,
                    backend: str, client: Any, scheduler: str | None, start_method: str) -> ActivationStore:
    existing = _resumable(path, manifest, model, sharded=True)
    if existing is not None and existing.get("complete"):
        return ActivationStore.open(path)
    plan = plan_shards(docs, batch_size, shards)
    if existing is not None and existing.get("sharded", {}).get("plan") != plan:
        raise ModscopeError(f"{path} holds an unfinished capture with another shard plan (or a plain capture); "
                            f"resume it with the same --shards and batch size, or use another --out")
    if existing is None:
        _create(path, manifest, docs, plan, batch_size)
    jobs = [(model.name, model.seed, model.fingerprint, str(path), k) for k in range(len(plan))]
    if backend == "serial":
        for job in jobs:
            run_shard(*job, model=model)
    elif backend == "processes":
        threads = max(1, (os.cpu_count() or 1) // len(jobs))
        with ProcessPoolExecutor(len(jobs), mp_context=get_context(start_method)) as pool:
            list(pool.map(_run_shard_in_process, [(*job, threads) for job in jobs]))
    else:
        from modscope.distributed.cluster import dask_client

        with dask_client(client, scheduler) as dask:
            # ship the loaded model once per worker: workers then need no model cache, and concurrent random
            # inits in one process's threads (in-process workers) could not race on torch's global RNG
            shared = dask.scatter(model, broadcast=True)
            dask.gather([dask.submit(run_shard, *job, model=shared, lock="dask", pure=False) for job in jobs])
    return _finish(path)


def _create(path: Path, manifest: dict, docs: list[_Doc], plan: list[dict], batch_size: int) -> None:
    import zarr

    n_rows = plan[-1]["rows"][1]
    chunk_rows = _chunk_rows(manifest)
    group = zarr.open_group(str(path), mode="a")  # not "w": that would delete the lock held on the directory
    for name, shape, dtype in array_layout(manifest):
        group.create_array(name, shape=(n_rows, *shape), chunks=(chunk_rows, *shape), dtype=dtype, compressors=None,
                           fill_value=np.nan if dtype == "float32" else 0)
    _save_plan(path, docs)
    (path / "shards").mkdir(exist_ok=True)
    manifest["sharded"] = {"plan": plan, "batch_size": batch_size, "chunk_rows": chunk_rows}
    write_json_atomic(path / MANIFEST, manifest)


def _finish(path: Path) -> ActivationStore:
    manifest = read_manifest(path)
    plan = manifest["sharded"]["plan"]
    missing = [k for k, shard in enumerate(plan) if _shard_done(path, k) < shard["docs"][1]]
    if missing:
        raise ModscopeError(f"shards {missing} of {path} did not finish; re-run the same command to resume them")
    manifest.update(rows_done=plan[-1]["rows"][1], docs_done=len(manifest["docs"]), complete=True)
    record_checksums(path, manifest)
    write_json_atomic(path / MANIFEST, manifest)
    return ActivationStore.open(path)


def _shard_done(path: Path, k: int) -> int:
    """Absolute index one past the last document shard ``k`` has committed (its start if it has none)."""
    file = path / "shards" / f"{k}.json"
    if file.exists():
        return int(json.loads(file.read_text())["docs_done"])
    return int(read_manifest(path)["sharded"]["plan"][k]["docs"][0])


@contextlib.contextmanager
def _chunk_lock(path: Path, chunk: int, kind: str):
    """Exclusive access to one row chunk of every array while a partial chunk is read, modified and written."""
    if kind == "dask":
        from distributed import Lock

        with Lock(f"modscope-capture:{path.resolve()}:{chunk}"):
            yield
        return
    from filelock import FileLock

    (path / "shards").mkdir(exist_ok=True)
    with FileLock(str(path / "shards" / f"chunk-{chunk}.lock")):  # flock on POSIX, LockFileEx on Windows
        yield


def _write_region(group: Any, path: Path, chunk_rows: int, start: int, blocks: dict[str, np.ndarray],
                  lock: str) -> None:
    """Write rows [start, start + len) of every array, chunk by chunk; a chunk the region covers only in part may
    also hold another shard's rows, so it is read-modified-written under that chunk's lock."""
    stop = start + len(next(iter(blocks.values())))
    for chunk in range(start // chunk_rows, -(-stop // chunk_rows)):
        lo, hi = max(start, chunk * chunk_rows), min(stop, (chunk + 1) * chunk_rows)
        partial = lo != chunk * chunk_rows or hi != (chunk + 1) * chunk_rows
        with _chunk_lock(path, chunk, lock) if partial else contextlib.nullcontext():
            for name, block in blocks.items():
                group[name][lo:hi] = block[lo - start:hi - start]


def run_shard(model_name: str, seed: int, fingerprint: str, path: str, k: int, *, model: Any = None,
              lock: str = "file") -> int:
    """Capture shard ``k`` of the store at ``path`` (resuming after its last commit); returns rows written."""
    path = Path(path)
    manifest = read_manifest(path)
    info = manifest["sharded"]
    shard = info["plan"][k]
    if model is None:
        from modscope.models import load_model

        model = load_model(model_name, seed=seed)
    elif lock == "dask":
        # a worker shares deserialised data between its threads, and site hooks live on the module: own a copy
        model = copy.deepcopy(model)
    if model.fingerprint != fingerprint:
        raise ModscopeError(f"worker loaded '{model_name}' with another fingerprint than the coordinator's model; "
                            "give workers the same weights (a shared cache or model directory)")
    docs = _load_plan(path, manifest)
    group = _open_group(path, "r+")
    sites, batch_size, chunk_rows = list(manifest["sites"]), info["batch_size"], info["chunk_rows"]
    row_offsets = np.concatenate([[0], np.cumsum([len(d.rows) for d in docs])])
    done, end = _shard_done(path, k), shard["docs"][1]
    written, buffer, buffered_from = 0, [], done
    for start in range(done, end, batch_size):
        batch = docs[start:min(start + batch_size, end)]
        buffer.append(_forward(model, batch, start, sites))
        rows = int(row_offsets[start + len(batch)] - row_offsets[buffered_from])
        if rows >= chunk_rows or start + batch_size >= end:
            blocks = {f"sites/{s}": np.concatenate([b[0][s] for b in buffer]) for s in sites}
            blocks |= {f"meta/{m}": np.concatenate([b[1][m] for b in buffer]) for m in buffer[0][1]}
            _write_region(group, path, chunk_rows, int(row_offsets[buffered_from]), blocks, lock)
            write_json_atomic(path / "shards" / f"{k}.json", {"docs_done": start + len(batch), "rows": shard["rows"]})
            written, buffer, buffered_from = written + rows, [], start + len(batch)
    return written


def _run_shard_in_process(job: tuple) -> int:
    import torch

    *args, threads = job
    torch.set_num_threads(threads)
    return run_shard(*args)
