"""A map-reduce over row (or column) chunks of Zarr/numpy arrays: one kernel per chunk, an exact merge of partials.

The same two functions run on both engines. ``local`` folds the partials in order in this process; ``dask``
submits one task per chunk (each task reads its own slice, so a worker holds one chunk at a time) and merges the
partials in a tree. Because the merges are exact (sums, Chan et al.'s moment merge, min/max), both engines give the
same answer up to floating-point reassociation (~1e-15 relative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modscope.distributed.engine import check_engine, dask_client
from modscope.errors import ModscopeError

DEFAULT_CHUNK_BYTES = 32 << 20  # bytes of float32 input per task when the array has no chunking of its own
SPLIT_EVERY = 8  # partials merged per reduction task


@dataclass(frozen=True)
class Span:
    """Rows ``[start, stop)`` (or columns, along ``axis`` 1) of every source; ``limit`` caps the other axis."""

    start: int
    stop: int
    axis: int = 0
    limit: int | None = None


def read_span(sources: Sequence[Any], span: Span) -> np.ndarray:
    """The slice of each source, flattened to [rows, features] and placed side by side (row-aligned sources)."""
    parts = []
    for source in sources:
        if span.axis == 0:
            block = np.asarray(source[span.start:span.stop])
        else:
            block = np.asarray(source[:span.limit, span.start:span.stop])
        parts.append(block.reshape(block.shape[0], -1))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1, dtype=np.result_type(*parts))


def chunk_spans(sources: Sequence[Any], *, axis: int = 0, chunk: int | None = None, limit: int | None = None,
                stop: int | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[Span]:
    """Spans covering ``axis`` of the sources, aligned to the first source's Zarr chunks.

    Args:
        sources: arrays of equal length along ``axis``.
        axis: 0 for row chunks, 1 for column stripes.
        chunk: rows (columns) per task; default: the Zarr chunk length, grown to about ``chunk_bytes`` of float32.
        limit: for column stripes, how many rows are valid. stop: how many rows (columns) are valid.
    """
    lengths = {int(s.shape[axis]) for s in sources}
    if len(lengths) != 1:
        raise ModscopeError(f"sources have different lengths {sorted(lengths)} along axis {axis}; "
                            "capture them on the same tokens")
    total = lengths.pop() if stop is None else int(stop)
    if chunk is None:
        first = sources[0]
        other = limit if axis == 1 and limit is not None else int(first.shape[0]) if axis == 1 else \
            sum(int(np.prod(s.shape[1:])) for s in sources)
        target = max(1, chunk_bytes // (4 * max(other, 1)))
        native = getattr(first, "chunks", None)
        native = int(native[axis]) if isinstance(native, tuple) and len(native) > axis else None
        chunk = target if not native else native * max(1, target // native)
    if chunk < 1:
        raise ModscopeError(f"chunk must be >= 1, got {chunk}")
    return [Span(lo, min(lo + chunk, total), axis, limit) for lo in range(0, total, chunk)]


def run_kernel(kernel: Callable[[np.ndarray], Any], sources: Sequence[Any], span: Span) -> Any:
    """One task: read a span and apply the kernel (top-level so that it pickles to workers)."""
    return kernel(read_span(sources, span))


def merge_tree(merge: Callable[[list], Any], parts: list, split_every: int = SPLIT_EVERY) -> Any:
    """Merge partial results ``split_every`` at a time (in this process)."""
    while len(parts) > 1:
        parts = [merge(parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def reduce_tasks(task: Callable[..., Any], args: Sequence[tuple], merge: Callable[[list], Any], *,
                 engine: str = "local", client: Any = None, scheduler: str | None = None,
                 split_every: int = SPLIT_EVERY) -> Any:
    """``merge`` of ``task(*a)`` over all ``a`` in ``args``, here or on a Dask cluster.

    Args:
        task: computes one partial result. args: the argument tuple of each task.
        merge: combines a list of partials into one partial (must be exact and associative).
        engine: ``local`` (sequential fold, one partial in memory at a time) or ``dask``.
        client, scheduler: the Dask client or scheduler address (see ``dask_client``).
        split_every: partials per merge task on Dask.

    Returns:
        The merged result.
    """
    if not args:
        raise ModscopeError("nothing to reduce: the input has no rows")
    if check_engine(engine) == "local":
        result = None
        for a in args:
            part = task(*a)
            result = part if result is None else merge([result, part])
        return result
    with dask_client(client, scheduler) as dask:
        # scatter large in-memory arguments once instead of pickling them into every task
        shared: dict[int, Any] = {}
        for a in args:
            for value in a:
                if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
                    if id(value) not in shared:
                        shared[id(value)] = dask.scatter(list(value), broadcast=False)
        futures = [dask.submit(task, *(shared.get(id(v), v) for v in a), pure=False) for a in args]
        while len(futures) > 1:
            futures = [dask.submit(merge, futures[i:i + split_every], pure=False)
                       for i in range(0, len(futures), split_every)]
        return futures[0].result()


def map_reduce(sources: Any | Sequence[Any], kernel: Callable[[np.ndarray], Any], merge: Callable[[list], Any], *,
               axis: int = 0, chunk: int | None = None, limit: int | None = None, stop: int | None = None,
               engine: str = "local", client: Any = None, scheduler: str | None = None) -> Any:
    """Apply ``kernel`` to every chunk of the (row-aligned) sources and ``merge`` the partial results.

    Args:
        sources: one array or a list of arrays (numpy or Zarr) of equal length along ``axis``; a chunk of several
            sources is their slices side by side, [rows, d_1 + d_2 + ...].
        kernel: chunk [rows, features] -> partial result. merge: list of partials -> partial.
        axis, chunk, limit, stop: how the work is split (see ``chunk_spans``).
        engine, client, scheduler: where it runs (see ``reduce_tasks``).

    Returns:
        The merged partial result over all chunks.
    """
    sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    if check_engine(engine) == "local":
        spans = chunk_spans(sources, axis=axis, chunk=chunk, limit=limit, stop=stop)
        return reduce_tasks(run_kernel, [(kernel, sources, s) for s in spans], merge)
    with dask_client(client, scheduler) as dask:
        spans = chunk_spans(sources, axis=axis, chunk=chunk, limit=limit, stop=stop,
                            chunk_bytes=task_bytes(dask))
        return reduce_tasks(run_kernel, [(kernel, sources, s) for s in spans], merge, engine="dask", client=dask)


def task_bytes(client: Any) -> int:
    """Input bytes per task: 32 MB, or less so that a worker's tasks fit in its memory limit.

    A task holds its float32 chunk, a float64 copy and the kernel's temporaries (about 4x the input), and a
    worker runs one task per thread: so at most ``memory_limit / (8 x threads)``.
    """
    workers = client.scheduler_info().get("workers", {}).values()
    limits = [w["memory_limit"] / (8 * max(1, w.get("nthreads", 1))) for w in workers if w.get("memory_limit")]
    return int(min([DEFAULT_CHUNK_BYTES, *limits]))
