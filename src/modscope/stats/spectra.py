"""Covariance eigenvalue spectrum: how many channels carry the variance, against nulls of no correlation.

"Directions above the null" is Horn's parallel analysis (Horn 1965) with a sign-flip null: the centred entries
are multiplied by independent random signs, which keeps every |x_ij| (so every column's variance and every
row's norm, including heavy-tailed token norms) and destroys every correlation; rank k is above the null when
its eigenvalue beats the same rank of the null spectra at level α (a per-rank p-value from ``n_shuffles``
shuffles; counting stops at the first rank that does not). The Marchenko–Pastur edge is applied to the
correlation matrix (σ² = 1), since one σ² for columns of unequal variance puts the edge in the wrong place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.stats.checks import require_finite_moments
from modscope.stats.covariance import Covariance, as_rows, covariance, iter_joint_batches, resolve
from modscope.stats.massive import find_massive, find_massive_streaming


@dataclass(frozen=True)
class SpectrumResult(Result):
    """Eigenvalues of a covariance (or correlation) matrix and summary numbers of their spread.

    Attributes:
        eigenvalues: λ_1 ≥ … ≥ λ_d ≥ 0 (variance units; unitless if ``standardized``).
        explained: λ_i / Σλ, fraction of total variance per direction.
        participation_ratio: (Σλ)² / Σλ² ∈ [1, d], the number of equally strong directions with the same
            second moment (Gao et al. 2017, "A theory of multineuronal dimensionality").
        effective_rank: exp(−Σ p_i log p_i) with p = λ / Σλ ∈ [1, d] (Roy & Vetterli 2007).
        top1_share: λ_1 / Σλ. topk_share: Σ_{i≤k} λ_i / Σλ with k = ``top_k``.
        tail_exponent: α of the fit λ_i ∝ i^{−α} over ranks ``tail_ranks`` (least squares in log–log);
            NaN with fewer than 5 ranks to fit.
        tail_ranks: (first, last) rank, 1-based, used for the tail fit.
        n: rows the covariance came from (None if unknown). d: dimension. standardized: correlation matrix.
        mp_lower, mp_upper: Marchenko–Pastur bulk edges σ²(1 ∓ sqrt(d/n))² for i.i.d. noise with the same
            mean variance σ² = Σλ/d (Marchenko & Pastur 1967); None when n is unknown.
        mp_on: "correlation" (edges (1 ∓ sqrt(d/n))² applied to the correlation eigenvalues) or "covariance"
            (one σ² = Σλ/d; only when no correlation spectrum was available — wrong for unequal variances).
        n_above_mp: eigenvalues above ``mp_upper`` (of the matrix named by ``mp_on``). Shown for reference: under
            heavy-tailed rows it fires on independent data (see ``modscope calibrate``), so no verdict uses it.
        shuffle_eigenvalues: a null spectrum (the per-rank median of the null spectra when there are several;
            for a single column shuffle, that shuffle); None when only a covariance was given.
        n_above_shuffle: eigenvalues above the largest eigenvalue of ``shuffle_eigenvalues`` (one shuffle; kept
            for reference — it is not a calibrated test, use ``n_above_null``).
        shuffle_participation_ratio: participation ratio of ``shuffle_eigenvalues``.
        null_name: what the null spectra are ("sign-flip (Horn, 19 shuffles)", ...); "" when there is none.
        null_eigenvalues_95: per-rank 95th percentile of the null spectra (Horn's threshold), or None.
        n_above_null: leading ranks of the correlation spectrum (of λ when no correlation spectrum was given)
            whose eigenvalue beats the same rank of the null spectra with a per-rank
            permutation p ≤ 0.05 (counting stops at the first that does not); None without null spectra.
        correlation_participation_ratio: participation ratio of the correlation matrix's spectrum: the number of
            channels once no coordinate can dominate by its variance alone; None when unknown.
        correlation_top1_share: top-1 share of the correlation spectrum; None when unknown.
        massive: massive activations of the rows (``modscope.stats.massive``), or None when not scanned.
    """

    eigenvalues: np.ndarray
    explained: np.ndarray
    participation_ratio: float
    effective_rank: float
    top1_share: float
    topk_share: float
    top_k: int
    tail_exponent: float
    tail_ranks: tuple[int, int]
    n: int | None
    d: int
    standardized: bool
    mp_lower: float | None
    mp_upper: float | None
    n_above_mp: int | None
    shuffle_eigenvalues: np.ndarray | None
    n_above_shuffle: int | None
    shuffle_participation_ratio: float | None
    mp_on: str = "covariance"
    null_name: str = ""
    null_eigenvalues_95: np.ndarray | None = None
    n_above_null: int | None = None
    correlation_participation_ratio: float | None = None
    correlation_top1_share: float | None = None
    massive: Any = None

    _json_exclude = ("explained",)
    _frame_columns = ("eigenvalues", "explained")

    def plot(self, ax=None, *, color=None, label=None):
        from modscope import figures as style

        ax = style.axes(ax)
        rank = np.arange(1, self.d + 1)
        positive = self.eigenvalues > 0
        ax.loglog(rank[positive], self.eigenvalues[positive], color=color or style.TRAINED, lw=1.3,
                  label=label or f"spectrum (PR {self.participation_ratio:.1f})")
        if self.shuffle_eigenvalues is not None:
            sh = self.shuffle_eigenvalues
            ax.loglog(rank[sh > 0], sh[sh > 0], color=color or style.NULL, lw=0.9, ls=":",
                      label=None if label else (self.null_name or "shuffled null"))
        if self.mp_upper is not None:
            ax.axhline(self.mp_upper, color=style.NULL, ls="--", lw=0.8, label=None if label else "MP edge")
        ax.set(xlabel="rank i", ylabel="correlation eigenvalue" if self.standardized else "eigenvalue λ_i")
        ax.legend()
        return ax


def horn_count(eigenvalues: np.ndarray, null: np.ndarray, alpha: float = 0.05) -> int:
    """Leading ranks above Horn's null: p_k = (1 + #{null_k ≥ λ_k}) / (1 + S) ≤ α, stopping at the first miss.

    Args:
        eigenvalues: λ descending [d]. null: null spectra [S, d], each descending. alpha: per-rank level.
    """
    p = (1.0 + np.sum(null >= eigenvalues[None, :], axis=0)) / (1.0 + null.shape[0])
    misses = np.flatnonzero(p > alpha)
    return int(misses[0]) if misses.size else int(eigenvalues.size)


def mp_edges(n: int, d: int, sigma2: float) -> tuple[float, float]:
    """Marchenko–Pastur bulk edges σ²(1 ∓ sqrt(d/(n − 1)))² (Marchenko & Pastur 1967)."""
    ratio = d / (n - 1)
    return sigma2 * (1 - math.sqrt(ratio)) ** 2, sigma2 * (1 + math.sqrt(ratio)) ** 2


def spectrum_of_eigenvalues(eigenvalues: np.ndarray, *, n: int | None = None, standardized: bool = False,
                            top_k: int = 10, tail: tuple[float, float] = (0.05, 0.5),
                            shuffle_eigenvalues: np.ndarray | None = None, null_eigenvalues: np.ndarray | None = None,
                            null_name: str = "", correlation_eigenvalues: np.ndarray | None = None,
                            massive: Any = None, alpha: float = 0.05) -> SpectrumResult:
    """Summaries of a spectrum λ (any order); see ``SpectrumResult`` for each number.

    Args:
        shuffle_eigenvalues: one null spectrum (legacy single column shuffle).
        null_eigenvalues: [S, d] null spectra for Horn's test (``n_above_null``), of the correlation matrix when
            ``correlation_eigenvalues`` is given (or ``standardized``), else of the same matrix as λ. Their
            per-rank median becomes ``shuffle_eigenvalues`` when it is on λ's scale. null_name: what they are.
        correlation_eigenvalues: the correlation matrix's spectrum (when λ is a covariance spectrum), for the
            MP edge and the correlation participation ratio. massive: a ``MassiveActivations`` to attach.
    """
    lam = np.clip(np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1], 0.0, None)
    d = lam.size
    total = lam.sum()
    if d == 0 or total <= 0:
        raise ModscopeError("the covariance is zero: every column is constant, so there is no spectrum")
    p = lam / total
    nz = p[p > 0]
    rank = int(np.sum(lam > lam[0] * 1e-12))
    lo, hi = max(2, math.ceil(tail[0] * rank)), max(2, math.floor(tail[1] * rank))
    exponent = float("nan")
    if hi - lo + 1 >= 5:
        idx = np.arange(lo, hi + 1)
        exponent = float(-np.polyfit(np.log(idx), np.log(lam[idx - 1]), 1)[0])
    corr = lam if standardized else correlation_eigenvalues
    corr_pr = corr_top1 = None
    if corr is not None:
        corr = np.clip(np.sort(np.asarray(corr, dtype=np.float64))[::-1], 0.0, None)
        corr_pr, corr_top1 = float(corr.sum() ** 2 / np.sum(corr**2)), float(corr[0] / corr.sum())
    mp_lower = mp_upper = n_above_mp = None
    mp_on = "correlation" if corr is not None else "covariance"
    base = corr if corr is not None else lam  # the MP edge and the null spectra are the correlation's when known
    if n is not None and n > 1:
        mp_lower, mp_upper = mp_edges(n, d, 1.0 if corr is not None else total / d)
        n_above_mp = int(np.sum(base > mp_upper))
    n_above_null = q95 = None
    if null_eigenvalues is not None:
        null = -np.sort(-np.atleast_2d(np.asarray(null_eigenvalues, dtype=np.float64)), axis=1)
        n_above_null = horn_count(base, null, alpha)
        q95 = np.quantile(null, 1.0 - alpha, axis=0)
        if shuffle_eigenvalues is None and (standardized or corr is None):
            shuffle_eigenvalues = np.median(null, axis=0)
    n_above_shuffle = shuffle_pr = None
    if shuffle_eigenvalues is not None:
        sh = np.sort(np.asarray(shuffle_eigenvalues, dtype=np.float64))[::-1]
        shuffle_eigenvalues = sh
        n_above_shuffle = int(np.sum(lam > sh[0]))
        shuffle_pr = float(sh.sum() ** 2 / np.sum(sh**2))
    k = min(top_k, d)
    return SpectrumResult(
        eigenvalues=lam, explained=p, participation_ratio=float(total**2 / np.sum(lam**2)),
        effective_rank=float(np.exp(-np.sum(nz * np.log(nz)))), top1_share=float(p[0]),
        topk_share=float(p[:k].sum()), top_k=k, tail_exponent=exponent, tail_ranks=(lo, hi), n=n, d=d,
        standardized=standardized, mp_lower=mp_lower, mp_upper=mp_upper, n_above_mp=n_above_mp,
        shuffle_eigenvalues=shuffle_eigenvalues, n_above_shuffle=n_above_shuffle,
        shuffle_participation_ratio=shuffle_pr, mp_on=mp_on, null_name=null_name if null_eigenvalues is not None
        else ("column shuffle (one)" if shuffle_eigenvalues is not None else ""), null_eigenvalues_95=q95,
        n_above_null=n_above_null, correlation_participation_ratio=corr_pr, correlation_top1_share=corr_top1,
        massive=massive)


def eigenvalues_of(acc: Covariance, standardize: bool) -> np.ndarray:
    return np.linalg.eigvalsh(acc.corr if standardize else acc.cov)


def spectrum_of_covariance(acc: Covariance, standardize: bool, **nulls: Any) -> SpectrumResult:
    """``spectrum_of_eigenvalues`` of an accumulator's covariance (or correlation), with its correlation spectrum."""
    return spectrum_of_eigenvalues(eigenvalues_of(acc, standardize), n=acc.n, standardized=standardize,
                                   correlation_eigenvalues=None if standardize else eigenvalues_of(acc, True), **nulls)


def sign_flip_spectra(rows: np.ndarray, *, standardize: bool, n_shuffles: int, seed: int) -> np.ndarray:
    """[n_shuffles, d] spectra of the centred rows with every entry multiplied by an independent random sign.

    Flipping signs keeps each |x_ij| — each column's variance, each row's norm — and makes every pair of
    columns uncorrelated; for rows x_i = s_i·g_i with symmetric g (heavy-tailed token norms included) the
    flipped data has exactly the distribution of the data under "no correlation", so Horn's test is exact there.
    """
    x = as_rows(rows).astype(np.float64)
    x = x - x.mean(axis=0)
    rng = np.random.default_rng(seed)
    out = np.empty((n_shuffles, x.shape[1]))
    scale = np.sqrt(np.einsum("ij,ij->j", x, x))
    scale = np.where(scale > 0, scale, 1.0)
    for s in range(n_shuffles):
        y = x * (rng.integers(0, 2, size=x.shape, dtype=np.int8) * 2 - 1)
        # not re-centred: the flipped scatter keeps the data's diagonal exactly (re-centring would shrink it
        # by (n − 1)/n, which alone beats the null's tiny spread when column variances differ by decades)
        matrix = y.T @ y / (y.shape[0] - 1) if not standardize else (y / scale).T @ (y / scale)
        out[s] = np.sort(np.linalg.eigvalsh(matrix))[::-1]
    return out


def spectrum(X_or_cov: Any, *, standardize: bool = False, shuffle: bool = True, n_shuffles: int = 19, seed: int = 0,
             top_k: int = 10, tail: tuple[float, float] = (0.05, 0.5), massive: bool = True, engine: str = "local",
             client: Any = None, scheduler: str | None = None) -> SpectrumResult:
    """Eigenvalue spectrum of the covariance of X, with Horn's sign-flip null, the MP edge and massive activations.

    Args:
        X_or_cov: rows [n, d] (numpy, Zarr or ``(store, site)``), or a ``Covariance`` accumulator
            (then there is no null, which needs the rows, and no massive-activation scan).
        standardize: use the correlation matrix (each column scaled to unit variance).
        shuffle: compute Horn's null (rows in memory only). n_shuffles: its null spectra (19 is the fewest
            for which a per-rank p ≤ 0.05 is possible).
        seed: seed of the sign flips.
        top_k: k of ``topk_share``. tail: (first, last) fractions of the rank over which the power law is fit.
        massive: scan the rows for massive activations (one extra pass over an on-disk array).
        engine, client, scheduler: where the covariance is streamed (see ``covariance``).

    Returns:
        SpectrumResult.
    """
    given = isinstance(X_or_cov, Covariance)
    acc = X_or_cov if given else covariance(X_or_cov, engine=engine, client=client, scheduler=scheduler)
    source = None if given else X_or_cov
    rows = source if isinstance(source, np.ndarray) else None
    if acc.n < 2:
        raise ModscopeError(f"a spectrum needs at least 2 rows, got {acc.n}")
    require_finite_moments(acc, "the rows (or covariance) given to spectrum")
    null = shuffled = None
    if shuffle and rows is not None:
        # the single column shuffle (kept for the plot and ``n_above_shuffle``; not a calibrated test)
        rng = np.random.default_rng(seed)
        shuffled = eigenvalues_of(covariance(rng.permuted(as_rows(rows), axis=0)), standardize)
        if n_shuffles > 0:
            null = sign_flip_spectra(rows, standardize=True, n_shuffles=n_shuffles, seed=seed + 1)
    found = None
    if massive and source is not None:
        found = (find_massive(as_rows(rows)) if rows is not None
                 else find_massive_streaming(b for b in iter_joint_batches([resolve(source)])))
    return spectrum_of_covariance(acc, standardize, top_k=top_k, tail=tail, shuffle_eigenvalues=shuffled,
                                  null_eigenvalues=null, massive=found,
                                  null_name=f"sign-flip of the correlation matrix (Horn, {n_shuffles} shuffles)")


HORN_ROWS = 2000  # rows of the sign-flip null for on-disk sites (fewer rows than the data: a conservative null)
SHUFFLE_ROWS = 32768  # rows held for the column-shuffle null (the default capture of 20000 tokens uses them all)


def site_nulls(array: Any, *, standardize: bool, n_shuffles: int = 19, seed: int = 0, max_rows: int = HORN_ROWS,
               shuffle_rows: int = SHUFFLE_ROWS, rows: int = 8192) -> tuple[np.ndarray, np.ndarray, Any, str]:
    """Both nulls and the massive-activation scan of an on-disk site, in one pass of ``rows`` batches.

    Horn's null uses a uniform random subset of at most ``max_rows`` rows (memory O(max_rows · d)); with fewer rows
    than the data its spectra are wider, so ``n_above_null`` can only be conservative. The column shuffle (that of
    ``spectrum``, all rows, up to ``shuffle_rows`` rows) likewise takes a subset of ``shuffle_rows`` rows beyond:
    its largest eigenvalue is then larger than the full-n null's (sampling noise ~ 1/sqrt(shuffle_rows)), which
    makes ``n_above_shuffle`` conservative.

    Returns:
        (column-shuffled spectrum [d] (correlation if ``standardize``), Horn's null correlation spectra
        [n_shuffles, d], MassiveActivations, null name).
    """
    total = int(array.shape[0])
    rng = np.random.default_rng([seed, 7])
    keep = np.sort(rng.choice(total, size=min(max_rows, total), replace=False))
    shuffle_rng = np.random.default_rng(seed)
    shuffle_keep = (np.arange(total) if total <= shuffle_rows
                    else np.sort(shuffle_rng.choice(total, size=shuffle_rows, replace=False)))
    parts, shuffle_parts = [], []

    def batches():
        for start in range(0, total, rows):
            block = as_rows(np.asarray(array[start:start + rows]))
            for picked, sample in ((keep, parts), (shuffle_keep, shuffle_parts)):
                local = picked[(picked >= start) & (picked < start + rows)] - start
                if local.size:
                    sample.append(block[local])
            yield block

    found = find_massive_streaming(batches())
    sample = np.concatenate(parts)
    null = sign_flip_spectra(sample, standardize=True, n_shuffles=n_shuffles, seed=seed + 1)
    shuffled = eigenvalues_of(covariance(shuffle_rng.permuted(np.concatenate(shuffle_parts), axis=0)), standardize)
    subset = f", {len(sample)} of {total} rows: conservative" if len(sample) < total else ""
    return shuffled, null, found, f"sign-flip of the correlation matrix (Horn, {n_shuffles} shuffles{subset})"
