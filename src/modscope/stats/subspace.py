"""Numerical rank of a covariance and a whitening map onto its non-null subspace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.results import Result

# Relative eigenvalue cut-off: float32 round-off of a removed direction sits many decades below it,
# while the smallest real variance of a residual stream does not.
DEFAULT_RANK_TOL = 1e-9


@dataclass(frozen=True)
class Subspace(Result):
    """The non-null eigen-subspace of a covariance.

    Attributes:
        eigenvalues: kept eigenvalues, descending (variance units, i.e. squared activation units).
        basis: orthonormal eigenvectors [d, rank] of the kept eigenvalues.
        rank: number of eigenvalues above ``tol * max eigenvalue``.
        dim: ambient dimension d.
    """

    eigenvalues: np.ndarray
    basis: np.ndarray
    rank: int
    dim: int

    _json_exclude = ("basis",)  # [d, rank]: kept for whitening, not for the JSON
    _frame_columns = ("eigenvalues",)

    def plot(self, ax=None):
        """The kept eigenvalues against their index (log scale)."""
        from modscope.figures import axes

        ax = axes(ax)
        ax.plot(np.arange(1, self.rank + 1), self.eigenvalues, "o-", ms=3)
        ax.set(yscale="log", xlabel="index i", ylabel="eigenvalue λᵢ", title=f"rank {self.rank} of {self.dim}")
        return ax

    @property
    def whitener(self) -> np.ndarray:
        """K [d, rank] with K^T Σ K = I on the subspace: basis scaled by eigenvalue^{-1/2}."""
        return self.basis / np.sqrt(self.eigenvalues)


def subspace(cov: np.ndarray, *, tol: float = DEFAULT_RANK_TOL) -> Subspace:
    """Eigen-decompose a symmetric PSD matrix and keep the directions with eigenvalue > tol · λ_max.

    Args:
        cov: covariance [d, d] (float64).
        tol: relative eigenvalue threshold defining the numerical rank.

    Returns:
        The ``Subspace`` of the kept directions.
    """
    cov = np.asarray(cov, dtype=np.float64)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    values, vectors = values[::-1], vectors[:, ::-1]
    top = values[0] if values.size and values[0] > 0 else 0.0
    keep = values > tol * top if top > 0 else np.zeros_like(values, dtype=bool)
    return Subspace(eigenvalues=values[keep], basis=vectors[:, keep], rank=int(keep.sum()), dim=cov.shape[0])
