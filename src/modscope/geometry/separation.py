"""Do samples of the same category sit closer together than samples of different categories? With a null."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.geometry.similarity import dissimilarity
from modscope.results import Result
from modscope.stats.spectral_clustering import silhouettes


@dataclass(frozen=True)
class SeparationResult(Result):
    """Within- vs between-category similarity of one similarity matrix, against a label-permutation null.

    Fields (similarities are in the units of the matrix: cosine, scaled cosine, ...):
        within: mean S_ij over pairs i != j with the same label.
        between: mean S_ij over pairs with different labels.
        difference: within - between.
        silhouette: mean silhouette (Rousseeuw 1987) with dissimilarity D_ij = (S_ii + S_jj)/2 - S_ij, in [-1, 1].
        null_mean, null_sd: mean and sd of ``difference`` over label permutations.
        z: (difference - null_mean) / null_sd.  p: one-sided permutation p, (1 + #{null >= observed}) / (1 + P).
        silhouette_null_mean, silhouette_null_sd, silhouette_z, silhouette_p: the same for the silhouette.
        n_samples, n_categories, n_permutations: sizes.
        grouped: True when whole groups (e.g. documents) were permuted rather than single rows.
    """

    within: float
    between: float
    difference: float
    silhouette: float
    null_mean: float
    null_sd: float
    z: float
    p: float
    silhouette_null_mean: float
    silhouette_null_sd: float
    silhouette_z: float
    silhouette_p: float
    n_samples: int
    n_categories: int
    n_permutations: int
    grouped: bool
    null: np.ndarray = field(repr=False)

    _json_exclude = ("null",)

    def plot(self, ax=None):
        """Histogram of the permutation null of ``difference`` with the observed value."""
        ax = axes(ax)
        ax.hist(self.null, bins=40, color=NULL, alpha=0.8, label="label-permutation null")
        ax.axvline(self.difference, color=TRAINED, lw=2, label=f"observed (z = {self.z:.1f})")
        ax.set_xlabel("within − between similarity")
        ax.set_ylabel("permutations")
        ax.legend()
        return ax


def label_codes(labels) -> tuple[np.ndarray, list]:
    """Integer codes 0..c-1 for arbitrary labels, and the distinct labels in order of first appearance."""
    labels = list(labels)
    names = list(dict.fromkeys(labels))
    lookup = {name: code for code, name in enumerate(names)}
    return np.array([lookup[label] for label in labels], dtype=np.int64), names


def permuted_labels(codes: np.ndarray, groups, n_permutations: int, seed: int) -> np.ndarray:
    """[P, n] label vectors: a permutation of rows, or of whole groups when ``groups`` is given.

    Rows of one document (several positions of one text) are not independent; permuting documents keeps them
    together so the null has the same within-document correlation as the data.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        return np.stack([rng.permutation(codes) for _ in range(n_permutations)])
    group_codes, _ = label_codes(groups)
    n_groups = group_codes.max() + 1
    group_label = np.full(n_groups, -1)
    group_label[group_codes] = codes
    if np.any(group_label[group_codes] != codes):
        raise ModscopeError("a group (document) has rows with two different labels; each group needs one label")
    return np.stack([rng.permutation(group_label)[group_codes] for _ in range(n_permutations)])


def within_between(S: np.ndarray, codes: np.ndarray, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean within- and between-label similarity (off-diagonal pairs) for a batch of label vectors [P, n]."""
    onehot = np.eye(n_categories)[codes]  # [P, n, c]
    counts = onehot.sum(axis=1)  # [P, c]
    diag = np.diag(S)
    # sum_c 1_c^T S 1_c
    within_sum = np.einsum("pjc,pjc->p", S @ onehot, onehot) - diag.sum()
    within_pairs = (counts * (counts - 1)).sum(axis=1)
    total_pairs = len(codes[0]) * (len(codes[0]) - 1)
    between_sum = S.sum() - diag.sum() - within_sum
    return within_sum / within_pairs, between_sum / (total_pairs - within_pairs)


def permutation_summary(observed: float, null: np.ndarray) -> tuple[float, float, float, float]:
    """(null mean, null sd, z, one-sided p) of ``observed`` against ``null``."""
    mean, sd = float(null.mean()), float(null.std(ddof=1)) if len(null) > 1 else 0.0
    z = (observed - mean) / sd if sd > 0 else (0.0 if observed == mean else np.inf * np.sign(observed - mean))
    p = (1.0 + np.sum(null >= observed - 1e-12)) / (1.0 + len(null))
    return mean, sd, float(z), float(p)


def separation(S, labels, *, n_permutations: int = 1000, groups=None, seed: int = 0) -> SeparationResult:
    """Within- minus between-category similarity, and the silhouette, each with a label-permutation null.

    difference = mean_{i != j, y_i = y_j} S_ij - mean_{y_i != y_j} S_ij; the null permutes the labels
    (``n_permutations`` times, fixed ``seed``), or permutes whole ``groups`` (documents) when given, and
    z = (difference - mean(null)) / sd(null). The silhouette uses D_ij = (S_ii + S_jj)/2 - S_ij.

    Args:
        S: [n, n] similarity matrix (any kind from ``similarity``).
        labels: n category labels. groups: optional n group ids (e.g. document ids); rows of a group share a label.
        n_permutations: size of the null. seed: RNG seed.

    Returns:
        SeparationResult.
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ModscopeError(f"S must be a square similarity matrix, got shape {S.shape}")
    codes, names = label_codes(labels)
    if len(codes) != len(S):
        raise ModscopeError(f"got {len(codes)} labels for a {len(S)}x{len(S)} matrix; pass one label per row")
    counts = np.bincount(codes)
    if len(names) < 2 or counts.max() < 2:
        raise ModscopeError("separation needs at least 2 categories and a category with 2 or more samples; "
                            "sample more texts per category")
    if n_permutations < 2:
        raise ModscopeError(f"n_permutations must be >= 2, got {n_permutations}")
    S = (S + S.T) / 2.0
    D = dissimilarity(S)
    c = len(names)
    within, between = within_between(S, codes[None], c)
    silhouette = float(silhouettes(D, codes[None], c)[0])
    perms = permuted_labels(codes, groups, n_permutations, seed)
    chunks = np.array_split(perms, max(1, len(perms) // 100))
    null = np.concatenate([np.subtract(*within_between(S, chunk, c)) for chunk in chunks])
    difference = float(within[0] - between[0])
    mean, sd, z, p = permutation_summary(difference, null)
    s_mean, s_sd, s_z, s_p = permutation_summary(silhouette, np.concatenate([silhouettes(D, ch, c) for ch in chunks]))
    return SeparationResult(
        within=float(within[0]), between=float(between[0]), difference=difference, silhouette=silhouette,
        null_mean=mean, null_sd=sd, z=z, p=p, silhouette_null_mean=s_mean, silhouette_null_sd=s_sd,
        silhouette_z=s_z, silhouette_p=s_p, n_samples=len(S), n_categories=c, n_permutations=n_permutations,
        grouped=groups is not None, null=null,
    )
