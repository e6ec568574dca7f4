"""Clusterability of every unit of a network (MLP blocks of an LM, layers of an MLP) and its summary in words."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from modscope.figures import NULL, axes, model_colour, subplots
from modscope.results import Result
from modscope.weights.clusterability import ClusterResult, clusterability

Z_THRESHOLD = -3.0  # a unit counts as "more clusterable than chance" below this z


@dataclass(frozen=True)
class NetworkClusterability(Result):
    """Per-unit clusterability of one network, each unit against its own shuffled-weights null.

    Attributes:
        model: the network's name (``smollm2-135m``, ``random:smollm2-135m``, ``mnist-mlp``...).
        graph: how each unit's graph was built (which matrices, gate combination).
        k: clusters per unit. n_shuffles: null networks per unit. seed: seed of shuffles and clustering.
        units: unit names (``mlp.0``... or ``all``, ``layer.0``...).
        layer_sizes: neurons per layer of each unit's graph.
        ncut: ``[n_units]`` observed n-cut (dimensionless, ``[0, k]``, lower = more modular).
        null_mean, null_sd: ``[n_units]`` mean and sd of the shuffled n-cuts.
        z: ``[n_units]`` ``(ncut - null_mean) / null_sd``. p_value: ``[n_units]`` one-sided shuffle p.
        null_ncuts: ``[n_units, n_shuffles]`` the shuffled n-cuts.
        eigenvalues: ``[n_units, k]`` smallest normalised-Laplacian eigenvalues of each unit's graph.
        cluster_sizes: ``[n_units, k]`` neurons per cluster (a tiny cluster is often a few outlier neurons).
        seconds: wall time of the whole computation (s).
        results: the per-unit :class:`ClusterResult` (with cluster labels; not in JSON).
    """

    model: str
    graph: str
    k: int
    n_shuffles: int
    seed: int
    units: tuple[str, ...]
    layer_sizes: tuple[tuple[int, ...], ...]
    ncut: np.ndarray
    null_mean: np.ndarray
    null_sd: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    null_ncuts: np.ndarray
    eigenvalues: np.ndarray
    cluster_sizes: np.ndarray
    seconds: float
    results: tuple[ClusterResult, ...]

    _json_exclude: ClassVar[tuple[str, ...]] = ("results",)
    _frame_columns = ("units", "ncut", "null_mean", "null_sd", "z", "p_value")

    @property
    def n_clusterable(self) -> int:
        """Units with ``z < -3`` (more clusterable than their shuffles)."""
        return int(np.sum(self.z < Z_THRESHOLD))

    def result(self, unit: str) -> ClusterResult:
        return self.results[self.units.index(unit)]

    def plot(self, ax=None):
        """Observed n-cut per unit (line) over the shuffled-weights null mean ± 2 sd (grey band)."""
        return plot_ncut_vs_null([self], ax=ax)


def network_clusterability(
    units: Mapping[str, Sequence],
    *,
    model: str = "",
    graph: str = "",
    k: int = 4,
    n_shuffles: int = 50,
    seed: int = 0,
    progress: Callable[[str, ClusterResult], None] | None = None,
    **kwargs,
) -> NetworkClusterability:
    """Run :func:`modscope.weights.clusterability` on each unit (a list of weight matrices) of a network.

    Args:
        units: unit name -> consecutive ``[n_in, n_out]`` weight matrices (see ``modscope.weights.models``).
        model, graph: labels stored in the result. k, n_shuffles, seed, kwargs: passed to ``clusterability``.
        progress: called as ``progress(unit, result)`` after each unit.

    Returns:
        A :class:`NetworkClusterability`.
    """
    start = time.perf_counter()
    results = []
    for name, weights in units.items():
        results.append(clusterability(weights, k=k, n_shuffles=n_shuffles, seed=seed, **kwargs))
        if progress is not None:
            progress(name, results[-1])

    def field(attr: str) -> np.ndarray:
        return np.array([getattr(r, attr) for r in results], dtype=np.float64)

    return NetworkClusterability(
        model=model, graph=graph, k=k, n_shuffles=n_shuffles, seed=seed, units=tuple(units),
        layer_sizes=tuple(r.layer_sizes for r in results), ncut=field("ncut"), null_mean=field("null_mean"),
        null_sd=field("null_sd"), z=field("z"), p_value=field("p_value"),
        null_ncuts=np.array([r.null_ncuts for r in results]).reshape(len(results), n_shuffles),
        eigenvalues=np.array([r.eigenvalues for r in results]),
        cluster_sizes=np.array([r.cluster_sizes for r in results], dtype=np.int64), seconds=time.perf_counter() - start,
        results=tuple(results),
    )


def plot_ncut_vs_null(networks: Sequence[NetworkClusterability], ax=None):
    """n-cut per unit for several networks (trained blue, twin orange), each over its own null band."""
    ax = axes(ax)
    for net in networks:
        x = np.arange(len(net.units))
        colour = model_colour(net.model)
        ax.fill_between(x, net.null_mean - 2 * net.null_sd, net.null_mean + 2 * net.null_sd, color=NULL,
                        alpha=0.35, step="mid", lw=0)
        ax.plot(x, net.null_mean, color=NULL, lw=1, ls="--")
        ax.plot(x, net.ncut, "o-", color=colour, ms=3, label=f"{net.model} ({net.n_clusterable} units z<-3)")
    first = networks[0]
    step = max(1, len(first.units) // 12)
    ax.set_xticks(np.arange(len(first.units))[::step], first.units[::step], rotation=45, ha="right")
    ax.set_ylabel(f"n-cut, k = {first.k} (lower = more clusterable)")
    ax.set_title(f"observed vs shuffled weights (grey: null mean ± 2 sd, {first.n_shuffles} shuffles)")
    ax.legend()
    return ax


def plot_z(networks: Sequence[NetworkClusterability], ax=None):
    """Clusterability z-score per unit for several networks, with the z = -3 line."""
    ax = axes(ax)
    for net in networks:
        ax.plot(np.arange(len(net.units)), net.z, "o-", color=model_colour(net.model), ms=3, label=net.model)
    ax.axhline(Z_THRESHOLD, color=NULL, ls="--", lw=1, label="z = -3")
    ax.axhline(0, color=NULL, lw=0.8)
    first = networks[0]
    step = max(1, len(first.units) // 12)
    ax.set_xticks(np.arange(len(first.units))[::step], first.units[::step], rotation=45, ha="right")
    ax.set_ylabel("z = (n-cut − null mean) / null sd")
    ax.legend()
    return ax


def plot_ncut_and_z(networks: Sequence[NetworkClusterability]):
    """The page's key figure: ``plot_ncut_vs_null`` (left) next to ``plot_z`` (right); returns the Figure."""
    fig, (left, right) = subplots(1, 2, figsize=(11, 3.8))
    plot_ncut_vs_null(networks, ax=left)
    plot_z(networks, ax=right)
    return fig


def describe(trained: NetworkClusterability, twin: NetworkClusterability | None = None) -> tuple[list[str], str]:
    """Headline sentences (each with its null) and a one-line verdict written from the numbers."""
    def line(net: NetworkClusterability) -> str:
        best = int(np.argmin(net.z))
        return (f"{net.model}: {net.n_clusterable}/{len(net.units)} units have n-cut below their shuffled-weights "
                f"null (z < -3, {net.n_shuffles} shuffles each); median z = {np.median(net.z):.2f}; most "
                f"clusterable {net.units[best]}: n-cut {net.ncut[best]:.4f} vs null {net.null_mean[best]:.4f} "
                f"± {net.null_sd[best]:.4f} (z = {net.z[best]:.2f}, p = {net.p_value[best]:.3g})")

    headline = [line(trained)] + ([line(twin)] if twin is not None else [])
    n = len(trained.units)
    if trained.n_clusterable == 0:
        verdict = (f"No unit of {trained.model} is more clusterable than its shuffled weights (k={trained.k}): "
                   "no evidence of modules in the weight graph.")
    else:
        verdict = f"{trained.n_clusterable}/{n} units of {trained.model} are more clusterable than shuffled weights"
        if twin is not None:
            verdict += f" vs {twin.n_clusterable}/{len(twin.units)} for {twin.model}"
        verdict += (f"; median n-cut is {np.median(trained.null_mean - trained.ncut):.4f} below the null "
                    f"(out of a range 0..{trained.k}).")
    return headline, verdict
