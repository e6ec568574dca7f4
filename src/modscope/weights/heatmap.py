"""The weight matrices of a clustered network with neurons reordered by cluster (modules show as bright blocks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modscope.figures import subplots
from modscope.weights.clusterability import ClusterResult
from modscope.weights.graph import as_abs_layers


def cluster_order(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neuron order grouping clusters (isolated ``-1`` last) and the positions where a new cluster starts.

    Args:
        labels: ``[n]`` cluster of each neuron of one layer.

    Returns:
        ``(order [n], boundaries)``: ``labels[order]`` is sorted; boundaries are indices where it changes.
    """
    keys = np.where(labels < 0, labels.max() + 1, labels)
    order = np.argsort(keys, kind="stable")
    boundaries = np.nonzero(np.diff(keys[order]))[0] + 1
    return order, boundaries


def plot_cluster_heatmap(weights: Sequence, result: ClusterResult, *, title: str = ""):
    """One panel per weight matrix: ``|W_l|`` (layer ``l`` rows x layer ``l+1`` columns) sorted by cluster.

    Colour is clipped at the 99th percentile of each matrix so that a few large weights do not hide the blocks.
    If the network is modular, the diagonal blocks (same cluster on both sides) are brighter than the rest.

    Args:
        weights: the matrices that ``result`` was computed from (``[n_in, n_out]``).
        result: the :class:`ClusterResult` whose labels order the neurons.
        title: figure title.

    Returns:
        A matplotlib Figure.
    """
    layers = as_abs_layers(weights)
    per_layer = result.layer_labels()
    fig, axs = subplots(1, len(layers), figsize=(max(6.0, 4.2 * len(layers)), 4.0), squeeze=False)
    for lay, (ax, w) in enumerate(zip(axs[0], layers, strict=True)):
        (rows, row_bounds), (cols, col_bounds) = cluster_order(per_layer[lay]), cluster_order(per_layer[lay + 1])
        image = w[np.ix_(rows, cols)]  # |W_l| (``as_abs_layers``) with both sides sorted by cluster
        shown = ax.imshow(image, aspect="auto", cmap="magma", interpolation="nearest",
                          vmin=0, vmax=float(np.percentile(image, 99)))
        for b in row_bounds:
            ax.axhline(b - 0.5, color="white", lw=0.8)
        for b in col_bounds:
            ax.axvline(b - 0.5, color="white", lw=0.8)
        ax.set_xlabel(f"layer {lay + 1} neurons (sorted by cluster)")
        ax.set_ylabel(f"layer {lay} neurons (sorted by cluster)")
        ax.set_title(f"|W_{lay}|")
        ax.grid(False)
        fig.colorbar(shown, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
