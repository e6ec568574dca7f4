"""Similarity matrices between a set of activation vectors: cosine, the seed's scaled cosine, centred, dot."""

from __future__ import annotations

import numpy as np

from modscope.engine import as_rows as engine_rows
from modscope.errors import ModscopeError
from modscope.stats.checks import require_finite

KINDS = ("cosine", "scaled", "centred", "euclidean", "dot")


def as_rows(H, what: str = "H") -> np.ndarray:
    """``H`` as a finite float64 matrix [n, d] (``modscope.engine.as_rows``, trailing axes flattened into d); a
    vector or an empty set is an error here, since a geometry needs at least one row of several features."""
    shape = np.shape(H)
    if len(shape) < 2 or shape[0] < 1:
        raise ModscopeError(f"{what} must have shape [n, d] with n >= 1, got {shape}; pass one row per sample")
    array = engine_rows(H).astype(np.float64, copy=False)
    require_finite(array, what)
    return array


def centre_rows(H: np.ndarray, centre: bool | np.ndarray) -> np.ndarray:
    """Subtract the mean of the set (``centre=True``), a given reference point ([d]) or the mean of a reference
    set ([m, d]); ``False`` leaves ``H`` unchanged. The zero point of an activation space is arbitrary (seed 003),
    so every geometric statistic here can be taken about another origin."""
    if centre is False or centre is None:
        return H
    if centre is True:
        return H - H.mean(axis=0, keepdims=True)
    reference = np.asarray(centre, dtype=np.float64)
    origin = reference.reshape(-1, H.shape[1]).mean(axis=0) if reference.ndim > 1 else reference
    if origin.shape != (H.shape[1],):
        raise ModscopeError(f"centre reference has {origin.shape[0]} features but H has {H.shape[1]}; "
                            "pass a [d] point or an [m, d] reference set from the same site")
    return H - origin


def unit_rows(H: np.ndarray) -> np.ndarray:
    """Rows divided by their Euclidean norm; all-zero rows stay zero (their cosine with anything is 0)."""
    norms = np.linalg.norm(H, axis=1, keepdims=True)
    return np.divide(H, norms, out=np.zeros_like(H), where=norms > 0)


def similarity(H, kind: str = "cosine", *, reference: np.ndarray | None = None) -> np.ndarray:
    """The [n, n] similarity matrix of the rows of ``H`` (float64).

    Kinds, for rows h_i:

    - ``cosine``: S_ij = <h_i, h_j> / (|h_i| |h_j|).
    - ``scaled``: the "scaled cosine similarity" of seed 001 (Frederik/MATS 2022, "Searching for modularity in
      large language models", comment thread): every vector is divided by the length of the *largest* vector in
      the set, so the largest has length 1 and relative lengths are preserved:
      S_ij = <h_i, h_j> / max_k |h_k|^2.
    - ``centred``: cosine after subtracting the mean of the set, or of ``reference`` ([d] point or [m, d] set):
      S_ij = <h_i - mu, h_j - mu> / (|h_i - mu| |h_j - mu|).
    - ``euclidean``: S_ij = -|h_i - h_j| (negated so that larger is more similar, like every other kind).
    - ``dot``: S_ij = <h_i, h_j> (units of activation squared).

    Args:
        H: [n, d] activations (trailing axes are flattened).
        kind: one of ``KINDS``.
        reference: origin for ``centred`` (default: the mean of ``H``).

    Returns:
        S: float64 [n, n], symmetric.
    """
    H = as_rows(H)
    if kind in ("cosine", "centred"):
        unit = unit_rows(H if kind == "cosine" else centre_rows(H, True if reference is None else reference))
        return unit @ unit.T
    if kind == "scaled":
        largest = float(np.max(np.einsum("ij,ij->i", H, H)))
        return H @ H.T / largest if largest > 0 else np.zeros((len(H), len(H)))
    if kind == "euclidean":
        squared = np.einsum("ij,ij->i", H, H)
        distance_sq = squared[:, None] + squared[None, :] - 2.0 * (H @ H.T)
        S = -np.sqrt(np.clip(distance_sq, 0.0, None))
        np.fill_diagonal(S, 0.0)
        return S
    if kind == "dot":
        return H @ H.T
    raise ModscopeError(f"unknown similarity kind '{kind}'; choose one of {', '.join(KINDS)}")


def dissimilarity(S: np.ndarray) -> np.ndarray:
    """Turn any similarity matrix of this module into a dissimilarity: D_ij = (S_ii + S_jj) / 2 - S_ij, clipped at 0.

    For a Gram matrix this is half the squared Euclidean distance; for cosine it is 1 - cos; for ``euclidean``
    (S_ii = 0) it is the distance itself.
    """
    S = np.asarray(S, dtype=np.float64)
    diag = np.diag(S)
    return np.clip((diag[:, None] + diag[None, :]) / 2.0 - S, 0.0, None)
