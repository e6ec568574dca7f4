"""The exact histogram of the cosine of every pair of rows (e.g. the whole vocabulary), never holding n x n."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from modscope.engine import check_engine, map_reduce, reduce_tasks, resolve
from modscope.errors import ModscopeError
from modscope.figures import TRAINED, axes
from modscope.geometry.similarity import as_rows, centre_rows
from modscope.results import Result


@dataclass(frozen=True)
class HistogramResult(Result):
    """Distribution of cos(e_i, e_j) over all unordered pairs i < j of non-zero rows.

    Fields:
        edges: [bins + 1] bin edges (cosine). counts: [bins] number of pairs per bin (left-closed bins, the last
            also right-closed, as numpy.histogram; values within one bin width outside the range, float32
            rounding of +-1, are counted in the edge bins).
        mean, sd: exact mean and standard deviation of the cosine over all pairs (float64, from the Gram
            identities, not from the bins).
        min, max: smallest and largest pairwise cosine (float32 GEMM precision, ~1e-6; nan if not requested).
        n_rows: rows used. n_zero_rows: all-zero rows left out (cosine undefined). n_pairs: n_rows(n_rows-1)/2.
        n_outside: pairs outside the binned range (0 for the default [-1, 1]).
        centred: whether rows were mean-centred first (seed 003: the zero point is arbitrary).
    """

    edges: np.ndarray
    counts: np.ndarray
    mean: float
    sd: float
    min: float
    max: float
    n_rows: int
    n_zero_rows: int
    n_pairs: int
    n_outside: int
    centred: bool

    def to_frame(self):
        """One row per bin: its edges and count of pairs."""
        import pandas as pd

        return pd.DataFrame({"left": self.edges[:-1], "right": self.edges[1:], "count": self.counts})

    def plot(self, ax=None, *, color: str = TRAINED, label: str | None = None):
        """Step plot of the pair density with the mean marked."""
        ax = axes(ax)
        widths = np.diff(self.edges)
        density = self.counts / max(self.counts.sum(), 1) / widths
        default = f"{'centred' if self.centred else 'raw'}: mean {self.mean:.3f}, sd {self.sd:.3f}"
        ax.stairs(density, self.edges, color=color, label=label or default)
        ax.axvline(self.mean, color=color, ls="--", lw=1)
        ax.set_xlabel("pairwise cosine similarity")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
        return ax


def nonzero_unit_rows(rows: np.ndarray, source=None) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero rows of a float64 [n, d] array divided by their norms, and the [n] non-zero mask.

    Shared by both engines so that a chunk's unit rows have the same bits as the whole array's. The norms come
    from one ``einsum`` (no [n, d] temporary: the embedding is 226 MB in float64); ``rows`` is divided in place
    unless it shares memory with ``source`` (the caller's array).
    """
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    nonzero = norms > 0
    if not nonzero.all():
        rows, norms = rows[nonzero], norms[nonzero]
    if source is None or np.may_share_memory(rows, source):
        return rows / norms[:, None], nonzero
    return np.divide(rows, norms[:, None], out=rows), nonzero


def pair_sums(unit: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Additive float64 sums of a chunk of unit rows: (sum_i u_i, sum_i |u_i|^2, U^T U, sum_i |u_i|^4).

    Sums over disjoint chunks add up to the sums over all rows, so this is the per-chunk kernel of the
    mean/sd of the pairwise cosines (``chunked_histogram`` maps it over row chunks; merge = addition).
    """
    unit = np.asarray(unit, dtype=np.float64)
    sq_norms = np.einsum("ij,ij->i", unit, unit)
    return unit.sum(axis=0), float(sq_norms.sum()), unit.T @ unit, float(np.sum(sq_norms**2))


def pair_moments_from_sums(total: np.ndarray, sq_norm_sum: float, gram: np.ndarray,
                           sq_norm4_sum: float) -> tuple[float, float]:
    """Pair sums from chunk sums (see ``pair_moments``): sum c_ij and sum c_ij^2 over pairs i < j."""
    return (float(total @ total) - sq_norm_sum) / 2.0, (float(np.sum(gram * gram)) - sq_norm4_sum) / 2.0


def pair_moments(unit: np.ndarray) -> tuple[float, float]:
    """Exact sum and sum of squares of u_i . u_j over pairs i < j, without the n x n matrix.

    sum_{i<j} c_ij = (|sum_i u_i|^2 - sum_i |u_i|^2) / 2 and
    sum_{i<j} c_ij^2 = (||U^T U||_F^2 - sum_i |u_i|^4) / 2, with the d x d Gram U^T U in float64.
    """
    sq_norms = np.einsum("ij,ij->i", unit, unit)
    gram = unit.T @ unit if unit.shape[1] <= unit.shape[0] else unit @ unit.T
    return pair_moments_from_sums(unit.sum(axis=0), float(sq_norms.sum()), gram, float(np.sum(sq_norms**2)))


def cosine_histogram(E, *, centre: bool | np.ndarray = False, bins: int = 200,
                     value_range: tuple[float, float] = (-1.0, 1.0), block: int = 2048,
                     threads: int | None = None, extremes: bool = True, engine: str = "local", client=None,
                     scheduler: str | None = None) -> HistogramResult:
    """Histogram, mean and sd of the cosine of every pair of rows of ``E``, exact over all n(n-1)/2 pairs.

    Rows are centred (optional) and normalised once in float64, cast to float32, and the upper triangle of
    U U^T is produced block by block (``B_i @ B_j^T`` for j >= i, diagonal excluded) and streamed into fixed bins
    (integer bin indices counted per block, ``block_pair_counts``); memory is O(block^2). Mean and sd come from
    exact float64 identities (``pair_moments``).
    This replaces the 5k-row sample of seed 003 (Nanda 2023, "Mech Interp Puzzle 1").

    Args:
        E: [n, d] rows (embedding matrix, hidden states). centre: subtract the row mean (True), a reference
            point / set, or nothing. bins: number of equal-width bins over ``value_range``.
        block: rows per block (memory ~ 4 block^2 bytes). threads: torch threads (default: torch's setting).
        extremes: also find the exact min and max pair (one more pass per block, ~15 % of the time); when False
            ``min``/``max`` are nan.
        engine: ``local`` or ``dask`` (``chunked_histogram``: one task per block pair with the same
            ``block_pair_counts`` kernel and block boundaries; ``E`` may then be a Zarr array or ``(store, site)``).
            client / scheduler: a Dask client or scheduler address.

    Returns:
        HistogramResult.
    """
    if bins < 1 or block < 1:
        raise ModscopeError(f"bins and block must be >= 1, got bins={bins}, block={block}")
    low, high = map(float, value_range)
    if not high > low:
        raise ModscopeError(f"value_range must be (low, high) with high > low, got {value_range}")
    if isinstance(E, torch.Tensor):
        E = E.detach().cpu().numpy()
    if check_engine(engine) == "dask":
        return chunked_histogram(resolve(E), centre=centre, bins=bins, low=low, high=high, block=block,
                                 extremes=extremes, where={"engine": engine, "client": client, "scheduler": scheduler})
    unit, nonzero = _unit(E, centre)
    if len(unit) < 2:
        raise ModscopeError(f"need at least 2 non-zero rows for pairwise cosines, got {len(unit)}")
    # torch casts on both cores (numpy on one): the same float32 bits as the dask engine's astype
    binned = binned_pairs(torch.from_numpy(unit).to(torch.float32), bins, low, high, block, threads, extremes)
    return histogram_result(*binned, pair_moments(unit), nonzero, low=low, high=high, centre=centre,
                            extremes=extremes)


def histogram_result(padded: np.ndarray, lowest: float, highest: float, moments: tuple[float, float],
                     nonzero: np.ndarray, *, low: float, high: float, centre: bool | np.ndarray,
                     extremes: bool) -> HistogramResult:
    """Both engines' answer from the merged block counts, the pair sums (``pair_moments``) and the non-zero mask."""
    counts = np.asarray(padded).round().astype(np.int64)
    counts[1] += counts[0]  # the two rounding-catch bins fold into the edge bins
    counts[-2] += counts[-1]
    counts = counts[1:-1]
    n = int(nonzero.sum())
    n_pairs = n * (n - 1) // 2
    mean = moments[0] / n_pairs
    nan = float("nan")
    return HistogramResult(
        edges=np.linspace(low, high, len(counts) + 1), counts=counts, mean=float(mean),
        sd=float(np.sqrt(max(moments[1] / n_pairs - mean**2, 0.0))), min=lowest if extremes else nan,
        max=highest if extremes else nan, n_rows=n, n_zero_rows=int((~nonzero).sum()), n_pairs=n_pairs,
        n_outside=int(n_pairs - counts.sum()), centred=centre is not False and centre is not None)


def binned_pairs(unit: torch.Tensor, bins: int, low: float, high: float, block: int,
                 threads: int | None, extremes: bool = True) -> tuple[np.ndarray, float, float]:
    """Padded counts (``block_pair_counts``) of u_i . u_j (i < j) in ``bins`` equal bins over [low, high], plus the
    min and max value."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        n = len(unit)
        scratch = BlockScratch(min(block, n), bins)
        total, lowest, highest = np.zeros(bins + 2), np.inf, -np.inf
        for start_i in range(0, n, block):
            for start_j in range(start_i, n, block):
                counts, block_low, block_high = block_pair_counts(
                    unit[start_i:start_i + block], unit[start_j:start_j + block], diagonal=start_j == start_i,
                    bins=bins, low=low, high=high, scratch=scratch, extremes=extremes)
                total += counts
                lowest, highest = min(lowest, block_low), max(highest, block_high)
    finally:
        scratch.close()
        torch.set_num_threads(previous)
    return total, lowest, highest


class BlockScratch:
    """Buffers reused by every block of one histogram: the float32 GEMM output, its integer bin indices and the
    diagonal blocks' lower-triangle masks (so no block-sized array is allocated per block)."""

    def __init__(self, size: int, bins: int):
        # bin indices 0 .. bins + 4 (see block_pair_counts); the narrowest integer type makes the cast and the
        # count memory-light: uint8 for the default 200 bins
        self.index_dtype = torch.uint8 if bins + 4 <= 255 else torch.int16 if bins + 4 <= 2**15 - 1 else torch.int32
        self.values = torch.empty(size * size, dtype=torch.float32)
        self.indices = torch.empty(size * size, dtype=self.index_dtype)
        self._masks: dict[int, torch.Tensor] = {}
        self._pool: ThreadPoolExecutor | None = None

    def count(self, indices: torch.Tensor, minlength: int) -> torch.Tensor:
        """``torch.bincount`` of the indices, the two halves counted on two threads (bincount itself is serial)."""
        flat = indices.view(-1)
        if flat.numel() < 2**16:
            return torch.bincount(flat, minlength=minlength)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(2, thread_name_prefix="modscope-bincount")
        half = flat.numel() // 2
        parts = [self._pool.submit(torch.bincount, part, minlength=minlength) for part in (flat[:half], flat[half:])]
        return parts[0].result() + parts[1].result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def lower_triangle(self, size: int) -> torch.Tensor:
        """[size, size] mask of j <= i (the diagonal and the pairs already counted as (j, i))."""
        if size not in self._masks:
            self._masks[size] = torch.ones(size, size, dtype=torch.bool).tril()
        return self._masks[size]


def block_pair_counts(rows_i: torch.Tensor, rows_j: torch.Tensor, *, diagonal: bool, bins: int, low: float,
                      high: float, scratch: BlockScratch | None = None, extremes: bool = True
                      ) -> tuple[np.ndarray, float, float]:
    """The per-block kernel: counts of the cosines ``rows_i @ rows_j^T`` (strict upper triangle when ``diagonal``).

    The GEMM writes the fractional bin position p = (c - (low - 2w)) / w of every cosine c (w = bin width) straight
    into a reused float32 buffer (``addmm`` with alpha = 1/w and a constant: no extra pass); truncation to a
    reused uint8/int16 buffer gives the bin index and ``torch.bincount`` counts it. Index layout: 0 below the range
    (discarded), 1 and bins + 2 the catch bins one width past each end (float32 rounding of +-1), 2 .. bins + 1
    the bins, bins + 3 above the range (discarded), bins + 4 the lower triangle of a diagonal block (discarded).

    Returns:
        (float64 counts over ``bins + 2`` padded bins, the outer two catching float32 rounding just past the
        range; smallest cosine; largest cosine — +inf/-inf when ``extremes`` is False). Partial results of
        disjoint block pairs merge exactly (``merge_block_counts``).
    """
    width = (high - low) / bins
    scale, shift = 1.0 / width, 2.0 - low / width  # p = c * scale + shift
    lowest, highest = np.inf, -np.inf
    rows, cols = len(rows_i), len(rows_j)
    if diagonal and rows < 2:
        return np.zeros(bins + 2), lowest, highest
    own = scratch is None
    scratch = scratch or BlockScratch(max(rows, cols), bins)
    positions, indices = scratch.values[:rows * cols].view(rows, cols), scratch.indices[:rows * cols].view(rows, cols)
    # |u_i . u_j| <= 1 + (d + 4) eps32 for float32 unit rows: when the catch bins cover that, no index can leave
    # 0 .. bins + 3 and the clamp pass is skipped
    bound = 1.0 + (rows_i.shape[1] + 4) * 2.0**-23
    inside = low - width <= -bound and high + width >= bound
    with torch.inference_mode():
        torch.addmm(torch.tensor(shift, dtype=torch.float32), rows_i, rows_j.T, alpha=scale, out=positions)
        mask = scratch.lower_triangle(rows) if diagonal else None
        if extremes and diagonal:
            highest = float(positions.masked_fill(mask, -np.inf).max())
            lowest = float(positions.masked_fill(mask, np.inf).min())
        elif extremes:  # a whole extra pass over the block, so only on request
            block_min, block_max = torch.aminmax(positions)
            lowest, highest = float(block_min), float(block_max)
        if not inside:
            positions.clamp_(0.0, bins + 3.0)
        indices.copy_(positions)  # truncation = floor for p >= 0
        if diagonal:
            indices.masked_fill_(mask, bins + 4)
        counts = scratch.count(indices, bins + 5)
    if own:
        scratch.close()
    if extremes:
        lowest, highest = (lowest - shift) * width, (highest - shift) * width
    return counts[1:bins + 3].double().numpy(), lowest, highest


def merge_block_counts(parts: list) -> tuple[np.ndarray, float, float]:
    """Exact merge of ``block_pair_counts`` results: counts add, min of mins, max of maxes."""
    return np.sum([p[0] for p in parts], axis=0), min(p[1] for p in parts), max(p[2] for p in parts)


def _column_sums(chunk: np.ndarray) -> tuple[int, np.ndarray]:
    return chunk.shape[0], as_rows(chunk, "E").sum(axis=0)


def _add(parts: list) -> tuple:
    """Merge of additive partials, term by term (lists of row masks are joined, in row order)."""
    return tuple(sum(terms, []) if isinstance(terms[0], list) else np.sum(terms, axis=0) for terms in zip(*parts))


def _unit(chunk: np.ndarray, centre: bool | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return nonzero_unit_rows(centre_rows(as_rows(chunk, "E"), centre), chunk)


def _row_sums(chunk: np.ndarray, centre: bool | np.ndarray) -> tuple:
    """Kernel of the second pass: the non-zero mask and ``pair_sums`` of a chunk's unit rows."""
    unit, nonzero = _unit(chunk, centre)
    return [nonzero], *pair_sums(unit)


def _read_unit(source: Any, indices: np.ndarray, centre: bool | np.ndarray) -> torch.Tensor:
    lo, hi = int(indices[0]), int(indices[-1]) + 1
    unit, _ = _unit(np.asarray(source[lo:hi])[indices - lo], centre)
    return torch.from_numpy(unit.astype(np.float32))


def _pair_task(source: Any, rows_i: np.ndarray, rows_j: np.ndarray, diagonal: bool, centre: bool | np.ndarray,
               bins: int, low: float, high: float, extremes: bool) -> tuple[np.ndarray, float, float]:
    unit_i = _read_unit(source, rows_i, centre)
    unit_j = unit_i if diagonal else _read_unit(source, rows_j, centre)
    return block_pair_counts(unit_i, unit_j, diagonal=diagonal, bins=bins, low=low, high=high, extremes=extremes)


def chunked_histogram(array: Any, *, centre: bool | np.ndarray, bins: int, low: float, high: float, block: int,
                      extremes: bool, where: dict) -> HistogramResult:
    """``cosine_histogram`` of a (Zarr) array that is never loaded whole, through ``modscope.engine``.

    Three passes: the mean (only when centring), the non-zero rows with their additive ``pair_sums`` (the exact
    mean/sd), then one task per block pair (i <= j) running ``block_pair_counts`` with the in-memory path's block
    boundaries, merged by ``merge_block_counts``: the counts are bit-identical uncentred; ``centre=True`` uses a
    mean merged from chunks (equal to ~1e-16, which can move a cosine lying on a bin edge). A task holds two blocks
    of ``block`` rows (float64 while normalising) and one ``block x block`` float32 cosine block.
    """
    if centre is True:
        count, sums = map_reduce(_column_sums, array, _add, **where)
        centre = sums / count
    elif centre is not False and centre is not None:
        centre = np.asarray(centre, dtype=np.float64)
    masks, *sums = map_reduce(partial(_row_sums, centre=centre), array, _add, **where)
    nonzero = np.concatenate(masks)
    kept = np.flatnonzero(nonzero)
    if kept.size < 2:
        raise ModscopeError(f"need at least 2 non-zero rows for pairwise cosines, got {kept.size}")
    blocks = [kept[s:s + block] for s in range(0, kept.size, block)]
    tasks = [(array, blocks[i], blocks[j], i == j, centre, bins, low, high, extremes)
             for i in range(len(blocks)) for j in range(i, len(blocks))]
    return histogram_result(*reduce_tasks(_pair_task, tasks, merge_block_counts, **where),
                            pair_moments_from_sums(*sums), nonzero, low=low, high=high, centre=centre,
                            extremes=extremes)
