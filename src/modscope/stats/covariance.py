"""Streaming float64 mean/covariance with an exact merge of partial results (Chan, Golub & LeVeque 1979)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from modscope.engine import DEFAULT_ROWS, as_rows, feature_dim, iter_chunks, map_reduce, resolve
from modscope.errors import ModscopeError

__all__ = ["DEFAULT_ROWS", "Covariance", "as_rows", "covariance", "feature_dim", "iter_joint_batches",
           "merge_covariances", "prefix_covariances", "resolve"]
iter_joint_batches = iter_chunks  # the old name of the one streaming loop


class Covariance:
    """Running mean and scatter matrix of the rows seen so far, in float64.

    State: ``n`` rows, ``mean`` (d,) and the centred scatter ``M2 = sum_i (x_i - mean)(x_i - mean)^T``.
    A batch is folded in with one float64 GEMM on the batch centred by its own mean, then merged with
    the parallel formula of Chan et al. (1979), eq. 2.1b:

        n = n_a + n_b,  delta = mean_b - mean_a,
        mean = mean_a + delta * n_b / n,
        M2 = M2_a + M2_b + delta delta^T * n_a n_b / n.

    Because ``merge`` is exact, partial accumulators from several workers (``from_batch`` on each chunk)
    combine into the same answer as one pass over all rows, in any order.
    """

    def __init__(self, dim: int):
        if dim < 1:
            raise ModscopeError(f"a covariance needs at least one dimension, got dim={dim}")
        self.dim = int(dim)
        self.n = 0
        self._mean = np.zeros(dim, dtype=np.float64)
        self._m2 = np.zeros((dim, dim), dtype=np.float64)

    @classmethod
    def from_batch(cls, batch: Any) -> Covariance:
        """The accumulator of one chunk of rows [rows, dim] (the per-chunk kernel of a parallel reduction)."""
        rows = as_rows(batch)
        return cls(rows.shape[1]).update(rows)

    @classmethod
    def from_moments(cls, n: int, mean: np.ndarray, m2: np.ndarray) -> Covariance:
        """Rebuild an accumulator from its state (``n``, ``mean``, scatter ``m2``), e.g. after serialising it."""
        mean = np.asarray(mean, dtype=np.float64)
        acc = cls(mean.shape[0])
        acc.n, acc._mean, acc._m2 = int(n), mean.copy(), np.asarray(m2, dtype=np.float64).copy()
        return acc

    def update(self, batch: Any) -> Covariance:
        """Fold a batch [rows, dim] (any float dtype) into the running moments; returns self."""
        rows = as_rows(batch)
        if rows.shape[1] != self.dim:
            raise ModscopeError(f"batch has {rows.shape[1]} columns but the accumulator has dim={self.dim}")
        if rows.shape[0] == 0:
            return self
        centred = np.array(rows, dtype=np.float64, copy=True)
        batch_mean = centred.mean(axis=0)
        centred -= batch_mean
        return self._combine(rows.shape[0], batch_mean, centred.T @ centred)

    def merge(self, other: Covariance) -> Covariance:
        """Fold another accumulator over different rows of the same columns into this one; returns self."""
        if other.dim != self.dim:
            raise ModscopeError(f"cannot merge accumulators of dim {other.dim} and {self.dim}")
        if other.n == 0:
            return self
        return self._combine(other.n, other._mean, other._m2)

    def _combine(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> Covariance:
        n_a, n = self.n, self.n + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.n = n
        return self

    def copy(self) -> Covariance:
        return Covariance.from_moments(self.n, self._mean, self._m2)

    def marginal(self, columns: slice | Sequence[int] | np.ndarray) -> Covariance:
        """The accumulator of a subset of columns (e.g. the X block of a joint [X, Y] accumulator)."""
        idx = np.arange(self.dim)[columns]
        return Covariance.from_moments(self.n, self._mean[idx], self._m2[np.ix_(idx, idx)])

    @property
    def mean(self) -> np.ndarray:
        """Column means (d,), float64."""
        return self._mean.copy()

    @property
    def scatter(self) -> np.ndarray:
        """Centred scatter matrix sum_i (x_i - mean)(x_i - mean)^T (d, d), float64."""
        return self._m2.copy()

    @property
    def cov(self) -> np.ndarray:
        """Unbiased sample covariance M2 / (n - 1) (d, d), float64 — the same as ``np.cov(X, rowvar=False)``."""
        if self.n < 2:
            raise ModscopeError(f"a sample covariance needs at least 2 rows, have {self.n}")
        return self._m2 / (self.n - 1)

    @property
    def corr(self) -> np.ndarray:
        """Sample correlation matrix (d, d); columns with zero variance get zero correlation and unit diagonal."""
        cov = self.cov
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        safe = np.where(sd > 0, sd, 1.0)
        corr = cov / np.outer(safe, safe)
        corr[sd == 0, :] = 0.0
        corr[:, sd == 0] = 0.0
        np.fill_diagonal(corr, 1.0)
        return corr

    def __repr__(self) -> str:
        return f"Covariance(dim={self.dim}, n={self.n})"


def merge_covariances(parts: list[Covariance]) -> Covariance:
    """Exact merge of partial accumulators (``Covariance.merge``, Chan et al. 1979); the inputs are not modified."""
    return functools.reduce(Covariance.merge, parts[1:], parts[0].copy())


def covariance(*sources: Any, engine: str = "local", chunk_rows: int | None = None, client: Any = None,
               scheduler: str | None = None, rows: int | None = None) -> Covariance:
    """Stream the covariance of one source, or the joint covariance of several row-aligned sources.

    The per-chunk kernel is ``Covariance.from_batch`` (a float64 GEMM on the centred chunk) and the merge is
    ``Covariance.merge``, mapped by ``modscope.engine.map_reduce``: here, chunk by chunk, or on Dask, one task per
    group of Zarr chunks (a task needs about ``rows x features x 12`` bytes plus ``features^2 x 8``).

    Args:
        sources: each a numpy array [n, ...], a Zarr array, or ``(store, site)`` of an ActivationStore.
            With several, the result is the joint accumulator over the concatenated columns
            [d_1 + d_2 + ...], read chunk by chunk so no source is materialised whole.
        engine: ``local`` (this process) or ``dask``. chunk_rows: rows per chunk (default: 8192 locally, the
            Zarr chunks grown to ~32 MB on Dask; ``rows=`` is the old spelling). client / scheduler: a Dask
            client or scheduler address (default: a LocalCluster sized to the machine).

    Returns:
        A ``Covariance`` with ``.n``, ``.mean``, ``.cov``.
    """
    if not sources:
        raise ModscopeError("covariance() needs at least one array or (store, site) pair")
    return map_reduce(Covariance.from_batch, list(sources), merge_covariances, engine=engine,
                      chunk_rows=chunk_rows or rows, client=client, scheduler=scheduler)


def prefix_covariances(sources: Sequence[Any], sizes: Sequence[int], *, order: np.ndarray | None = None,
                       rows: int = DEFAULT_ROWS) -> list[Covariance]:
    """Joint accumulators of nested row subsets, in one pass that reads the sources in stored order.

    Subset k holds the rows ``order[:sizes[k]]`` (the first ``sizes[k]`` stored rows when ``order`` is None),
    so a random ``order`` gives nested random subsets of an on-disk store without loading it. Each stored
    batch is split by the interval [sizes[k-1], sizes[k]) its rows fall in, one accumulator per interval,
    and the prefixes are exact merges of the intervals (Chan et al. 1979); the result equals a pass over
    ``order`` up to float64 round-off.

    Memory: one batch per source, one [d, d] float64 accumulator per size, and one byte per row for the
    interval label (255 sizes at most).

    Args:
        sources: row-aligned arrays (numpy, Zarr or ``(store, site)``); columns are concatenated.
        sizes: strictly increasing subset sizes, the last at most the row count.
        order: a permutation of the rows, or None.
        rows: rows per batch.

    Returns:
        One ``Covariance`` per size.
    """
    arrays = [resolve(s) for s in sources]
    total = int(arrays[0].shape[0])
    sizes = [int(s) for s in sizes]
    if not sizes or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)) or sizes[0] < 1 \
            or sizes[-1] > total or len(sizes) > 255:
        raise ModscopeError(f"subset sizes must be 1..255 increasing values in [1, {total}], got {sizes}")
    label = np.full(total, 255, dtype=np.uint8)  # 255: beyond the largest subset
    picked = slice(0, sizes[-1])
    label[order[picked] if order is not None else picked] = np.repeat(np.arange(len(sizes)), np.diff([0, *sizes]))
    intervals = [Covariance(sum(feature_dim(a) for a in arrays)) for _ in sizes]
    start = 0
    for batch in iter_chunks(arrays, chunk_rows=rows):
        here = label[start:start + batch.shape[0]]
        start += batch.shape[0]
        for k in np.unique(here[here < 255]):
            intervals[k].update(batch[here == k])
    running = Covariance(intervals[0].dim)
    return [running.merge(acc).copy() for acc in intervals]
