"""Jacobian vs covariance: do the input directions a path is most sensitive to carry the stream's variance?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from modscope import figures as style
from modscope.errors import ModscopeError
from modscope.models.model import Model
from modscope.results import Result

if TYPE_CHECKING:
    from modscope.corpus import Corpus


@dataclass(frozen=True)
class SubspaceAlignment(Result):
    """Principal angles between the top-k right singular vectors of a Jacobian and the top-k eigenvectors of the
    source site's covariance (both subspaces of the d-dimensional source stream).

    Attributes:
        model: model name. k: subspace dimension. dim: d.
        cosines: cos θ_i of the principal angles, descending (1 = shared direction, 0 = orthogonal).
        angles_deg: θ_i in degrees.
        mean_cos2: Σ cos²θ_i / k, the fraction of one subspace's projector captured by the other.
        null_mean_cos2: k/d, its expectation for a uniformly random k-subspace (the null).
        null_sd_cos2: the standard deviation of mean_cos2 over random k-subspaces (from ``null_draws`` draws).
        jacobian_values: the Jacobian's singular values (σ, output per input unit), top first.
        covariance_values: the covariance eigenvalues (variance, squared stream units), top first.
        rows: activation rows behind the covariance.
        sample: what those rows are (``ActivationStore.rows_description()``), when they were captured here.
    """

    model: str
    k: int
    dim: int
    cosines: np.ndarray
    angles_deg: np.ndarray
    mean_cos2: float
    null_mean_cos2: float
    null_sd_cos2: float
    jacobian_values: np.ndarray
    covariance_values: np.ndarray
    rows: int
    sample: dict | None = None

    _frame_columns = ("cosines", "angles_deg")

    @property
    def z(self) -> float:
        """(mean_cos2 − null) / null sd."""
        return (self.mean_cos2 - self.null_mean_cos2) / max(self.null_sd_cos2, 1e-300)

    def plot(self, ax=None, *, color: str | None = None):
        """Both spectra, each divided by its largest value, on one log plot."""
        ax = style.axes(ax)
        colour = color or style.model_colour(self.model)
        jac = self.jacobian_values / self.jacobian_values[0]
        cov = np.sqrt(np.maximum(self.covariance_values, 0) / self.covariance_values[0])
        ax.plot(np.arange(1, len(jac) + 1), jac, color=colour, label=f"{self.model}: Jacobian σᵢ/σ₁")
        ax.plot(np.arange(1, len(cov) + 1), cov, color=colour, ls="--", label=f"{self.model}: √(λᵢ/λ₁) covariance")
        ax.set(yscale="log", xlabel="index i", ylabel="normalised singular value",
               title=f"top-{self.k} overlap mean cos² {self.mean_cos2:.3f} (random: {self.null_mean_cos2:.3f})")
        ax.legend(fontsize=7)
        return ax


def principal_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between span(rows of a) and span(rows of b) (Björck & Golub 1973,
    "Numerical methods for computing angles between linear subspaces", Math. Comp. 27: σ(Q_aᵀ Q_b))."""
    q_a, _ = np.linalg.qr(np.asarray(a, dtype=np.float64).T)
    q_b, _ = np.linalg.qr(np.asarray(b, dtype=np.float64).T)
    return np.clip(np.linalg.svd(q_a.T @ q_b, compute_uv=False), 0.0, 1.0)


def subspace_alignment(
    jacobian_directions: np.ndarray, jacobian_values: np.ndarray, covariance: np.ndarray, *, model: str = "",
    rows: int = 0, null_draws: int = 200, seed: int = 0,
) -> SubspaceAlignment:
    """Compare the top-k input directions of a Jacobian with the top-k principal directions of the data.

    Args:
        jacobian_directions: top-k right singular vectors as rows [k, d]. jacobian_values: their σ (top first).
        covariance: the source site's covariance [d, d] (float64). model, rows: provenance.
        null_draws: random k-subspaces for the null sd. seed: their seed.

    Returns:
        A SubspaceAlignment.
    """
    directions = np.atleast_2d(np.asarray(jacobian_directions, dtype=np.float64))
    k, dim = directions.shape
    covariance = np.asarray(covariance, dtype=np.float64)
    if covariance.shape != (dim, dim):
        raise ModscopeError(f"covariance is {covariance.shape} but the Jacobian directions live in {dim} dims")
    eigenvalues, eigenvectors = np.linalg.eigh((covariance + covariance.T) / 2)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, top = eigenvalues[order], eigenvectors[:, order[:k]].T
    cosines = principal_cosines(directions, top)
    rng = np.random.default_rng(seed)
    null = [float((principal_cosines(rng.standard_normal((k, dim)), top) ** 2).mean()) for _ in range(null_draws)]
    return SubspaceAlignment(
        model, k, dim, cosines, np.degrees(np.arccos(cosines)), float((cosines**2).mean()), k / dim,
        float(np.std(null)), np.asarray(jacobian_values, dtype=np.float64), eigenvalues, rows,
    )


def path_vs_covariance(
    model: Model, text: str, source: Sequence[str] | Corpus, *, src: str = "resid_pre.0", dst: str | None = None,
    src_pos: int = 0, dst_pos: int | None = None, k: int = 16, ctx: int = 256, max_rows: int = 20000,
) -> SubspaceAlignment:
    """Seed 000's question: are the input directions the path Jacobian amplifies the high-variance directions of
    the source stream? Top-k right singular vectors of ∂x_dst[dst_pos]/∂x_src[src_pos] on ``text`` vs the top-k
    eigenvectors of the ``src`` covariance over every token of ``source``.

    Args:
        model: a Model. text: the text the Jacobian is taken on. source: texts for the covariance.
        src, dst, src_pos, dst_pos: as in ``path_spectrum``. k: subspace dimension.
        ctx: tokens per source document. max_rows: cap on covariance rows.

    Returns:
        A SubspaceAlignment.
    """
    from modscope.capture import capture
    from modscope.corpus import Corpus
    from modscope.jacobian.probes import path_spectrum
    from modscope.stats import covariance

    path = path_spectrum(model, text, src=src, dst=dst, src_pos=src_pos, dst_pos=dst_pos, method="exact",
                         vectors=True)
    site = model.select_sites(src)[0]
    # a Corpus keeps its categories, so max_rows rows are a balanced sample of them (not the first documents)
    store = capture(model, source if isinstance(source, Corpus) else list(source), [site], ctx=ctx,
                    max_tokens=max_rows, progress=False)
    cov = covariance(store[site])
    found = subspace_alignment(path.spectrum.right_vectors[:k], path.spectrum.singular_values, cov.cov,
                               model=model.name, rows=int(cov.n))
    return replace(found, sample=store.rows_description())
