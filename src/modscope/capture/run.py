"""``capture``: stream chosen sites of a model over a corpus into an ActivationStore (RAM or Zarr, resumable)."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from modscope.capture import positions as pos
from modscope.capture.sampling import SAMPLES, balanced_rows
from modscope.capture.store import (
    FORMAT,
    FORMAT_VERSION,
    ActivationStore,
    RamWriter,
    ZarrWriter,
    read_manifest,
    repair_for_resume,
)
from modscope.corpus import Corpus, from_texts
from modscope.errors import ModscopeError
from modscope.locking import directory_lock, has_content, remove_orphans
from modscope.models import Model

TOKENS_PER_BATCH = 4096


@dataclass(frozen=True)
class _Doc:
    doc_id: str
    category: str
    ids: np.ndarray  # token ids, already cut to ctx
    rows: np.ndarray  # positions captured as rows


def capture(
    model: Model,
    source: Corpus | Sequence[str] | Sequence[Sequence[int]],
    sites: str | Sequence[str],
    *,
    positions: pos.PositionSpec = None,
    max_tokens: int | None = None,
    ctx: int = 512,
    batch_size: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    sample: str = "balanced",
    seed: int = 0,
) -> ActivationStore:
    """Run ``model`` over ``source`` and keep ``sites`` at the chosen token positions.

    Args:
        model: a loaded ``Model``.
        source: a ``Corpus``, a list of strings, or a list of token-id sequences.
        sites: site names or patterns (``'resid_post.*'``), see ``Model.select_sites``.
        positions: which positions of each document become rows: ``None``/``'all'``, ``'last:K'``, ``'first:K'``,
            ``'range:A:B'``, an int or a list of ints (negative counts from the end).
        max_tokens: keep this many rows (positions) in total; when the source holds more, ``sample`` chooses them.
        ctx: documents are cut to their first ``ctx`` tokens.
        batch_size: documents per forward pass (default: about 4096 tokens per batch).
        out: a directory for a Zarr store (resumable, bounded memory; locked while the capture runs, so a second
            capture into it is refused naming this one); None keeps the store in RAM.
        progress: show a progress bar with tokens/s.
        sample: how ``max_tokens`` rows are chosen when the source holds more: ``'balanced'`` (a seeded sample of
            documents drawn round-robin over the categories, see ``capture.sampling.balanced_rows``; with
            ``positions='all'`` the rows are spread over each document, otherwise the given positions are kept) or
            ``'first'`` (the first documents in source order). Recorded in the store's settings with ``seed``.
        seed: seeds the balanced sample's choice of documents.

    Returns:
        An ``ActivationStore`` whose rows follow the planned document order (source order, or the balanced
        sample's round-robin order), then position order.
    """
    site_names, docs, manifest, batch_size = plan_capture(model, source, sites, positions=positions,
                                                          max_tokens=max_tokens, ctx=ctx, batch_size=batch_size,
                                                          sample=sample, seed=seed)
    if out is None:
        return _run(model, docs, site_names, RamWriter(manifest), batch_size, progress)
    with directory_lock(out):
        remove_orphans(out)  # a killed flush may have left torn chunk files; nobody else writes here now
        existing = repair_for_resume(Path(out), _resumable(Path(out), manifest, model), batch_size)
        if existing is not None and existing.get("complete"):
            return ActivationStore.open(Path(out))
        if existing is not None:
            manifest.update(rows_done=existing["rows_done"], docs_done=existing["docs_done"])
        writer = ZarrWriter(Path(out), manifest, _chunk_rows(manifest))
        return _run(model, docs, site_names, writer, batch_size, progress)


def _run(model: Model, docs: list[_Doc], site_names: list[str], writer: RamWriter | ZarrWriter, batch_size: int,
         progress: bool) -> ActivationStore:
    manifest = writer.manifest
    todo = range(manifest["docs_done"], len(docs), batch_size)
    with _progress(progress, sum(len(d.ids) for d in docs[manifest["docs_done"]:])) as advance:
        for start in todo:
            batch = docs[start: start + batch_size]
            site_rows, meta_rows = _forward(model, batch, start, site_names)
            writer.append(site_rows, meta_rows, docs_done=start + len(batch))
            advance(sum(len(d.ids) for d in batch))
    return writer.finish()


def plan_capture(model: Model, source, sites, *, positions: pos.PositionSpec, max_tokens: int | None, ctx: int,
                 batch_size: int | None = None, sample: str = "balanced", seed: int = 0
                 ) -> tuple[list[str], list[_Doc], dict, int]:
    """Check the arguments, tokenise and choose rows; returns (site names, documents, a fresh manifest, documents
    per forward pass: ``batch_size``, or about ``TOKENS_PER_BATCH`` tokens' worth when it is None).

    Shared by ``capture`` and the sharded capture, so both plan (and fingerprint) a capture identically.
    """
    site_names = model.select_sites(sites)
    if max_tokens is not None and max_tokens <= 0:
        raise ModscopeError(f"max_tokens must be > 0, got {max_tokens}")
    if ctx <= 0 or ctx > model.n_ctx:
        raise ModscopeError(f"ctx must be in 1..{model.n_ctx} for {model.name}, got {ctx}")
    if sample not in SAMPLES:
        raise ModscopeError(f"sample must be one of {', '.join(SAMPLES)}, got '{sample}'")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ModscopeError(f"the sample seed must be an integer, got {seed!r}")
    spec = pos.normalise(positions)
    docs = _plan(model, source, spec, ctx, max_tokens, sample, int(seed))
    if not docs:
        raise ModscopeError("nothing to capture: the source is empty or no document has the requested positions")
    shapes = model.sites()
    settings = {"positions": spec, "ctx": ctx, "max_tokens": max_tokens, "sample": sample, "seed": int(seed),
                "source_hash": _source_hash(docs)}
    rows = sum(len(d.rows) for d in docs)
    if max_tokens is not None and rows < max_tokens:
        # the source ran out first: say so (and keep it in the store) rather than capture fewer rows silently
        settings["max_tokens_capped_to"] = rows
        print(f"modscope: note: --max-tokens {max_tokens} is more than the source holds at these positions; "
              f"capturing all {rows} rows", file=sys.stderr)
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "model": {**model.describe(), "fingerprint": model.fingerprint},
        "sites": {s: list(shapes[s]) for s in site_names}, "settings": settings,
        "docs": [[d.doc_id, d.category] for d in docs], "rows_done": 0, "docs_done": 0, "complete": False,
    }
    if batch_size is not None and batch_size < 1:
        raise ModscopeError(f"batch_size must be >= 1 (or omitted for about {TOKENS_PER_BATCH} tokens per batch), "
                            f"got {batch_size}")
    return site_names, docs, manifest, batch_size or max(1, TOKENS_PER_BATCH // ctx)


def _plan(model: Model, source, spec: str, ctx: int, max_tokens: int | None, sample: str = "first", seed: int = 0
          ) -> list[_Doc]:
    if isinstance(source, (str, Path)):
        raise ModscopeError("source must be a Corpus, a list of texts or a list of token-id lists, not one string; "
                            "load a corpus with modscope.corpus.load(...)")
    items = list(source)
    if not items:
        raise ModscopeError("nothing to capture: the source is empty (give texts, token lists or a non-empty corpus)")
    if items and not isinstance(items[0], (str, Corpus)) and not hasattr(items[0], "text"):
        token_lists = [np.asarray(ids, dtype=np.int64)[:ctx] for ids in items]
        named = [(f"tokens/{i}", "default") for i in range(len(items))]
    else:
        corpus = source if isinstance(source, Corpus) else from_texts(items)
        token_lists = [np.asarray(ids, dtype=np.int64) for ids in model.tokenize(corpus.texts, max_tokens=ctx)]
        named = [(d.id, d.category) for d in corpus.docs]
    available = [pos.select(spec, len(ids)) for ids in token_lists]
    if sample == "balanced" and max_tokens is not None and sum(len(a) for a in available) > max_tokens:
        # explicit positions (last:K, a list, ...) are the user's choice: keep them, only choose the documents
        chosen = balanced_rows([category for _, category in named], available, max_tokens, seed=seed,
                               spread=spec == "all")
    else:  # the first documents in source order, the last one cut to the rows left of max_tokens
        before = np.cumsum([0, *map(len, available)])  # rows of the documents before each one
        limit = before[-1] if max_tokens is None else max_tokens
        chosen = [(i, rows[: limit - before[i]]) for i, rows in enumerate(available) if len(rows) and before[i] < limit]
    docs = []
    for index, rows in chosen:
        (doc_id, category), ids = named[index], token_lists[index]
        if len(ids) and ids.max() >= model.vocab_size:
            raise ModscopeError(f"token id {int(ids.max())} in {doc_id} is outside {model.name}'s vocabulary "
                                f"({model.vocab_size})")
        # positions after the last captured row cannot influence it (causal): don't compute them
        docs.append(_Doc(doc_id, category, ids[: rows[-1] + 1], np.asarray(rows, dtype=np.int64)))
    return docs


def _source_hash(docs: list[_Doc]) -> str:
    digest = hashlib.sha1()
    for d in docs:
        digest.update(d.ids.tobytes())
        digest.update(d.rows.tobytes())
    return digest.hexdigest()[:16]


def _resumable(path: Path, manifest: dict, model: Model, *, sharded: bool = False) -> dict | None:
    """The manifest of an earlier capture into ``path`` with the same model, sites and settings (or None)."""
    existing = read_manifest(path) if path.exists() else None
    if existing is None:
        if has_content(path):  # the lock's own files do not count: a directory holding only them is empty
            raise ModscopeError(f"{path} exists and is not a capture store: choose an empty or new --out directory")
        return None
    if existing.get("sharded") and not existing.get("complete") and not sharded:
        raise ModscopeError(f"{path} holds an unfinished sharded capture: resume it with `modscope capture-shard` "
                            "(capture_sharded) and the same arguments, or use another --out")
    if existing["model"]["fingerprint"] != manifest["model"]["fingerprint"]:
        raise ModscopeError(f"{path} was captured from model '{existing['model']['name']}', not '{model.name}': "
                            "use another --out to capture a different model")
    if existing["sites"] != manifest["sites"] or not _same_settings(existing["settings"], manifest["settings"]):
        hint = ("; it was made by an earlier modscope, which took the first documents: resume it with "
                "--sample first (sample='first')" if "sample" not in existing["settings"] else "")
        raise ModscopeError(f"{path} holds a capture with other sites or settings "
                            f"({', '.join(existing['sites'])}; {existing['settings']}): use another --out{hint}")
    return existing


def _same_settings(existing: dict, planned: dict) -> bool:
    """Equal capture settings. Stores made before sampling existed record no ``sample``/``seed``: they took the
    first documents, and resume when the planned rows are the same (``source_hash`` covers every token and position).
    """
    if "sample" not in existing:
        planned = {k: v for k, v in planned.items() if k not in ("sample", "seed")}
    return existing == planned


def _chunk_rows(manifest: dict) -> int:
    """Rows per Zarr chunk: about 32 MB for the widest site, between 256 and 4096 rows."""
    widest = max(int(np.prod(s)) for s in manifest["sites"].values())
    return max(256, min(4096, (32 << 20) // (4 * widest)))


@torch.inference_mode()
def _forward(model: Model, batch: list[_Doc], first_doc: int, sites: list[str]):
    """One padded forward pass; returns the selected rows of every site and their metadata."""
    length = max(len(d.ids) for d in batch)
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(batch), length), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for i, d in enumerate(batch):
        input_ids[i, : len(d.ids)] = torch.from_numpy(d.ids)
        mask[i, : len(d.ids)] = 1
    b_idx = torch.from_numpy(np.concatenate([np.full(len(d.rows), i) for i, d in enumerate(batch)]))
    t_idx = torch.from_numpy(np.concatenate([d.rows for d in batch]))
    values = model.run_with_sites(input_ids, sites, attention_mask=mask if length * len(batch) > mask.sum() else None,
                                  select=lambda t: t[b_idx, t_idx])
    site_rows = {s: values[s].to(torch.float32).numpy() for s in sites}
    meta_rows = {
        "doc": np.concatenate([np.full(len(d.rows), first_doc + i) for i, d in enumerate(batch)]),
        "position": t_idx.numpy().astype(np.int64),
        "token": input_ids[b_idx, t_idx].numpy(),
    }
    return site_rows, meta_rows


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    """A rich progress bar counting tokens, with tokens/s, yielding ``advance(n)``; or nothing."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("capture"), BarColumn(), MofNCompleteColumn(), TextColumn("tokens"),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("capture", total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f} tok/s" if speed else "")

        yield advance
