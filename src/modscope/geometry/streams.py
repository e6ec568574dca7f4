"""Stream diagrams: which single hidden dimensions separate categories across depth (ANOVA F, permutation null)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import CATEGORY_CMAP, axes
from modscope.geometry.separation import label_codes, permuted_labels
from modscope.results import Result


@dataclass(frozen=True)
class StreamRanking(Result):
    """Hidden dimensions ranked by how well their value separates categories, averaged over layers.

    Fields:
        score: [d] mean over layers of the one-way ANOVA F statistic of the dimension's value by category
            (dimensionless; ~1 when categories do not matter).
        p: [d] one-sided permutation p of each score (labels or whole groups permuted).
        p_fwer: [d] family-wise p against the permutation null of the maximum score over all d dimensions.
        top: indices of the best dimensions by score (descending). shown: the dimensions kept for the diagrams.
        null_max_95: 95th percentile of the max-over-dimensions null score (a score above it is significant at 5%
            after correcting for looking at every dimension).
        layer_names: names of the layers (x axis). categories: category names. n_samples, n_permutations: sizes.
        F: [n_layers, d] F per layer. streams: [n_samples, n_layers, len(shown)] values of the shown dimensions.
        labels: category of each sample.
    """

    score: np.ndarray
    p: np.ndarray
    p_fwer: np.ndarray
    top: list[int]
    shown: list[int]
    null_max_95: float
    layer_names: list[str]
    categories: list[str]
    n_samples: int
    n_permutations: int
    F: np.ndarray = field(repr=False)
    streams: np.ndarray = field(repr=False)
    labels: list = field(repr=False)

    _json_exclude = ("F", "streams", "labels")
    _frame_columns = ("score", "p", "p_fwer")

    def plot(self, ax=None, *, which: int = 0):
        """Stream diagram of ``shown[which]``: its value at each layer, one line per sample, coloured by category."""
        ax = axes(ax)
        dim = self.shown[which]
        colours = matplotlib.colormaps[CATEGORY_CMAP]
        codes = {name: k for k, name in enumerate(self.categories)}
        x = np.arange(len(self.layer_names))
        for row, label in enumerate(self.labels):  # one legend entry per category, at its first row
            ax.plot(x, self.streams[row, :, which], color=colours(codes[label] % 10), lw=0.8, alpha=0.6,
                    label=str(label) if self.labels.index(label) == row else None)
        ax.set_title(f"dim {dim}: mean F {self.score[dim]:.1f}, p_fwer {self.p_fwer[dim]:.3g}", fontsize=8)
        ax.set_xlabel("layer")
        ax.set_ylabel("value")
        return ax


def anova_f(values: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """One-way ANOVA F of every column of ``values`` [n, m] for a batch of labelings ``onehot`` [P, n, c].

    F = (SS_between / (c - 1)) / (SS_within / (n - c)), SS_between = sum_c S_c^2 / n_c - (sum x)^2 / n with S_c the
    class sums (Fisher 1925). Constant columns get F = 0. Returns [P, m].
    """
    n, c = onehot.shape[1], onehot.shape[2]
    total = values.sum(axis=0)
    total_ss = np.einsum("ij,ij->j", values, values) - total**2 / n
    class_sums = np.einsum("pnc,nm->pcm", onehot, values)
    counts = onehot.sum(axis=1)[:, :, None]
    between = (class_sums**2 / counts).sum(axis=1) - total**2 / n
    within = np.maximum(total_ss - between, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        F = (between / (c - 1)) / (within / (n - c))
    F = np.where(total_ss > 1e-12 * np.maximum(np.einsum("ij,ij->j", values, values), 1e-300), F, 0.0)
    return np.nan_to_num(F, nan=0.0, posinf=np.finfo(np.float64).max)


def rank_stream_dimensions(values, labels, *, groups=None, layer_names: Sequence[str] | None = None,
                           dims: Sequence[int] | None = None, top: int = 6, n_permutations: int = 200,
                           seed: int = 0) -> StreamRanking:
    """Rank hidden dimensions by category separability across layers (seed 001's "stream diagrams", with a null).

    score_j = mean over layers l of F_lj, the ANOVA F of dimension j at layer l by category. The null permutes the
    labels (or whole ``groups``, e.g. documents) ``n_permutations`` times; p_fwer compares each score with the null
    of max_j score_j, so a dimension picked from hundreds is not declared significant by chance.

    Args:
        values: [n_samples, n_layers, d] hidden states (e.g. resid_post.0..L-1 stacked on axis 1).
        labels: n_samples category labels. groups: optional n_samples group ids (documents).
        layer_names: names for the x axis. dims: dimensions to draw (default: the ``top`` ranked).
        top: how many best dimensions to list. n_permutations, seed: the null.

    Returns:
        StreamRanking.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise ModscopeError(f"values must be [n_samples, n_layers, d], got shape {values.shape}")
    n, n_layers, d = values.shape
    codes, names = label_codes(labels)
    if len(codes) != n:
        raise ModscopeError(f"got {len(codes)} labels for {n} samples; pass one label per sample")
    if len(names) < 2 or n <= len(names):
        raise ModscopeError("stream ranking needs at least 2 categories and more samples than categories")
    shown = list(dims) if dims is not None else None
    if shown is not None and any(not 0 <= j < d for j in shown):
        raise ModscopeError(f"--dims must lie in 0..{d - 1}, got {shown}")
    flat = values.reshape(n, n_layers * d)
    eye = np.eye(len(names))
    F = anova_f(flat, eye[codes][None])[0].reshape(n_layers, d)
    score = F.mean(axis=0)
    perms = permuted_labels(codes, groups, n_permutations, seed)
    exceed = np.zeros(d)
    null_max = []
    for chunk in np.array_split(perms, max(1, len(perms) // 16)):
        null_scores = anova_f(flat, eye[chunk]).reshape(len(chunk), n_layers, d).mean(axis=1)
        exceed += (null_scores >= score[None] - 1e-12).sum(axis=0)
        null_max.append(null_scores.max(axis=1))
    null_max = np.concatenate(null_max)
    p = (1.0 + exceed) / (1.0 + n_permutations)
    p_fwer = (1.0 + (null_max[None, :] >= score[:, None] - 1e-12).sum(axis=1)) / (1.0 + n_permutations)
    order = [int(j) for j in np.argsort(-score)[:top]]
    shown = shown if shown is not None else order
    return StreamRanking(
        score=score, p=p, p_fwer=p_fwer, top=order, shown=shown, null_max_95=float(np.quantile(null_max, 0.95)),
        layer_names=list(layer_names or [str(k) for k in range(n_layers)]), categories=[str(c) for c in names],
        n_samples=n, n_permutations=n_permutations, F=F, streams=values[:, :, shown], labels=[str(x) for x in labels],
    )
