"""The all-pairs cosine histogram of a store's rows on either engine: one task per block pair (i <= j).

Three passes over the rows: the mean (only when centring), the non-zero rows with ``geometry.histogram``'s additive
``pair_sums`` (for the exact mean/sd), then one task per block pair running ``block_pair_counts`` — the same
kernel, with the same block boundaries, as the local ``cosine_histogram`` — merged by ``merge_block_counts``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from modscope.distributed.mapreduce import map_reduce, reduce_tasks
from modscope.errors import ModscopeError
from modscope.geometry.histogram import (
    HistogramResult,
    block_pair_counts,
    fold_edge_bins,
    histogram_range,
    merge_block_counts,
    nonzero_unit_rows,
    pair_moments_from_sums,
    pair_sums,
)
from modscope.geometry.similarity import as_rows, centre_rows
from modscope.stats.covariance import resolve


def _column_sums(chunk: np.ndarray) -> tuple[int, np.ndarray]:
    return chunk.shape[0], as_rows(chunk, "E").sum(axis=0)


def _add_sums(parts: list) -> tuple[int, np.ndarray]:
    return sum(p[0] for p in parts), np.sum([p[1] for p in parts], axis=0)


def _unit(chunk: np.ndarray, centre: bool | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return nonzero_unit_rows(centre_rows(as_rows(chunk, "E"), centre), chunk)


class _RowSums:
    """Kernel of the second pass: the non-zero mask and ``pair_sums`` of a chunk's unit rows."""

    def __init__(self, centre: bool | np.ndarray):
        self.centre = centre

    def __call__(self, chunk: np.ndarray) -> tuple[list[np.ndarray], tuple]:
        unit, nonzero = _unit(chunk, self.centre)
        return [nonzero], pair_sums(unit)


def _merge_row_sums(parts: list) -> tuple[list[np.ndarray], tuple]:
    masks = [m for p in parts for m in p[0]]  # partials arrive in row order, so the masks stay in order
    sums = tuple(np.sum([p[1][i] for p in parts], axis=0) for i in range(4))
    return masks, sums


def _read_unit(source: Any, indices: np.ndarray, centre: bool | np.ndarray) -> torch.Tensor:
    lo, hi = int(indices[0]), int(indices[-1]) + 1
    rows = np.asarray(source[lo:hi])[indices - lo]
    unit, _ = _unit(rows, centre)
    return torch.from_numpy(unit.astype(np.float32))


def _pair_task(source: Any, rows_i: np.ndarray, rows_j: np.ndarray, diagonal: bool, centre: bool | np.ndarray,
               bins: int, low: float, high: float, extremes: bool) -> tuple[np.ndarray, float, float]:
    unit_i = _read_unit(source, rows_i, centre)
    unit_j = unit_i if diagonal else _read_unit(source, rows_j, centre)
    return block_pair_counts(unit_i, unit_j, diagonal=diagonal, bins=bins, low=low, high=high,
                             extremes=extremes)


def cosine_histogram(source: Any, *, centre: bool | np.ndarray = False, bins: int = 200,
                     value_range: tuple[float, float] = (-1.0, 1.0), block: int = 2048, extremes: bool = True,
                     engine: str = "local", client: Any = None, scheduler: str | None = None) -> HistogramResult:
    """Exact histogram, mean and sd of the cosine of every pair of rows of a (Zarr) array, chunk by chunk.

    Same result as ``geometry.cosine_histogram`` (bit-identical counts uncentred; ``centre=True`` uses a mean
    merged from chunks, equal to ~1e-16, which can move a cosine lying on a bin edge). A task holds two blocks of
    ``block`` rows (float64 while normalising) and one ``block x block`` float32 cosine block.

    Args:
        source: [n, d] numpy or Zarr array, or ``(store, site)``. centre, bins, value_range, block, extremes: as
            ``geometry.cosine_histogram``. engine, client, scheduler: where the block pairs run.

    Returns:
        HistogramResult.
    """
    low, high = histogram_range(bins, block, value_range)
    array = resolve(source)
    where = {"engine": engine, "client": client, "scheduler": scheduler}
    if centre is True:
        count, sums = map_reduce(array, _column_sums, _add_sums, **where)
        centre = sums / count
    elif centre is not False and centre is not None:
        centre = np.asarray(centre, dtype=np.float64)
    masks, (total, sq_norm_sum, gram, sq_norm4_sum) = map_reduce(array, _RowSums(centre), _merge_row_sums, **where)
    kept = np.flatnonzero(np.concatenate(masks))
    n = kept.size
    if n < 2:
        raise ModscopeError(f"need at least 2 non-zero rows for pairwise cosines, got {n}")
    n_pairs = n * (n - 1) // 2
    pair_sum, pair_sq = pair_moments_from_sums(total, sq_norm_sum, float(np.sum(gram * gram)), sq_norm4_sum)
    mean = pair_sum / n_pairs
    sd = float(np.sqrt(max(pair_sq / n_pairs - mean**2, 0.0)))
    blocks = [kept[s:s + block] for s in range(0, n, block)]
    tasks = [(array, blocks[i], blocks[j], i == j, centre, bins, low, high, extremes)
             for i in range(len(blocks)) for j in range(i, len(blocks))]
    padded, lowest, highest = reduce_tasks(_pair_task, tasks, merge_block_counts, **where)
    counts = fold_edge_bins(padded)
    if not extremes:
        lowest = highest = float("nan")
    return HistogramResult(
        edges=np.linspace(low, high, bins + 1), counts=counts, mean=float(mean), sd=sd, min=lowest, max=highest,
        n_rows=n, n_zero_rows=int(len(np.concatenate(masks)) - n), n_pairs=n_pairs,
        n_outside=int(n_pairs - counts.sum()), centred=centre is not False and centre is not None)
