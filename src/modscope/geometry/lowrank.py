"""How much of a similarity matrix is one shared direction: the "diagonal plus low rank" look, measured."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import TRAINED, TWIN, axes
from modscope.results import Result


@dataclass(frozen=True)
class LowRankSplit(Result):
    """The spectrum of a similarity matrix before and after double centring.

    Fields:
        top_fraction: lambda_1^2 / sum_k lambda_k^2, the share of ||S||_F^2 captured by the best rank-1
            approximation of S (1 = one common direction explains everything).
        top_fraction_centred: the same for the double-centred J S J (J = I - 11^T/n), i.e. after removing the
            common offset (for a Gram matrix, J S J is the Gram of the mean-centred vectors).
        top_k_fraction, top_k_fraction_centred: share of ||S||_F^2 in the best rank-k approximation.
        effective_rank, effective_rank_centred: participation ratio (sum |lambda|)^2 / sum lambda^2.
        offdiag_mean, offdiag_mean_centred: mean off-diagonal entry (the "low rank" floor of the picture).
        common_share: 1 - ||J S J||_F^2 / ||S||_F^2, the share of ||S||_F^2 removed by centring.
        k: the rank used for the top_k fields. n: matrix size.
        eigenvalues, eigenvalues_centred: spectra, largest magnitude first.
    """

    top_fraction: float
    top_fraction_centred: float
    top_k_fraction: float
    top_k_fraction_centred: float
    effective_rank: float
    effective_rank_centred: float
    offdiag_mean: float
    offdiag_mean_centred: float
    common_share: float
    k: int
    n: int
    eigenvalues: np.ndarray = field(repr=False)
    eigenvalues_centred: np.ndarray = field(repr=False)

    _json_exclude = ("eigenvalues", "eigenvalues_centred")

    def plot(self, ax=None):
        """Scree plot: share of ||S||_F^2 per eigenvalue, raw and double-centred."""
        ax = axes(ax)
        for values, colour, label in ((self.eigenvalues, TRAINED, "raw"),
                                      (self.eigenvalues_centred, TWIN, "double-centred")):
            share = values**2 / max(float(np.sum(values**2)), 1e-300)
            ax.plot(np.arange(1, len(share) + 1), share, "o-", ms=3, color=colour, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue rank")
        ax.set_ylabel("share of ||S||²_F")
        ax.legend()
        return ax


def spectrum_summary(S: np.ndarray, k: int) -> tuple[np.ndarray, float, float, float, float]:
    """(eigenvalues by |value|, rank-1 share, rank-k share, participation ratio, off-diagonal mean)."""
    values = np.linalg.eigvalsh(S)
    values = values[np.argsort(-np.abs(values))]
    energy = float(np.sum(values**2))
    if energy == 0:
        return values, 0.0, 0.0, 0.0, 0.0
    n = len(S)
    offdiag = (S.sum() - np.trace(S)) / (n * (n - 1)) if n > 1 else 0.0
    return (values, float(values[0] ** 2 / energy), float(np.sum(values[:k] ** 2) / energy),
            float(np.sum(np.abs(values)) ** 2 / energy), float(offdiag))


def low_rank_split(S, *, k: int = 3) -> LowRankSplit:
    """Split a similarity matrix into a common direction and the rest.

    The best rank-r approximation of a symmetric S in Frobenius norm keeps its r largest-|lambda| eigenpairs
    (Eckart-Young), so its share of ||S||_F^2 is sum_{r} lambda^2 / sum lambda^2. A matrix that looks like
    "diagonal plus low rank" (seed 001) has a large rank-1 share that disappears after double centring
    J S J, J = I - 11^T / n, which removes the shared offset (Gower 1966).

    Args:
        S: [n, n] symmetric similarity matrix. k: rank for ``top_k_fraction``.

    Returns:
        LowRankSplit.
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or len(S) < 2:
        raise ModscopeError(f"S must be a square matrix with n >= 2, got shape {S.shape}")
    if k < 1:
        raise ModscopeError(f"k must be >= 1, got {k}")
    S = (S + S.T) / 2.0
    n = len(S)
    J = np.eye(n) - 1.0 / n
    centred = J @ S @ J
    values, top, top_k, eff, off = spectrum_summary(S, k)
    values_c, top_c, top_k_c, eff_c, off_c = spectrum_summary(centred, k)
    energy = float(np.sum(S**2))
    common = 1.0 - float(np.sum(centred**2)) / energy if energy > 0 else 0.0
    return LowRankSplit(
        top_fraction=top, top_fraction_centred=top_c, top_k_fraction=top_k, top_k_fraction_centred=top_k_c,
        effective_rank=eff, effective_rank_centred=eff_c, offdiag_mean=off, offdiag_mean_centred=off_c,
        common_share=common, k=k, n=n, eigenvalues=values, eigenvalues_centred=values_c,
    )
