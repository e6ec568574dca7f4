"""The weighted graph of a layered network: neurons are nodes, |weights| are edges, and its normalised cut."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from modscope.errors import ModscopeError


def as_abs_layers(weights: Sequence, *, dtype=np.float32) -> list[np.ndarray]:
    """Validate a list of consecutive weight matrices and return their absolute values.

    Args:
        weights: matrices oriented ``[n_in, n_out]`` (``torch.nn.Linear.weight.T``), numpy arrays or torch
            tensors, with ``weights[i].shape[1] == weights[i + 1].shape[0]``.
        dtype: dtype of the returned arrays (float32 halves the memory traffic of the eigensolver).

    Returns:
        ``[|W_0|, |W_1|, ...]`` as C-contiguous arrays: ``|W_l|[i, j]`` is the edge between neuron ``i`` of
        layer ``l`` and neuron ``j`` of layer ``l + 1``.
    """
    if isinstance(weights, np.ndarray) or hasattr(weights, "detach"):
        weights = [weights]
    if len(weights) == 0:
        raise ModscopeError("clusterability needs at least one weight matrix; pass a list of [n_in, n_out] arrays")
    layers = []
    for i, w in enumerate(weights):
        if hasattr(w, "detach"):
            w = w.detach().cpu().float().numpy()
        w = np.asarray(w)
        if w.ndim != 2 or min(w.shape) == 0:
            raise ModscopeError(f"weight matrix {i} has shape {w.shape}; each must be a non-empty 2-D [n_in, n_out]")
        if not np.all(np.isfinite(w)):
            raise ModscopeError(f"weight matrix {i} contains NaN or inf; clusterability needs finite weights")
        if layers and layers[-1].shape[1] != w.shape[0]:
            raise ModscopeError(
                f"weight matrix {i} has shape {w.shape} but matrix {i - 1} has {layers[-1].shape[1]} outputs; "
                "pass consecutive matrices oriented [n_in, n_out] (for torch.nn.Linear use weight.T)"
            )
        layers.append(np.ascontiguousarray(np.abs(w), dtype=dtype))
    return layers


def layer_sizes(layers: Sequence[np.ndarray]) -> tuple[int, ...]:
    """Neurons per layer of a layered graph: ``(n_0, n_1, ..., n_L)`` for ``L`` weight matrices."""
    return (layers[0].shape[0], *(w.shape[1] for w in layers))


def layered_adjacency(weights: Sequence) -> sp.csr_matrix:
    """The symmetric sparse adjacency matrix of a layered network's neuron graph.

    Nodes are the neurons of all layers, in order (layer 0 first). ``A`` is block-tridiagonal with zero diagonal
    blocks: ``A[layer l, layer l+1] = |W_l|`` and its transpose below the diagonal (Filan et al. 2021, sec. 2).

    Args:
        weights: consecutive ``[n_in, n_out]`` matrices (see :func:`as_abs_layers`).

    Returns:
        ``A`` as a float64 CSR matrix of shape ``[n_nodes, n_nodes]``, ``n_nodes = sum(layer_sizes)``.
    """
    layers = as_abs_layers(weights, dtype=np.float64)
    blocks = [[None] * (len(layers) + 1) for _ in range(len(layers) + 1)]
    for lay, w in enumerate(layers):
        blocks[lay][lay + 1], blocks[lay + 1][lay] = sp.coo_matrix(w), sp.coo_matrix(w.T)
    return sp.bmat(blocks, format="csr")


def ncut(adjacency, labels: np.ndarray) -> float:
    """Normalised cut of a partition of any weighted graph (Shi & Malik 2000; Filan et al. 2021, eq. 1).

    ``ncut = sum_c cut(X_c, not X_c) / vol(X_c)``, with ``cut`` the total edge weight leaving cluster ``X_c`` and
    ``vol`` the sum of its nodes' degrees. It lies in ``[0, k]``; lower means better separated clusters.
    Nodes labelled ``-1`` (isolated neurons) are left out; empty clusters contribute nothing.

    Args:
        adjacency: symmetric ``[n, n]`` matrix (sparse or dense) of non-negative edge weights.
        labels: ``[n]`` integer cluster of each node (``-1`` = excluded).

    Returns:
        The n-cut (dimensionless).
    """
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    labels = np.asarray(labels)
    keep = labels >= 0
    n_clusters = int(labels.max()) + 1 if keep.any() else 0
    onehot = sp.csr_matrix(
        (np.ones(keep.sum()), (np.nonzero(keep)[0], labels[keep])), shape=(len(labels), max(n_clusters, 1))
    )
    return ncut_of_between((onehot.T @ adjacency @ onehot).toarray())


def ncut_of_between(between: np.ndarray) -> float:
    """n-cut from the ``[k, k]`` total edge weight between clusters: ``sum_c (vol_c - between_cc) / vol_c``."""
    volume = between.sum(axis=1)
    present = volume > 0
    return float(np.sum((volume - np.diag(between))[present] / volume[present]))


def layered_ncut(layers: Sequence[np.ndarray], labels: np.ndarray, k: int) -> float:
    """n-cut of a layered graph computed from its weight blocks (same value as :func:`ncut` on the adjacency).

    For each layer ``l`` the between-cluster weights are ``H_l^T |W_l| H_{l+1}`` with ``H`` the one-hot cluster
    matrices; this avoids building the sparse adjacency, so it costs one pass over the weights.

    Args:
        layers: ``[|W_0|, |W_1|, ...]`` from :func:`as_abs_layers`.
        labels: ``[n_nodes]`` cluster per neuron in layer order (``-1`` = excluded).
        k: number of clusters.

    Returns:
        The n-cut (dimensionless).
    """
    onehot = (np.asarray(labels)[:, None] == np.arange(k)).astype(layers[0].dtype)  # a -1 row stays all zero
    onehots = np.split(onehot, np.cumsum(layer_sizes(layers))[:-1])
    between = np.zeros((k, k))
    for lay, w in enumerate(layers):
        block = (onehots[lay].T @ (w @ onehots[lay + 1])).astype(np.float64)
        between += block + block.T
    return ncut_of_between(between)
