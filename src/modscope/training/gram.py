"""The steps x steps Gram matrix of the gradient matrix, accumulated in float64 over parameter blocks.

For the gradient matrix ``A`` (steps x parameters, the column-concatenation of per-tensor blocks ``A_p``),
``G = A A^T = sum_p A_p A_p^T``. Its eigen-decomposition ``G = U diag(s^2) U^T`` gives the singular values
``s`` of ``A`` and its right-hand factor ``U`` in step space (the time profiles; the seed orients the
matrix parameters x steps, where these are the *right* singular vectors). Everything the sampling,
residual and replay analyses need is a function of ``G``, so one streaming pass over the gradients serves
them all (Halko et al. 2011, sec. 5.3, for the Gram route to the SVD).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modscope.engine import check_engine, dask_client, task_bytes
from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.training.store import GradientStore

MAX_CHUNK_ELEMENTS = 1 << 24  # float64 elements per column chunk (128 MB)


def gram_kernel(block: np.ndarray) -> np.ndarray:
    """``block @ block.T`` in float64 for one chunk ``[steps, columns]`` (the Dask engine maps this too)."""
    block = np.asarray(block, dtype=np.float64)
    return block @ block.T


def merge_grams(grams) -> np.ndarray:
    """Sum partial Grams (one per chunk or parameter); the merge step of the streaming reduction."""
    total = None
    for g in grams:
        total = np.array(g, dtype=np.float64) if total is None else total + g
    if total is None:
        raise ModscopeError("no gradient blocks to merge; record at least one parameter")
    return total


def block_gram(block: np.ndarray) -> np.ndarray:
    """Gram of one ``[steps, size]`` block, converted to float64 ``MAX_CHUNK_ELEMENTS`` at a time."""
    steps, size = block.shape
    cols = max(1, MAX_CHUNK_ELEMENTS // max(steps, 1))
    return merge_grams(gram_kernel(block[:, c:c + cols]) for c in range(0, max(size, 1), cols))


def center_gram(gram: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Gram of ``A - 1 w^T A`` (rows minus their ``w``-weighted mean; uniform ``w`` by default).

    ``(I - 1 w^T) G (I - w 1^T)``: centring commutes with the Gram, so it costs O(steps^2).
    """
    n = gram.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    gw = gram @ w
    return gram - gw[None, :] - gw[:, None] + float(w @ gw)


def accepts_center(func: Callable) -> Callable:
    """Let ``func`` take ``center=``, the old spelling of its ``centre=``, as a hidden alias for one release."""
    @functools.wraps(func)
    def wrapper(*args, center: bool | None = None, **kwargs):
        return func(*args, **kwargs) if center is None else func(*args, centre=center, **kwargs)
    return wrapper


@dataclass(frozen=True)
class GradGram(Result):
    """The float64 Gram of a gradient matrix and what it was built from.

    Attributes:
        gram: ``A A^T``, float64 [steps, steps] (squared gradient units).
        per_param: each tensor's own ``A_p A_p^T`` (same shape), or empty when not kept.
        names: parameter tensors included. steps: the training-step index of each row.
        n_params: number of scalar parameters (columns of ``A``).
    """

    gram: np.ndarray
    per_param: dict[str, np.ndarray]
    names: tuple[str, ...]
    steps: np.ndarray
    n_params: int

    _json_exclude = ("gram", "per_param")  # [steps, steps] each: kept for the spectrum, not for the JSON

    def plot(self, ax=None):
        """The Gram as an image: bright off-diagonal bands are steps whose gradients point the same way."""
        from modscope.figures import axes

        ax = axes(ax)
        ax.imshow(self.gram, cmap="viridis", interpolation="nearest")
        ax.set(xlabel="step", ylabel="step", title=f"gradient Gram ({self.n_params:,} parameters)")
        return ax

    def subset(self, rows: np.ndarray) -> GradGram:
        """The Gram of a subset of rows (steps): ``G[rows][:, rows]``, no second pass over the data."""
        rows = np.asarray(rows)
        return GradGram(self.gram[np.ix_(rows, rows)], {n: g[np.ix_(rows, rows)] for n, g in
                        self.per_param.items()}, self.names, self.steps[rows], self.n_params)


def resolve_params(store: GradientStore, params) -> list[str]:
    if params is None or params == "all":
        return list(store.names)
    if params == "matrices":
        names = [n for n in store.names if len(store.shapes[n]) >= 2]
    else:
        names = [params] if isinstance(params, str) else list(params)
    missing = [n for n in names if n not in store.shapes]
    if missing or not names:
        raise ModscopeError(f"unknown or no parameters {missing or params}; recorded: {', '.join(store.names)}")
    return names


def resolve_rows(store: GradientStore, steps) -> np.ndarray:
    n = store.n_steps
    if n < 2:
        raise ModscopeError(f"only {n} recorded step(s); a spectrum needs at least 2")
    rows = np.arange(n) if steps is None else np.arange(n)[steps] if isinstance(steps, slice) else \
        np.asarray(steps, dtype=np.int64)
    if rows.size < 2 or rows.min() < 0 or rows.max() >= n:
        raise ModscopeError(f"steps must select >= 2 rows in 0..{n - 1}, got {rows.size} rows")
    return rows


def compute_gram(store: GradientStore, *, params=None, steps=None, per_param: bool = True, engine: str = "local",
                 client=None, scheduler: str | None = None) -> GradGram:
    """One streaming pass over the parameter blocks: ``G = sum_p A_p A_p^T`` in float64.

    Args:
        store: the recorded gradients. params: names (default all recorded). steps: row indices/slice.
        per_param: also keep each tensor's Gram (for the per-matrix count table).
        engine: ``local`` (block by block in this process; ``numpy`` is the old spelling) or ``dask``: each
            tensor's Zarr row chunks are read once and split into ``[steps, columns]`` stripes
            (``rechunk(method="tasks")``), and ``x @ x.T`` is Dask's tree reduction of the stripe products; a
            task holds one stripe (<= 128 MB float64, less when a worker's memory is smaller). The full Gram is
            reduced and then cut to ``steps`` (``GradGram.subset``, exact). client, scheduler: the Dask cluster.
    """
    names = resolve_params(store, params)
    rows = resolve_rows(store, steps)
    contiguous = rows.size == store.n_steps and np.array_equal(rows, np.arange(store.n_steps))
    if check_engine(engine) == "dask":
        grams = _dask_grams(store, names, client, scheduler)
        grams = grams if contiguous else {n: g[np.ix_(rows, rows)] for n, g in grams.items()}
    else:
        grams = {n: block_gram(store.block(n, slice(None) if contiguous else rows)) for n in names}
    return GradGram(merge_grams(grams.values()), grams if per_param else {}, tuple(names),
                    np.asarray(store.steps)[rows], sum(store.size(n) for n in names))


def lazy_block(store: GradientStore, name: str):
    """One tensor's gradients as a float32 dask array [steps, size]: its Zarr chunks, or the block in RAM."""
    import dask.array as da

    if store.path is not None:
        return da.from_zarr(store.zarr_array(name))[: store.n_steps]
    return da.from_array(store.block(name), chunks=(store.n_steps, -1))


def _dask_grams(store: GradientStore, names: list[str], client, scheduler: str | None) -> dict[str, np.ndarray]:
    n = store.n_steps
    with dask_client(client, scheduler) as cluster:
        stripe = max(1, min(MAX_CHUNK_ELEMENTS * 8, task_bytes(cluster)) // (8 * n))
        blocks = [lazy_block(store, name).rechunk((n, stripe), method="tasks").astype(np.float64) for name in names]
        return dict(zip(names, cluster.gather(cluster.compute([x @ x.T for x in blocks]))))
