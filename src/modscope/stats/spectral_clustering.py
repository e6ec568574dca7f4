"""Spectral clustering: leading eigenvectors of a degree-normalised affinity, then k-means on their rows.

Both block finders use it: ``stats.blocks`` on a dense |correlation| affinity (Ng, Jordan & Weiss 2001) and
``weights.spectral_clusters`` on a layered neuron graph, whose embedding comes from the bipartite (co-clustering)
trick of Dhillon 2001 instead of ``normalized_embedding`` (see ``modscope.weights.spectral``). ``kmeans`` is also
the k-means of the residual-stream clusters (``modscope.geometry.clusters``); ``silhouettes`` scores a batch of
labellings from a dissimilarity matrix (those clusters and ``geometry.separation``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import eigh

from modscope.errors import ModscopeError


def normalized_embedding(A: np.ndarray, n_top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading eigenpairs of the normalised affinity N = D^-1/2 A D^-1/2 (D = diag of the row sums of A).

    Args:
        A: [d, d] symmetric non-negative affinity. n_top: eigenpairs wanted (at most d).

    Returns:
        (eigenvalues [n_top] descending, eigenvectors [d, n_top] as columns, D^-1/2 [d] with 1 for zero degree).
    """
    degree = A.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    d = A.shape[0]
    # only the leading eigenpairs are needed (eigengap, embedding, Fiedler vector): a subset eigh
    values, vectors = eigh(A * inv_sqrt[:, None] * inv_sqrt[None, :], subset_by_index=(d - n_top, d - 1))
    return values[::-1], vectors[:, ::-1], inv_sqrt


def kmeans(points: np.ndarray, k: int, *, n_init: int = 10, seed: int = 0) -> np.ndarray:
    """k-means on the rows of ``points``: scikit-learn's ``KMeans`` (k-means++ starts, Arthur & Vassilvitskii
    2007; Lloyd iterations; the lowest-inertia of ``n_init`` starts wins; ``random_state=seed``).

    Args:
        points: [n, dims] rows to cluster (an embedding). k: clusters. n_init: starts. seed: fixed random state.

    Returns:
        [n] labels in 0..k-1, renumbered in order of first occurrence (so equal partitions give equal labels).
    """
    from sklearn.cluster import KMeans  # imported on use: scikit-learn takes a second to import
    from threadpoolctl import threadpool_limits

    points = np.asarray(points, dtype=np.float64)
    if len(points) < k:
        raise ModscopeError(f"cannot form k={k} clusters from {len(points)} points; choose a smaller k")
    # one OpenMP thread: the null forks worker processes, and a forked child of a process whose GNU OpenMP pool
    # has started deadlocks at its first parallel region; embeddings are small, so nothing is lost
    with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("ignore")  # fewer distinct points than k: an empty cluster, a valid answer
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(points).labels_
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


def silhouettes(D: np.ndarray, codes: np.ndarray, n_categories: int) -> np.ndarray:
    """Mean silhouette s_i = (b_i - a_i) / max(a_i, b_i) for a batch of label vectors [P, n] (D has zero diagonal)."""
    onehot = np.eye(n_categories)[codes]  # [P, n, c]
    sums = D @ onehot  # [P, n, c]: sum_j D_ij [label_p(j) = c], a batched GEMM (no transposed copy)
    counts = onehot.sum(axis=1)[:, None, :]  # [P, 1, c]
    own = onehot.astype(bool)
    own_count = np.where(own, counts - 1, counts)
    mean_dist = np.divide(sums, own_count, out=np.full_like(sums, np.nan), where=own_count > 0)
    a = np.where(own, mean_dist, 0.0).sum(axis=2)
    b = np.where(own | (counts == 0), np.inf, mean_dist).min(axis=2)
    singleton = (own * (counts == 1)).sum(axis=2) > 0
    scale = np.maximum(a, b)
    s = np.divide(b - a, scale, out=np.zeros_like(a), where=scale > 0)
    return np.where(singleton, 0.0, s).mean(axis=1)
