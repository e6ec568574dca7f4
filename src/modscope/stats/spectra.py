"""Covariance eigenvalue spectrum: how many channels carry the variance, against two nulls of no correlation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.stats.checks import require_finite_moments
from modscope.stats.covariance import Covariance, as_rows, covariance


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
        n_above_mp: eigenvalues above ``mp_upper``.
        shuffle_eigenvalues: spectrum after shuffling each column independently (keeps every marginal,
            destroys all correlations); None when only a covariance was given.
        n_above_shuffle: eigenvalues above the largest shuffled eigenvalue, i.e. directions stronger than
            any direction of the no-correlation null (a conservative form of Horn's parallel analysis, 1965).
        shuffle_participation_ratio: participation ratio of the shuffled spectrum.
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

    _json_exclude = ("explained",)

    def plot(self, ax=None, *, color=None, label=None):
        from modscope.report import style

        ax = style.axes(ax)
        rank = np.arange(1, self.d + 1)
        positive = self.eigenvalues > 0
        ax.loglog(rank[positive], self.eigenvalues[positive], color=color or style.TRAINED, lw=1.3,
                  label=label or f"spectrum (PR {self.participation_ratio:.1f})")
        if self.shuffle_eigenvalues is not None:
            sh = self.shuffle_eigenvalues
            ax.loglog(rank[sh > 0], sh[sh > 0], color=color or style.NULL, lw=0.9, ls=":",
                      label=None if label else "column-shuffled null")
        if self.mp_upper is not None:
            ax.axhline(self.mp_upper, color=style.NULL, ls="--", lw=0.8, label=None if label else "MP edge")
        ax.set(xlabel="rank i", ylabel="correlation eigenvalue" if self.standardized else "eigenvalue λ_i")
        ax.legend()
        return ax


def spectrum_of_eigenvalues(eigenvalues: np.ndarray, *, n: int | None = None, standardized: bool = False,
                            top_k: int = 10, tail: tuple[float, float] = (0.05, 0.5),
                            shuffle_eigenvalues: np.ndarray | None = None) -> SpectrumResult:
    """Summaries of a spectrum λ (any order); see ``SpectrumResult`` for each number."""
    lam = np.clip(np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1], 0.0, None)
    d = lam.size
    total = lam.sum()
    if d == 0 or total <= 0:
        raise ModscopeError("the covariance is zero: every column is constant, so there is no spectrum")
    p = lam / total
    nz = p[p > 0]
    rank = int(np.sum(lam > lam[0] * 1e-12))
    lo, hi = max(2, math.ceil(tail[0] * rank)), max(2, math.floor(tail[1] * rank))
    if hi - lo + 1 >= 5:
        idx = np.arange(lo, hi + 1)
        slope = np.polyfit(np.log(idx), np.log(lam[idx - 1]), 1)[0]
        exponent = float(-slope)
    else:
        exponent = float("nan")
    mp_lower = mp_upper = n_above_mp = None
    if n is not None and n > 1:
        sigma2 = total / d
        ratio = d / (n - 1)
        mp_lower, mp_upper = sigma2 * (1 - math.sqrt(ratio)) ** 2, sigma2 * (1 + math.sqrt(ratio)) ** 2
        n_above_mp = int(np.sum(lam > mp_upper))
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
        shuffle_participation_ratio=shuffle_pr)


def eigenvalues_of(acc: Covariance, standardize: bool) -> np.ndarray:
    matrix = acc.corr if standardize else acc.cov
    return np.linalg.eigvalsh(matrix)


def spectrum(X_or_cov: Any, *, standardize: bool = False, shuffle: bool = True, seed: int = 0, top_k: int = 10,
             tail: tuple[float, float] = (0.05, 0.5), engine: str = "local", client: Any = None,
             scheduler: str | None = None) -> SpectrumResult:
    """Eigenvalue spectrum of the covariance of X, with Marchenko–Pastur and column-shuffle nulls.

    Args:
        X_or_cov: rows [n, d] (numpy, Zarr or ``(store, site)``), or a ``Covariance`` accumulator
            (then there is no shuffle null, which needs the rows).
        standardize: use the correlation matrix (each column scaled to unit variance).
        shuffle: compute the column-shuffled null (rows in memory only).
        seed: seed of the shuffle.
        top_k: k of ``topk_share``. tail: (first, last) fractions of the rank over which the power law is fit.
        engine, client, scheduler: where the covariance is streamed (see ``covariance``).

    Returns:
        SpectrumResult.
    """
    if isinstance(X_or_cov, Covariance):
        acc, rows = X_or_cov, None
    else:
        acc = covariance(X_or_cov, engine=engine, client=client, scheduler=scheduler)
        rows = X_or_cov if isinstance(X_or_cov, np.ndarray) else None
    if acc.n < 2:
        raise ModscopeError(f"a spectrum needs at least 2 rows, got {acc.n}")
    require_finite_moments(acc, "the rows (or covariance) given to spectrum")
    shuffled = None
    if shuffle and rows is not None:
        rng = np.random.default_rng(seed)
        shuffled = eigenvalues_of(covariance(rng.permuted(as_rows(rows), axis=0)), standardize)
    return spectrum_of_eigenvalues(eigenvalues_of(acc, standardize), n=acc.n, standardized=standardize,
                                   top_k=top_k, tail=tail, shuffle_eigenvalues=shuffled)
