"""Linear centred kernel alignment between two sets of activations of the same samples, and CKA maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.geometry.similarity import as_rows
from modscope.report.style import axes
from modscope.results import Result


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
    X, Y = as_rows(X, "X"), as_rows(Y, "Y")
    check_rows(len(X), len(Y), debiased)
    return cka_from_grams(centred_gram(X), centred_gram(Y), debiased=debiased)


def check_rows(n_x: int, n_y: int, debiased: bool) -> None:
    if n_x != n_y:
        raise ModscopeError(f"X has {n_x} rows and Y has {n_y}; CKA needs the same samples in the same order")
    if n_x < (4 if debiased else 2):
        raise ModscopeError(f"CKA needs at least {4 if debiased else 2} samples, got {n_x}")


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
            column_names: Sequence[str] | None = None, debiased: bool = True) -> CKAMap:
    """CKA between every representation in ``rows`` and every one in ``columns`` (default: ``rows`` itself).

    Each centred Gram is computed once, so an L x L map costs L Grams plus L^2 elementwise products of [n, n].

    Args:
        rows, columns: lists of [n, d_k] arrays over the same n samples.
        row_names, column_names: labels (default: indices). debiased: unbiased HSIC.

    Returns:
        CKAMap.
    """
    if len(rows) == 0:
        raise ModscopeError("cka_map needs at least one representation")
    same = columns is None
    columns = rows if same else columns
    row_names = list(row_names or [str(k) for k in range(len(rows))])
    column_names = list(column_names or (row_names if same else [str(k) for k in range(len(columns))]))
    n = len(rows[0])
    for array in list(rows) + list(columns):
        check_rows(n, len(array), debiased)
    row_grams = [centred_gram(X) for X in rows]
    column_grams = row_grams if same else [centred_gram(Y) for Y in columns]
    self_hsic_r = [hsic_from_grams(K, K, debiased=debiased) for K in row_grams]
    self_hsic_c = self_hsic_r if same else [hsic_from_grams(L, L, debiased=debiased) for L in column_grams]
    matrix = np.full((len(rows), len(columns)), np.nan)
    for i, K in enumerate(row_grams):
        for j, L in enumerate(column_grams):
            if same and j < i:
                matrix[i, j] = matrix[j, i]
                continue
            denominator = self_hsic_r[i] * self_hsic_c[j]
            if denominator > 0:
                matrix[i, j] = hsic_from_grams(K, L, debiased=debiased) / np.sqrt(denominator)
    diagonal = [float(matrix[k, k]) for k in range(len(rows))] if len(rows) == len(columns) else []
    return CKAMap(row_names=row_names, column_names=column_names, debiased=debiased, n_samples=n,
                  diagonal=diagonal, matrix=matrix)
