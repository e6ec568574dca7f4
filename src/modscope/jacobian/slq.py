"""Stochastic Lanczos quadrature: the density of a Jacobian's whole singular spectrum from a few probes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator

from modscope.results import Result


@dataclass(frozen=True)
class SpectralDensity(Result):
    """A quadrature estimate of the singular-value distribution of J.

    Attributes:
        nodes: Ritz singular values σ (same units as J: output per unit input), all probes concatenated.
        weights: the probability mass at each node (sums to 1): the estimated distribution of the
            ``n`` singular values of J, ``n = min(n_in, n_out)``.
        n: the number of singular values the distribution describes.
        probes: number of random start vectors. steps: Lanczos steps per probe (at most).
    """

    nodes: np.ndarray
    weights: np.ndarray
    n: int
    probes: int
    steps: int

    _frame_columns = ("nodes", "weights")

    def plot(self, ax=None):
        """The density as a rank-ordered curve (index against σ, log scale), comparable to exact values."""
        from modscope.figures import axes

        ax = axes(ax)
        ax.plot(*self.quantile_curve())
        ax.set(yscale="log", xlabel="index i", ylabel="singular value σᵢ")
        return ax

    def fraction_above(self, threshold: float) -> float:
        """Estimated fraction of the n singular values above ``threshold``."""
        return float(self.weights[self.nodes > threshold].sum())

    def quantile_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(index, σ): the density turned into a rank-ordered curve comparable to exact singular values."""
        order = np.argsort(-self.nodes)
        index = np.cumsum(self.weights[order]) * self.n
        return index, self.nodes[order]


def golub_kahan(op: LinearOperator, start: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` of Golub–Kahan–Lanczos bidiagonalisation of J from ``start``, fully reorthogonalised.

    Builds orthonormal V, U and the upper-bidiagonal B (diagonal α, super-diagonal β) with ``J V = U B`` and
    ``Jᵀ U = V Bᵀ + β v eᵀ`` (Golub & Van Loan, Matrix Computations §10.4), so ``BᵀB`` is the Lanczos tridiagonal
    of JᵀJ started at ``start``: B's singular values are Ritz values of σ(J) without squaring J's condition number.

    Args:
        op: J as a LinearOperator [n_out, n_in]. start: unit-free start vector [n_in]. steps: at most this many.

    Returns:
        (alpha, beta): the diagonal [m] and super-diagonal [m-1] of B, m ≤ steps (fewer on an invariant subspace).
    """
    v = start / np.linalg.norm(start)
    vs, us, alpha, beta = [v], [], [], []
    u = op.matvec(v)
    for j in range(steps):
        for _ in range(2):  # twice is enough (Giraud et al. 2005): keeps U orthogonal in float64
            for q in us:
                u = u - q * (q @ u)
        a = float(np.linalg.norm(u))
        alpha.append(a)
        if a <= 1e-300 or j == steps - 1:
            break
        u = u / a
        us.append(u)
        w = op.rmatvec(u) - a * vs[-1]
        for _ in range(2):
            for q in vs:
                w = w - q * (q @ w)
        b = float(np.linalg.norm(w))
        if b <= 1e-14 * max(max(alpha), 1e-300):  # the Krylov space is invariant: the Ritz values are exact
            break
        beta.append(b)
        vs.append(w / b)
        u = op.matvec(vs[-1]) - b * u
    return np.asarray(alpha), np.asarray(beta[: len(alpha) - 1])


def slq_density(op: LinearOperator, *, probes: int = 16, steps: int = 80, seed: int = 0) -> SpectralDensity:
    """Estimate the singular-value density of J by stochastic Lanczos quadrature.

    For a Rademacher probe z and the bidiagonal B of J from z, the Gauss quadrature of the spectral measure of
    JᵀJ seen from z has nodes σ_i(B) and weights (first component of B's i-th right singular vector)²; averaging
    over probes gives an unbiased estimate of the normalised spectral density (Ubaru, Chen & Saad 2017,
    "Fast estimation of tr(f(A)) via stochastic Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4), eq. 3.3).
    J is transposed first when it is wide so the density describes ``min(n_in, n_out)`` values.

    Args:
        op: J as a LinearOperator. probes: number of start vectors. steps: Lanczos steps per probe.
        seed: seed of the probe vectors.

    Returns:
        A SpectralDensity.
    """
    if op.shape[1] > op.shape[0]:
        op = op.T
    n = op.shape[1]
    steps = max(1, min(steps, n))
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    for _ in range(probes):
        alpha, beta = golub_kahan(op, rng.choice([-1.0, 1.0], size=n), steps)
        _, sigma, vt = np.linalg.svd(np.diag(alpha) + np.diag(beta, 1))  # the upper-bidiagonal B
        nodes.append(sigma)
        weights.append(vt[:, 0] ** 2 / probes)
    return SpectralDensity(np.concatenate(nodes), np.concatenate(weights), n, probes, steps)
