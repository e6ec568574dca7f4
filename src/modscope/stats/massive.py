"""Massive activations: the few coordinates and token positions that dominate a site's variance (Sun et al. 2024)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result

# Sun et al. (2024, "Massive activations in large language models", §2) call an activation massive when its
# magnitude exceeds 100 and about 1000× the median magnitude; we use a relative criterion only (units differ
# between sites and models) and the milder 100×, then ask how much variance those coordinates carry.
DEFAULT_RATIO = 100.0
MAX_LISTED = 20


@dataclass(frozen=True)
class MassiveActivations(Result):
    """Entries far above the typical magnitude of a site, and the variance they carry.

    Criterion: an entry x_ij is massive when |x_ij| > ``ratio`` × median_ij |x_ij| (the median over all entries).

    Attributes:
        coords: columns holding at least one massive entry, by decreasing variance share (at most 20 listed).
        rows: rows (token positions) holding at least one massive entry (at most 20 listed, by largest |x|).
        n_coords, n_rows: how many columns / rows hold massive entries (all of them, not just the listed).
        share: fraction of the total variance Σ_j var(x_j) carried by the ``coords`` columns (all of them).
        row_share: fraction of the total centred sum of squares carried by the massive rows.
        coord_shares: per listed coordinate, its variance / total variance.
        max_ratio: largest |x_ij| / median |x|. median_abs: the median |x| used.
        ratio: the criterion's factor. n, d: rows and columns scanned.
    """

    coords: list[int]
    rows: list[int]
    n_coords: int
    n_rows: int
    share: float
    row_share: float
    coord_shares: list[float]
    max_ratio: float
    median_abs: float
    ratio: float
    n: int
    d: int

    @property
    def found(self) -> bool:
        return self.n_coords > 0

    def describe(self) -> str:
        """One sentence naming the massive coordinates and rows, or saying there are none."""
        if not self.found:
            return f"no massive activations (no |x| above {self.ratio:g}× the median |x|)"
        coords = ", ".join(str(c) for c in self.coords[:5]) + (" …" if self.n_coords > 5 else "")
        return (f"massive activations (|x| > {self.ratio:g}× median |x|) in {self.n_coords} "
                f"coordinate{'s' * (self.n_coords != 1)} [{coords}] on {self.n_rows} of {self.n} rows; "
                f"{'those coordinates carry' if self.n_coords != 1 else 'it carries'} {self.share:.1%} of the variance")

    def plot(self, ax=None):
        from modscope import figures as style

        ax = style.axes(ax)
        ax.bar(np.arange(len(self.coords)), self.coord_shares, color=style.TRAINED)
        ax.set_xticks(np.arange(len(self.coords)), [str(c) for c in self.coords], rotation=90)
        ax.set(xlabel="coordinate", ylabel="share of total variance", title=self.describe()[:80])
        return ax


def find_massive(x, *, ratio: float = DEFAULT_RATIO) -> MassiveActivations:
    """Massive activations of rows ``x`` [n, d] (see ``MassiveActivations`` for the criterion).

    Args:
        x: [n, d] array (numpy or anything ``np.asarray`` accepts). ratio: the factor over the median |x|.

    Returns:
        MassiveActivations.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ModscopeError(f"find_massive needs rows [n, d] with n ≥ 2, got shape {x.shape}")
    return find_massive_streaming([x], ratio=ratio)


def find_massive_streaming(batches: Iterable[np.ndarray], *, ratio: float = DEFAULT_RATIO) -> MassiveActivations:
    """``find_massive`` over row batches read one at a time (memory: one batch plus O(d)).

    The median |x| is taken from the first batch (a Zarr store's first chunk is thousands of rows, so the
    median is stable); everything else is exact over all batches.
    """
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise ModscopeError("find_massive_streaming got no rows")
    first = np.asarray(first, dtype=np.float64)
    median_abs = float(np.median(np.abs(first)))
    # one pass: column sums and sums of squares, massive flags per column, and the massive rows' |x|
    threshold = ratio * max(median_abs, np.finfo(np.float64).tiny)
    n, d = 0, first.shape[1]
    col_sum, col_sq, flagged = np.zeros(d), np.zeros(d), np.zeros(d, dtype=bool)
    row_ids, row_peak, row_sq = [], [], []
    max_abs = 0.0
    for batch in itertools.chain([first], (np.asarray(rest, dtype=np.float64) for rest in iterator)):
        big = np.abs(batch) > threshold
        flagged |= big.any(axis=0)
        hit = np.flatnonzero(big.any(axis=1))
        row_ids.extend((hit + n).tolist())
        row_peak.extend(np.abs(batch[hit]).max(axis=1).tolist())
        row_sq.append(batch[hit])
        col_sum += batch.sum(axis=0)
        col_sq += np.einsum("ij,ij->j", batch, batch)
        max_abs = max(max_abs, float(np.abs(batch).max(initial=0.0)))
        n += batch.shape[0]
    mean = col_sum / n
    var = np.maximum(col_sq / n - mean**2, 0.0)
    total = float(var.sum())
    coords = np.flatnonzero(flagged)
    coord_share = var[coords] / total if total > 0 else np.zeros(coords.size)
    order = np.argsort(-coord_share)
    massive_rows = np.concatenate(row_sq)  # the first batch's entry is there, empty or not
    row_share = float(np.sum((massive_rows - mean) ** 2) / (total * n)) if total > 0 and n else 0.0
    by_peak = np.argsort(-np.asarray(row_peak))[:MAX_LISTED]
    return MassiveActivations(
        coords=[int(c) for c in coords[order][:MAX_LISTED]], rows=[int(row_ids[i]) for i in by_peak],
        n_coords=int(coords.size), n_rows=len(row_ids), share=float(coord_share.sum()), row_share=row_share,
        coord_shares=[float(s) for s in coord_share[order][:MAX_LISTED]],
        max_ratio=max_abs / max(median_abs, np.finfo(np.float64).tiny), median_abs=median_abs, ratio=ratio, n=n,
        d=int(d))
