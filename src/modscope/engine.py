"""One engine for every streaming statistic: a per-chunk kernel mapped over a source, the partials merged exactly.

A source is a numpy array, a Zarr array, a ``(store, site)`` pair of a capture store, or a list of such arrays
with the same rows (a chunk of several is their slices side by side, ``[rows, d_1 + d_2 + ...]``). The same
``kernel`` and ``merge`` run on both engines: ``local`` folds the partials in order in this process, one chunk in
memory at a time (reads of on-disk arrays prefetched on a thread); ``dask`` makes one task per chunk (each task
reads its own slice) and merges the partials ``SPLIT_EVERY`` at a time in a tree. The merges are exact (sums, Chan
et al.'s moment merge, min/max), so both engines agree up to floating-point reassociation (~1e-15 relative).
This module imports no probe: the probes import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from modscope.distributed.cluster import dask_client
from modscope.errors import ModscopeError

ENGINES = ("local", "dask")
ENGINE_ALIASES = {"numpy": "local"}  # training's old spelling, accepted for one release
DEFAULT_ROWS = 8192  # rows per chunk of the local engine
DEFAULT_CHUNK_BYTES = 32 << 20  # float32 input bytes per Dask task when the array has no chunking of its own
SPLIT_EVERY = 8  # partials merged per reduction task on Dask


def check_engine(engine: str) -> str:
    """The engine name, validated: ``local`` or ``dask`` (``numpy`` is read as ``local``)."""
    engine = ENGINE_ALIASES.get(engine, engine)
    if engine not in ENGINES:
        raise ModscopeError(f"unknown engine '{engine}'; use one of: {', '.join(ENGINES)}")
    return engine


def as_rows(batch: Any) -> np.ndarray:
    """A batch as a 2-D array [rows, features] in its own dtype: a vector is one column, per-token shapes like
    [heads, d_model] are flattened."""
    arr = np.asarray(batch)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if not np.issubdtype(arr.dtype, np.number):
        raise ModscopeError(f"expected a numeric array, got dtype {arr.dtype}")
    return arr


def resolve(source: Any) -> Any:
    """An array-like from an array, a Zarr array, or a ``(store, site)`` pair of an ActivationStore."""
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], str):
        store, site = source
        if site not in store.sites:
            raise ModscopeError(f"site '{site}' is not in the store; it holds {', '.join(store.sites)}")
        return store[site]
    return source if hasattr(source, "shape") and hasattr(source, "__getitem__") else np.asarray(source)


def feature_dim(array: Any) -> int:
    """Columns of one row once flattened (1 for a vector)."""
    return int(np.prod(array.shape[1:])) if len(array.shape) > 1 else 1


def _sources(source: Any) -> list[Any]:
    arrays = [resolve(s) for s in (source if isinstance(source, list) else [source])]
    if any(len(a.shape) == 0 for a in arrays):
        raise ModscopeError("expected rows [rows, features]: an array, a Zarr array or (store, site); got a scalar "
                            f"({type(source).__name__})")
    n_rows = {int(a.shape[0]) for a in arrays}
    if len(n_rows) != 1:
        raise ModscopeError(f"sources have different row counts {sorted(n_rows)}; capture them on the same tokens")
    return arrays


def read_rows(sources: Sequence[Any], start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of every source, flattened to [rows, features] and placed side by side."""
    parts = [as_rows(s[start:stop]) for s in sources]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1, dtype=np.result_type(*parts))


class Span(NamedTuple):
    """Rows ``[start, stop)`` of a source: one chunk."""

    start: int
    stop: int


def chunk_spans(sources: Sequence[Any], *, chunk_rows: int | None = None,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[Span]:
    """Row chunks covering the sources; by default the first source's Zarr chunks, grown to ~``chunk_bytes`` of
    float32, so that no task reads a Zarr chunk another task also reads."""
    sources = _sources(list(sources))
    total = int(sources[0].shape[0])
    if chunk_rows is None:
        target = max(1, chunk_bytes // (4 * max(sum(feature_dim(s) for s in sources), 1)))
        native = getattr(sources[0], "chunks", None)
        native = int(native[0]) if isinstance(native, tuple) and native else None
        chunk_rows = target if not native else native * max(1, target // native)
    if chunk_rows < 1:
        raise ModscopeError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return [Span(lo, min(lo + chunk_rows, total)) for lo in range(0, total, chunk_rows)]


def iter_chunks(source: Any, *, chunk_rows: int = DEFAULT_ROWS) -> Iterator[np.ndarray]:
    """The one streaming loop: chunks [rows, features] of a source in row order, one in memory at a time.

    Reads of on-disk arrays run on a thread one chunk ahead, so that decompression overlaps the kernel.
    """
    sources = _sources(source)
    spans = chunk_spans(sources, chunk_rows=chunk_rows)
    if all(isinstance(s, np.ndarray) for s in sources):
        yield from (read_rows(sources, *span) for span in spans)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(read_rows, sources, *span) for span in spans[:1]]
        for span in spans[1:]:  # submit the next read before handing out the chunk already read
            pending.append(pool.submit(read_rows, sources, *span))
            yield pending.pop(0).result()
        yield from (future.result() for future in pending)


def fold(parts: Iterator[Any], merge: Callable[[list], Any]) -> Any:
    """The local engine: merge the partials in order as they come, one partial and the running result in memory."""
    result = None
    for part in parts:
        result = part if result is None else merge([result, part])
    if result is None:
        raise ModscopeError("nothing to reduce: the source has no rows")
    return result


def reduce_tasks(task: Callable[..., Any], args: Sequence[tuple], merge: Callable[[list], Any], *,
                 engine: str = "local", client: Any = None, scheduler: str | None = None) -> Any:
    """``merge`` of ``task(*a)`` over every ``a`` in ``args``, in order, here or on a Dask cluster.

    Args:
        task: computes one partial result (top-level, so that it pickles to workers).
        args: the argument tuple of each task.
        merge: a list of partials -> one partial (exact and associative; the order of the list is kept).
        engine: ``local`` (sequential fold, one partial in memory at a time) or ``dask`` (a tree of merges,
            ``SPLIT_EVERY`` partials each). client, scheduler: see ``modscope.distributed.dask_client``.
    """
    if check_engine(engine) == "local":
        return fold((task(*a) for a in args), merge)
    if not args:
        raise ModscopeError("nothing to reduce: the source has no rows")
    with dask_client(client, scheduler) as dask:
        shared: dict[int, Any] = {}  # large in-memory arguments are sent once, not pickled into every task
        for value in (v for a in args for v in a):
            if id(value) not in shared and (
                    (isinstance(value, np.ndarray) and value.nbytes > 1 << 20)
                    or (isinstance(value, list) and any(isinstance(v, np.ndarray) for v in value))):
                shared[id(value)] = dask.scatter(value, broadcast=False)
        futures = [dask.submit(task, *(shared.get(id(v), v) for v in a), pure=False) for a in args]
        while len(futures) > 1:
            futures = [dask.submit(merge, futures[i:i + SPLIT_EVERY], pure=False)
                       for i in range(0, len(futures), SPLIT_EVERY)]
        return futures[0].result()


def apply_to_rows(kernel: Callable[[np.ndarray], Any], sources: list[Any], start: int, stop: int) -> Any:
    """One task of ``map_reduce``: read rows ``[start, stop)`` and apply the kernel."""
    return kernel(read_rows(sources, start, stop))


def map_reduce(kernel: Callable[[np.ndarray], Any], source: Any, merge: Callable[[list], Any], *,
               engine: str = "local", chunk_rows: int | None = None, client: Any = None,
               scheduler: str | None = None) -> Any:
    """Apply ``kernel`` to every row chunk of ``source`` and ``merge`` the partial results.

    Args:
        kernel: chunk [rows, features] -> partial result. merge: list of partials -> partial.
        source: a numpy or Zarr array, a ``(store, site)`` pair, or a list of them with the same rows.
        engine: ``local`` or ``dask``. client, scheduler: the Dask client or scheduler address.
        chunk_rows: rows per chunk. Default: ``DEFAULT_ROWS`` (8192) locally; on Dask the Zarr chunks grown to
            about 32 MB of float32, or less so that a worker's tasks fit its memory limit (``task_bytes``).

    Returns:
        The merged partial of all chunks.
    """
    sources = _sources(source)
    if check_engine(engine) == "local":
        return fold((kernel(c) for c in iter_chunks(sources, chunk_rows=chunk_rows or DEFAULT_ROWS)), merge)
    with dask_client(client, scheduler) as dask:
        spans = chunk_spans(sources, chunk_rows=chunk_rows, chunk_bytes=task_bytes(dask))
        return reduce_tasks(apply_to_rows, [(kernel, sources, *s) for s in spans], merge, engine="dask",
                            client=dask)


def task_bytes(client: Any) -> int:
    """Input bytes per Dask task: 32 MB, or less so that a worker's tasks fit in its memory limit.

    A task holds its float32 chunk, a float64 copy and the kernel's temporaries (about 4x the input), and a
    worker runs one task per thread: so at most ``memory_limit / (8 x threads)``.
    """
    workers = client.scheduler_info().get("workers", {}).values()
    limits = [w["memory_limit"] / (8 * max(1, w.get("nthreads", 1))) for w in workers if w.get("memory_limit")]
    return int(min([DEFAULT_CHUNK_BYTES, *limits]))
