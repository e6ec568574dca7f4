"""Spectral clustering of a layered neuron graph: normalised-Laplacian eigenvectors (via the bipartite trick) + k-means.

A layered network's graph is bipartite (even layers vs odd layers), so its normalised adjacency
``N = D^-1/2 A D^-1/2`` is ``[[0, B], [B^T, 0]]`` with ``B`` the degree-normalised biadjacency. The eigenpairs of
``N`` are ``(±s_i, [u_i; ±v_i] / sqrt 2)`` for the singular triplets ``(s_i, u_i, v_i)`` of ``B``, and the smallest
eigenvalues ``1 - s_i`` of the normalised Laplacian ``L = I - N`` belong to the largest ``s_i`` (Dhillon 2001,
"Co-clustering documents and words using bipartite spectral graph partitioning"). So the spectral embedding is the
top-k singular vectors of ``B``, found with ``eigsh`` on the smaller Gram ``B B^T`` or ``B^T B`` (eigenvalues
``s_i^2``, which widens the relative gaps that Lanczos converges on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from modscope.errors import ModscopeError
from modscope.figures import axes
from modscope.results import Result
from modscope.stats.spectral_clustering import kmeans
from modscope.weights.graph import layer_sizes

DENSE_BELOW = 64  # Gram side at or below which an exact dense eigh is used (ARPACK needs k < n)


@dataclass(frozen=True)
class SpectralPartition(Result):
    """A spectral clustering of one graph.

    Attributes:
        labels: ``[n_nodes]`` cluster of each neuron in layer order; ``-1`` for isolated (zero-degree) neurons.
        eigenvalues: ``[k]`` smallest eigenvalues of the normalised Laplacian, ascending (0 for each connected
            component; values near 0 mean nearly separate clusters).
        n_isolated: neurons with no nonzero edge, left out of the clustering and the n-cut.
    """

    labels: np.ndarray
    eigenvalues: np.ndarray
    n_isolated: int

    _frame_columns = ("labels",)

    def plot(self, ax=None):
        """The smallest Laplacian eigenvalues (a gap after the k-th says k clusters are well separated)."""
        ax = axes(ax)
        ax.plot(np.arange(1, len(self.eigenvalues) + 1), self.eigenvalues, "o-")
        ax.set_xlabel("index i")
        ax.set_ylabel("Laplacian eigenvalue")
        return ax


def _split(vector: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    return np.split(vector, np.cumsum(sizes)[:-1])


def spectral_embedding(
    layers: Sequence[np.ndarray], k: int, *, tol: float = 1e-3, seed: int = 0, solver: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-walk spectral embedding ``D^-1/2 [u_1..u_k]`` of a layered graph (Shi & Malik 2000).

    The ``u_i`` are the eigenvectors of the ``k`` smallest eigenvalues of ``L = I - D^-1/2 A D^-1/2``, the first
    being the trivial ``D^1/2 1`` (constant after scaling, as in scikit-learn's ``spectral_clustering`` which
    Filan et al. 2021 used).

    Args:
        layers: ``[|W_0|, |W_1|, ...]`` from :func:`modscope.weights.graph.as_abs_layers`.
        k: number of eigenvectors (= clusters).
        tol: ARPACK relative tolerance on the eigenvalues; 1e-3 moves the n-cut by < 1e-3 relative (see
            ``benchmarks/clusterability.py``) at a third of the cost of machine precision.
        seed: seed of ARPACK's start vector (fixed, so runs are reproducible).
        solver: ``"arpack"`` (``eigsh`` on a matrix-free Gram operator), ``"dense"`` (exact SVD) or ``"auto"``.

    Returns:
        ``(embedding [n_nodes, k], laplacian_eigenvalues [k] ascending, isolated [n_nodes] bool)``.
    """
    sizes = layer_sizes(layers)
    n_even, n_odd = sum(sizes[0::2]), sum(sizes[1::2])
    if not 1 <= k <= min(n_even, n_odd):
        raise ModscopeError(
            f"k={k} clusters needs 1 <= k <= {min(n_even, n_odd)} (the smaller side of the bipartite neuron "
            "graph); choose a smaller k"
        )
    degrees = [np.zeros(n) for n in sizes]  # weighted degree of every neuron, per layer, in float64
    for lay, w in enumerate(layers):
        degrees[lay] += w.sum(axis=1, dtype=np.float64)
        degrees[lay + 1] += w.sum(axis=0, dtype=np.float64)
    inv_sqrt = [np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0) for d in degrees]
    dtype = layers[0].dtype
    scaled = [(w * inv_sqrt[i][:, None].astype(dtype)) * inv_sqrt[i + 1][None, :].astype(dtype)
              for i, w in enumerate(layers)]
    even_sizes, odd_sizes = sizes[0::2], sizes[1::2]

    def across(x: np.ndarray, to_odd: bool) -> np.ndarray:  # B^T x (even -> odd layers) or B x (odd -> even)
        parts = _split(x, even_sizes if to_odd else odd_sizes)
        out = [np.zeros((n, *x.shape[1:]), dtype=x.dtype) for n in (odd_sizes if to_odd else even_sizes)]
        for lay, s in enumerate(scaled):  # layer lay is on the even side when lay is even
            even, odd, even_to_odd = (lay + 1) // 2, lay // 2, s.T if lay % 2 == 0 else s
            if to_odd:
                out[odd] += even_to_odd @ parts[even]
            else:
                out[even] += even_to_odd.T @ parts[odd]
        return np.concatenate(out)

    even_side = n_even <= n_odd
    forward, back = (lambda x: across(x, even_side)), (lambda x: across(x, not even_side))
    n_small = min(n_even, n_odd)
    if solver == "auto":
        solver = "dense" if n_small <= DENSE_BELOW or k >= n_small else "arpack"
    if solver not in ("dense", "arpack"):
        raise ModscopeError(f"unknown solver '{solver}'; use 'auto', 'arpack' or 'dense'")
    if solver == "arpack":
        op = LinearOperator((n_small, n_small), matvec=lambda v: back(forward(v.astype(dtype))), dtype=dtype)
        v0 = np.random.default_rng(seed).uniform(0.5, 1.5, n_small)
        try:
            values, vectors = eigsh(op, k=k, which="LA", tol=tol, v0=v0)
            order = np.argsort(values)[::-1]
            values, vectors = values[order].astype(np.float64), vectors[:, order].astype(np.float64)
        except ArpackNoConvergence:  # rare; the exact Gram is always an answer
            solver = "dense"
    if solver == "dense":
        gram = back(forward(np.eye(n_small, dtype=dtype))).astype(np.float64)
        values, vectors = np.linalg.eigh((gram + gram.T) / 2)
        values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
    singular = np.sqrt(np.clip(values, 0.0, None))
    other = forward(vectors.astype(dtype)).astype(np.float64)
    other = np.divide(other, singular, out=np.zeros_like(other), where=singular > 1e-12)
    even_vectors, odd_vectors = (vectors, other) if even_side else (other, vectors)
    even_parts, odd_parts = _split(even_vectors, even_sizes), _split(odd_vectors, odd_sizes)
    per_layer = [even_parts[i // 2] if i % 2 == 0 else odd_parts[i // 2] for i in range(len(sizes))]
    embedding = np.concatenate(per_layer) * np.concatenate(inv_sqrt)[:, None]
    isolated = np.concatenate(degrees) <= 0
    return embedding, np.sort(np.clip(1.0 - singular, 0.0, None)), isolated


def spectral_clusters(
    layers: Sequence[np.ndarray], k: int, *, tol: float = 1e-3, seed: int = 0, solver: str = "auto"
) -> SpectralPartition:
    """Cluster a layered neuron graph into ``k`` groups: spectral embedding, then k-means on its rows.

    Args:
        layers: ``[|W_0|, |W_1|, ...]`` from :func:`modscope.weights.graph.as_abs_layers`.
        k: number of clusters. tol, solver: see :func:`spectral_embedding`. seed: ARPACK and k-means seed.

    Returns:
        A :class:`SpectralPartition`.
    """
    embedding, eigenvalues, isolated = spectral_embedding(layers, k, tol=tol, seed=seed, solver=solver)
    labels = np.full(len(embedding), -1, dtype=np.int64)
    labels[~isolated] = kmeans(embedding[~isolated], k, seed=seed)
    return SpectralPartition(labels=labels, eigenvalues=eigenvalues, n_isolated=int(isolated.sum()))
