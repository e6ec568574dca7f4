"""Clusterability of a layered network (Filan et al. 2021): n-cut of its spectral clustering vs shuffled weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.weights.graph import as_abs_layers, layer_sizes, layered_ncut
from modscope.weights.null import compare_lower, shuffle_within_layers
from modscope.weights.spectral import spectral_clusters


@dataclass(frozen=True)
class ClusterResult(Result):
    """How clusterable one network's neuron graph is, against networks with the same weights shuffled.

    Attributes:
        k: number of clusters.
        layer_sizes: neurons per layer (nodes of the graph, in order).
        ncut: normalised cut of the spectral clustering (dimensionless, in ``[0, k]``; lower = more modular).
        labels: ``[n_nodes]`` cluster of each neuron in layer order, ``-1`` for isolated neurons (not in JSON).
        cluster_sizes: ``[k]`` neurons per cluster.
        eigenvalues: ``[k]`` smallest normalised-Laplacian eigenvalues of the graph, ascending.
        null_ncuts: ``[n_shuffles]`` n-cuts of the same clustering procedure on weight-shuffled copies.
        null_mean, null_sd: mean and sd (ddof=1) of ``null_ncuts``.
        z: ``(ncut - null_mean) / null_sd``; clearly negative (< -3) = more clusterable than chance.
        p_value: one-sided ``(1 + #{null <= ncut}) / (1 + n_shuffles)``.
        n_isolated: neurons with no nonzero weight, left out.
        seed: seed of the shuffles, ARPACK start vector and k-means.
    """

    k: int
    layer_sizes: tuple[int, ...]
    ncut: float
    labels: np.ndarray
    cluster_sizes: tuple[int, ...]
    eigenvalues: np.ndarray
    null_ncuts: np.ndarray
    null_mean: float
    null_sd: float
    z: float
    p_value: float
    n_isolated: int
    seed: int

    _json_exclude: ClassVar[tuple[str, ...]] = ("labels",)

    @property
    def n_shuffles(self) -> int:
        return len(self.null_ncuts)

    def layer_labels(self) -> list[np.ndarray]:
        """``labels`` split per layer: ``[labels of layer 0, labels of layer 1, ...]``."""
        return np.split(self.labels, np.cumsum(self.layer_sizes)[:-1])

    def plot(self, ax=None):
        """Histogram of the shuffled networks' n-cuts with the observed n-cut as a vertical line."""
        ax = axes(ax)
        if self.n_shuffles:
            ax.hist(self.null_ncuts, bins=min(20, max(5, self.n_shuffles // 3)), color=NULL, alpha=0.8,
                    label=f"shuffled weights (n={self.n_shuffles})")
        ax.axvline(self.ncut, color=TRAINED, lw=2, label=f"observed (z = {self.z:.2f})")
        ax.set_xlabel(f"n-cut, k = {self.k} (lower = more clusterable)")
        ax.set_ylabel("networks")
        ax.legend()
        return ax


def clusterability(
    weights,
    *,
    k: int = 4,
    n_shuffles: int = 50,
    seed: int = 0,
    tol: float = 1e-3,
    solver: str = "auto",
    n_jobs: int = 1,
) -> ClusterResult:
    """Spectral clusterability of a layered network with a shuffled-weights null (Filan et al. 2021).

    The neurons are the nodes of a graph whose edge between consecutive-layer neurons ``i, j`` has weight
    ``|W[i, j]|``. The graph is cut into ``k`` clusters by normalised spectral clustering (Shi & Malik 2000:
    the ``k`` smallest eigenvectors of ``L = I - D^-1/2 A D^-1/2``, scaled by ``D^-1/2``, then k-means), and the
    partition is scored by its n-cut ``sum_c cut(X_c, not X_c) / vol(X_c)``. The null re-runs the same procedure
    on ``n_shuffles`` copies whose weights were permuted within each layer.

    Args:
        weights: consecutive matrices oriented ``[n_in, n_out]`` (numpy or torch), or a torch module whose
            ``nn.Linear`` layers form an MLP (see :func:`modscope.weights.models.mlp_weights`).
        k: number of clusters (>= 2).
        n_shuffles: null networks (0 skips the null; z and p are then NaN/1).
        seed: seed of the shuffles, the eigensolver start vector and k-means.
        tol: eigensolver tolerance. solver: ``"auto"``, ``"arpack"`` or ``"dense"`` (see
            :func:`modscope.weights.spectral.spectral_embedding`).
        n_jobs: worker processes for the null (shuffle ``i`` always uses the generator seeded ``[seed, i]``, so
            the result does not depend on ``n_jobs``).

    Returns:
        A :class:`ClusterResult`.
    """
    if hasattr(weights, "named_modules"):
        from modscope.weights.models import mlp_weights

        weights = mlp_weights(weights)
    if k < 2:
        raise ModscopeError(f"k must be at least 2 clusters, got {k}")
    if n_shuffles < 0:
        raise ModscopeError(f"n_shuffles must be >= 0, got {n_shuffles}")
    layers = as_abs_layers(weights)
    if sum(layer_sizes(layers)) <= k:
        raise ModscopeError(f"a graph of {sum(layer_sizes(layers))} neurons cannot be cut into k={k} clusters")
    partition = spectral_clusters(layers, k, tol=tol, seed=seed, solver=solver)
    observed = layered_ncut(layers, partition.labels, k)
    null = null_ncuts(layers, k, range(n_shuffles), seed=seed, tol=tol, solver=solver, n_jobs=n_jobs)
    counts = np.bincount(partition.labels[partition.labels >= 0], minlength=k)
    return ClusterResult(
        k=k, layer_sizes=layer_sizes(layers), ncut=observed, labels=partition.labels,
        cluster_sizes=tuple(int(c) for c in counts), eigenvalues=partition.eigenvalues, null_ncuts=null,
        n_isolated=partition.n_isolated, seed=seed, **vars(compare_lower(observed, null)),
    )


def null_ncuts(
    layers: Sequence[np.ndarray], k: int, shuffles: Sequence[int], *, seed: int, n_jobs: int = 1, **kwargs
) -> np.ndarray:
    """n-cuts of the spectral clustering of weight-shuffled copies of ``layers`` (shuffle ``i`` seeded ``[seed, i]``).

    Args:
        layers: ``[|W_0|, ...]``. k: clusters. shuffles: indices of the null networks to make.
        seed: base seed. n_jobs: worker processes (forked; each gets the weights once). kwargs: ``tol``, ``solver``.

    Returns:
        ``[len(shuffles)]`` n-cuts.
    """
    shuffles = list(shuffles)
    if n_jobs <= 1 or len(shuffles) < 2:
        return np.array([_shuffled_ncut(layers, k, i, seed, kwargs) for i in shuffles], dtype=np.float64)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork"), initializer=_WORKER_LAYERS.extend,
                             initargs=(layers,)) as pool:  # one contiguous run of shuffles per worker
        values = pool.map(_worker_ncut, shuffles, [(k, seed, kwargs)] * len(shuffles),
                          chunksize=-(-len(shuffles) // n_jobs))
        return np.array(list(values), dtype=np.float64)


def _shuffled_ncut(layers: Sequence[np.ndarray], k: int, index: int, seed: int, kwargs: dict) -> float:
    shuffled = shuffle_within_layers(layers, np.random.default_rng([seed, index]))
    return layered_ncut(shuffled, spectral_clusters(shuffled, k, seed=seed, **kwargs).labels, k)


_WORKER_LAYERS: list[np.ndarray] = []  # a forked worker's copy, filled once by the pool's initializer


def _worker_ncut(index: int, task: tuple) -> float:
    k, seed, kwargs = task
    return _shuffled_ncut(_WORKER_LAYERS, k, index, seed, kwargs)
