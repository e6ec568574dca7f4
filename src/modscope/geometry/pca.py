"""Principal components of a set of activations, with explained variance, for category scatter plots."""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib
import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import CATEGORY_CMAP, axes
from modscope.geometry.similarity import as_rows, centre_rows
from modscope.results import Result


@dataclass(frozen=True)
class PCAResult(Result):
    """The top-k principal components of H.

    Fields:
        explained_variance: [k] variance along each component (activation units squared, 1/(n-1) normalised).
        explained_ratio: [k] explained_variance / total_variance (dimensionless).
        total_variance: sum of per-feature variances. k, n, d: sizes. centred: whether the mean was removed.
        components: [k, d] unit-norm directions (rows). scores: [n, k] coordinates of each sample.
        labels: optional category per sample (for the scatter plot).
    """

    explained_variance: np.ndarray
    explained_ratio: np.ndarray
    total_variance: float
    k: int
    n: int
    d: int
    centred: bool
    components: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    labels: list | None = field(default=None, repr=False)

    _json_exclude = ("components", "scores", "labels")
    _frame_columns = ("explained_variance", "explained_ratio")

    def plot(self, ax=None):
        """Scatter of the first two scores, coloured by label."""
        ax = axes(ax, figsize=(4.2, 3.8))
        x = self.scores[:, 0]
        y = self.scores[:, 1] if self.k > 1 else np.zeros_like(x)
        labels = self.labels if self.labels is not None else ["all"] * self.n
        names = list(dict.fromkeys(labels))
        colours = matplotlib.colormaps[CATEGORY_CMAP]
        for index, name in enumerate(names):
            mask = np.array([label == name for label in labels])
            ax.scatter(x[mask], y[mask], s=10, color=colours(index % 10), label=str(name))
        ax.set_xlabel(f"PC1 ({100 * self.explained_ratio[0]:.1f}%)")
        if self.k > 1:
            ax.set_ylabel(f"PC2 ({100 * self.explained_ratio[1]:.1f}%)")
        if len(names) > 1:
            ax.legend(fontsize=7, markerscale=1.5)
        return ax


def pca(H, k: int = 2, *, centre: bool | np.ndarray = True, labels=None) -> PCAResult:
    """PCA by SVD: Hc = U S V^T, components = V[:k], scores = U[:, :k] S[:k], variance = S^2 / (n - 1).

    Args:
        H: [n, d] activations. k: number of components (at most min(n, d)).
        centre: remove the mean (True), a reference point/set, or nothing (False: uncentred second moments).
        labels: optional per-sample categories kept for the plot.

    Returns:
        PCAResult.
    """
    H = as_rows(H)
    n, d = H.shape
    if n < 2:
        raise ModscopeError(f"PCA needs at least 2 samples, got {n}")
    if not 1 <= k <= min(n, d):
        raise ModscopeError(f"k must be between 1 and min(n, d) = {min(n, d)}, got {k}")
    Hc = centre_rows(H, centre)
    U, singular, Vt = np.linalg.svd(Hc, full_matrices=False)
    # fix the sign so that each component's largest-|loading| entry is positive (deterministic output)
    signs = np.sign(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)])
    signs[signs == 0] = 1.0
    Vt, U = Vt * signs[:, None], U * signs[None, :]
    variance = singular**2 / (n - 1)
    total = float(np.sum(Hc**2) / (n - 1))
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    return PCAResult(
        explained_variance=variance[:k], explained_ratio=ratio, total_variance=total, k=k, n=n, d=d,
        centred=centre is not False, components=Vt[:k], scores=U[:, :k] * singular[:k],
        labels=list(labels) if labels is not None else None,
    )
