"""Linear centred kernel alignment between two sets of activations of the same samples, and CKA maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import axes
from modscope.geometry.similarity import as_rows
from modscope.results import Result

# memory for the [d_i, d_j] cross-products of one pass over the rows, and for one batch of rows (float64)
BUDGET_BYTES = 256 * 2**20
BATCH_BYTES = 64 * 2**20

def centred_gram(X) -> np.ndarray:
    """K = Xc Xc^T with Xc = X minus its column means (float64, [n, n])."""
    X = as_rows(X, "X")
    Xc = X - X.mean(axis=0, keepdims=True)
    return Xc @ Xc.T


def hsic_from_grams(K: np.ndarray, L: np.ndarray, *, debiased: bool) -> float:
    """HSIC numerator of linear CKA from centred Grams: tr(KL) = ||Y^T X||_F^2, or its unbiased version.

    Unbiased (Song et al. 2012, eq. 5; Kornblith et al. 2019, sec. 3 "debiased"), written for centred Grams:
    tr(KL) - n/(n-2) <diag K, diag L> + tr K tr L / ((n-1)(n-2)). The 1/(n(n-3)) factor cancels in CKA.
    """
    n = len(K)
    value = float(np.sum(K * L))
    if debiased:
        value += -n / (n - 2.0) * float(np.diag(K) @ np.diag(L)) + np.trace(K) * np.trace(L) / ((n - 1.0) * (n - 2.0))
    return value


def cka_from_grams(K: np.ndarray, L: np.ndarray, *, debiased: bool = True) -> float:
    """Linear CKA from two centred Gram matrices (see ``cka``)."""
    denominator = hsic_from_grams(K, K, debiased=debiased) * hsic_from_grams(L, L, debiased=debiased)
    if denominator <= 0:
        return float("nan")
    return hsic_from_grams(K, L, debiased=debiased) / float(np.sqrt(denominator))


def cka(X, Y, *, debiased: bool = True) -> float:
    """Linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited", eq. 4-5).

    CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) with column-centred Xc, Yc; ``debiased`` replaces
    each HSIC by its unbiased estimator (Song et al. 2012) so that unrelated representations score ~0 even when
    n is not much larger than the width. Invariant to rotations and isotropic scaling of either argument.

    Args:
        X: [n, d1], Y: [n, d2] activations of the same n samples (rows aligned).
        debiased: use the unbiased HSIC (needs n >= 4).

    Returns:
        CKA, dimensionless, 1 for identical representations (nan if one side is constant).
    """
    return float(cka_map([X], [Y], debiased=debiased).matrix[0, 0])


@dataclass(frozen=True)
class CKAMap(Result):
    """CKA between every pair of representations from two lists (layers of one model, or of two models).

    Fields:
        matrix: [len(row_names), len(column_names)] CKA values (dimensionless, 1 = same up to rotation+scale).
        row_names, column_names: the site names. debiased: whether the unbiased HSIC was used.
        diagonal: CKA of matched pairs (row k vs column k) when the lists have equal length, else empty.
        n_samples: number of samples.
    """

    row_names: list[str]
    column_names: list[str]
    debiased: bool
    n_samples: int
    diagonal: list[float]
    matrix: np.ndarray = field(repr=False)

    def to_frame(self):
        """The CKA matrix with the site names as index (rows) and columns."""
        import pandas as pd

        return pd.DataFrame(self.matrix, index=self.row_names, columns=self.column_names)

    def plot(self, ax=None):
        """Heat map of the CKA matrix."""
        ax = axes(ax, figsize=(5.0, 4.2))
        image = ax.imshow(self.matrix, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
        ax.figure.colorbar(image, ax=ax, label="linear CKA" + (" (debiased)" if self.debiased else ""))
        step_r = max(1, len(self.row_names) // 10)
        step_c = max(1, len(self.column_names) // 10)
        ax.set_yticks(range(0, len(self.row_names), step_r), self.row_names[::step_r], fontsize=7)
        ax.set_xticks(range(0, len(self.column_names), step_c), self.column_names[::step_c], fontsize=7,
                      rotation=60)
        ax.grid(False)
        return ax


def cka_map(rows: Sequence, columns: Sequence | None = None, *, row_names: Sequence[str] | None = None,
            column_names: Sequence[str] | None = None, debiased: bool = True,
            budget_bytes: int = BUDGET_BYTES) -> CKAMap:
    """CKA between every representation in ``rows`` and every one in ``columns`` (default: ``rows`` itself).

    Computed in feature space from streamed sufficient statistics (``feature_hsic``), never from an n x n Gram:
    memory is one [d_i, d_j] float64 cross-product per pair in flight (at most ``budget_bytes`` of them per pass
    over the rows, plus one batch of rows), whatever n is. An L x L map costs L(L+1)/2 pairs.

    Args:
        rows, columns: lists of [n, d_k] arrays (numpy or Zarr, read batch by batch) over the same n samples.
        row_names, column_names: labels (default: indices). debiased: unbiased HSIC.
        budget_bytes: memory for the cross-products held during one pass (more passes when they do not fit).

    Returns:
        CKAMap.
    """
    if len(rows) == 0:
        raise ModscopeError("cka_map needs at least one representation")
    same = columns is None
    columns = rows if same else columns
    row_names = list(row_names or [str(k) for k in range(len(rows))])
    column_names = list(column_names or (row_names if same else [str(k) for k in range(len(columns))]))
    arrays = [a if hasattr(a, "shape") and hasattr(a, "__getitem__") else np.asarray(a)
              for a in list(rows) + ([] if same else list(columns))]
    n = int(arrays[0].shape[0])
    if n < (4 if debiased else 2):
        raise ModscopeError(f"CKA needs at least {4 if debiased else 2} samples, got {n}")
    for array in arrays:
        if int(array.shape[0]) != n:
            raise ModscopeError(f"X has {n} rows and Y has {array.shape[0]}; CKA needs the same samples in the "
                                "same order")
    column_ids = [j + (0 if same else len(rows)) for j in range(len(columns))]
    pairs = {(i, c) for i in range(len(rows)) for c in column_ids if not (same and c < i)}
    pairs |= {(k, k) for k in range(len(rows))} | {(c, c) for c in column_ids}
    hsic = feature_hsic(arrays, sorted(pairs), debiased=debiased, budget_bytes=budget_bytes)
    matrix = np.full((len(rows), len(columns)), np.nan)
    for i in range(len(rows)):
        for j, c in enumerate(column_ids):
            a, b = (c, i) if same and c < i else (i, c)
            denominator = hsic[i, i] * hsic[c, c]
            if denominator > 0:
                matrix[i, j] = hsic[a, b] / np.sqrt(denominator)
    diagonal = [float(matrix[k, k]) for k in range(len(rows))] if len(rows) == len(columns) else []
    return CKAMap(row_names=row_names, column_names=column_names, debiased=debiased, n_samples=n,
                  diagonal=diagonal, matrix=matrix)


def feature_hsic(arrays: Sequence, pairs: Sequence[tuple[int, int]], *, debiased: bool = True,
                 budget_bytes: int = BUDGET_BYTES, batch_bytes: int = BATCH_BYTES) -> dict[tuple[int, int], float]:
    """The HSIC numerator of ``hsic_from_grams`` for each pair (i, j) of arrays, in feature space.

    With column-centred rows x_r (of array i) and y_r (of array j), the centred Grams K = Xc Xc^T, L = Yc Yc^T
    never need to exist:

        tr(KL) = ||Xc^T Yc||_F^2,   tr K = sum_r |x_r|^2,   <diag K, diag L> = sum_r |x_r|^2 |y_r|^2,

    so the unbiased HSIC (Song et al. 2012, eq. 5, see ``hsic_from_grams``) is
    ||Xc^T Yc||_F^2 - n/(n-2) sum_r |x_r|^2 |y_r|^2 + (sum_r |x_r|^2)(sum_r |y_r|^2) / ((n-1)(n-2)).
    One pass computes the column means (float64); later passes centre each batch exactly by them and sum the
    [d_i, d_j] cross-products of as many pairs as fit in ``budget_bytes``.
    """
    n = int(arrays[0].shape[0])
    width = [int(np.prod(a.shape[1:])) for a in arrays]
    step = max(1, min(8192, batch_bytes // (8 * sum(width))))
    sums = [np.zeros(w) for w in width]
    for start in range(0, n, step):
        for k, a in enumerate(arrays):
            sums[k] += as_rows(a[start:start + step], f"representation {k}").sum(axis=0)
    means = [s / n for s in sums]
    groups: list[list[tuple[int, int]]] = [[]]
    held = 0
    for i, j in pairs:
        if groups[-1] and held + 8 * width[i] * width[j] > budget_bytes:
            groups.append([])
            held = 0
        groups[-1].append((i, j))
        held += 8 * width[i] * width[j]
    out, traces = {}, {}
    for group in groups:
        used = sorted({k for pair in group for k in pair})
        cross = {p: np.zeros((width[p[0]], width[p[1]])) for p in group}
        norm_products = dict.fromkeys(group, 0.0)
        traces.update(dict.fromkeys(used, 0.0))
        for start in range(0, n, step):
            centred = {k: as_rows(arrays[k][start:start + step], f"representation {k}") - means[k] for k in used}
            norms = {k: np.einsum("ij,ij->i", c, c) for k, c in centred.items()}
            for k in used:
                traces[k] += float(norms[k].sum())
            for i, j in group:
                cross[i, j] += centred[i].T @ centred[j]
                norm_products[i, j] += float(norms[i] @ norms[j])
        for i, j in group:
            value = float(np.sum(cross[i, j] ** 2))
            if debiased:
                value += -n / (n - 2.0) * norm_products[i, j] + traces[i] * traces[j] / ((n - 1.0) * (n - 2.0))
            out[i, j] = value
    return out
