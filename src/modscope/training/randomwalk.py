"""The random-walk null: what the spectrum and the trajectory PCA look like with no structure at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.training.gram import center_gram
from modscope.training.spectrum import THRESHOLDS, count_above, spectrum_of_gram

PC1_RANDOM_WALK = 6.0 / np.pi**2  # Antognini & Sohl-Dickstein 2018, "PCA of high dimensional random walks"


def trajectory_pc_fractions(gram: np.ndarray, lrs=None, k: int = 5) -> np.ndarray:
    """Variance fractions of the top-k PCs of the parameter trajectory ``theta_t - theta_0``.

    With plain SGD ``theta_t - theta_0 = -sum_{s<t} lr_s g_s``, i.e. ``X = L D A`` (L lower-triangular ones,
    D = diag(lr)), so the trajectory's Gram is ``L D G D L^T`` and the PCA needs no pass over the weights.
    For an uncorrelated gradient sequence PC1 takes 6/pi^2 = 0.608 of the variance as steps -> infinity.
    """
    n = gram.shape[0]
    scale = np.ones(n) if lrs is None else np.asarray(lrs, dtype=np.float64)
    lower = np.tril(np.ones((n, n)))
    traj = lower @ (scale[:, None] * gram * scale[None, :]) @ lower.T
    evals = np.clip(np.linalg.eigvalsh(center_gram(traj))[::-1], 0, None)
    return evals[:k] / max(evals.sum(), 1e-300)


@dataclass(frozen=True)
class RandomWalkNull(Result):
    """Spectrum counts and trajectory PC1 for i.i.d. Gaussian "gradients" of the same shape as a real run.

    Attributes:
        n_steps, dim: shape of the null gradient matrix (dim = parameters simulated).
        counts: {frac: count > frac * largest} (no structure: close to min(steps, dim)).
        trajectory_pc: float [5], variance fractions of the random-walk trajectory's top PCs.
        pc1_theory: 6/pi^2 (the large-step limit of PC1).
    """

    n_steps: int
    dim: int
    counts: dict
    trajectory_pc: np.ndarray
    pc1_theory: float

    def plot(self, ax=None):
        from modscope.figures import NULL, axes

        ax = axes(ax)
        ax.bar(range(1, len(self.trajectory_pc) + 1), self.trajectory_pc, color=NULL)
        ax.axhline(self.pc1_theory, color="k", ls=":", lw=0.8, label="6/pi^2")
        ax.set(xlabel="trajectory PC", ylabel="variance fraction")
        ax.legend()
        return ax


def random_walk_null(n_steps: int, dim: int = 4096, *, seed: int = 0) -> RandomWalkNull:
    """Draw ``n_steps`` i.i.d. N(0, I_dim) gradients and measure the seed's counts and the trajectory PCs."""
    if n_steps < 3 or dim < 1:
        raise ModscopeError(f"random walk needs n_steps >= 3 and dim >= 1, got {n_steps}, {dim}")
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((n_steps, dim))
    gram = grads @ grads.T
    values, _ = spectrum_of_gram(gram)
    values = values[:min(n_steps, dim)]
    return RandomWalkNull(n_steps=n_steps, dim=dim, counts={f: count_above(values, f) for f in THRESHOLDS},
                          trajectory_pc=trajectory_pc_fractions(gram), pc1_theory=PC1_RANDOM_WALK)
