"""The gradient Gram and SVD of a recorded gradient store, out of core: column stripes of the Zarr blocks.

``G = A A^T = sum_stripes A_s A_s^T`` with ``training.gram``'s own kernel (``gram_kernel``) and merge
(``merge_grams``); each task holds one stripe ``[steps, columns]``. When there are too many steps for a
``steps x steps`` Gram, ``svd_compressed`` gives the top singular values (Halko, Martinsson & Tropp 2011) and each
comes with an a-posteriori error bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modscope.distributed.engine import check_engine, dask_client
from modscope.distributed.mapreduce import SPLIT_EVERY, task_bytes
from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.training.gram import MAX_CHUNK_ELEMENTS, GradGram, compute_gram, gram_kernel, merge_grams, resolve_params
from modscope.training.spectrum import GRAM_MAX_STEPS, spectrum_of_gram
from modscope.training.store import GradientStore, as_store

MIN_POWER_ITERS = 2


def _merge(parts: list[np.ndarray]) -> np.ndarray:
    return merge_grams(parts)


def gradient_gram(store_or_matrix: Any, *, params=None, steps=None, engine: str = "local", client: Any = None,
                  scheduler: str | None = None, columns: int | None = None) -> GradGram:
    """``G = sum_p sum_stripes A_ps A_ps^T`` in float64, each parameter block reduced over column stripes.

    The recorder chunks its Zarr arrays by steps (full rows), so on Dask each row chunk is read once and split
    into column stripes by ``dask.array.rechunk``; one ``gram_kernel`` task per stripe ``[steps, columns]``, and
    the partial Grams are summed by ``merge_grams`` in a tree. A worker holds one row chunk while splitting and
    one stripe (``steps x columns x 12`` bytes) while multiplying. ``local`` is ``training.compute_gram``.

    Args:
        store_or_matrix: a GradientStore (Zarr-backed for out-of-core work), a store directory, or a matrix.
        params: tensor names (default all). steps: row indices/slice; the full Gram is reduced and then cut
            (``GradGram.subset``), which is exact.
        engine, client, scheduler: where the stripes run. columns: columns per stripe (default: as many as fit
            ``MAX_CHUNK_ELEMENTS`` float64, or an eighth of a worker's memory limit).

    Returns:
        GradGram with the per-parameter Grams.
    """
    store = as_store(store_or_matrix)
    names = resolve_params(store, params)
    if check_engine(engine) == "local":
        return compute_gram(store, params=names, steps=steps)
    n = store.n_steps
    if n < 2:
        raise ModscopeError(f"only {n} recorded step(s); a spectrum needs at least 2")
    from dask import delayed

    with dask_client(client, scheduler) as cluster:
        stripe = columns or max(1, min(MAX_CHUNK_ELEMENTS * 8, task_bytes(cluster)) // (8 * n))
        lazy = {}
        for name in names:
            stripes = _lazy_block(store, name).rechunk((n, stripe), method="tasks").to_delayed().ravel()
            parts = [delayed(gram_kernel)(s) for s in stripes]
            while len(parts) > 1:
                parts = [delayed(_merge)(parts[i:i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
            lazy[name] = parts[0]
        grams = dict(zip(lazy, cluster.gather(cluster.compute(list(lazy.values())))))
    full = GradGram(merge_grams(grams.values()), grams, tuple(names), np.asarray(store.steps),
                    sum(store.size(nm) for nm in names))
    if steps is None:
        return full
    rows = np.arange(n)[steps] if isinstance(steps, slice) else np.asarray(steps, dtype=np.int64)
    return full.subset(rows)


def _lazy_block(store: GradientStore, name: str):
    import dask.array as da

    if store.path is not None:
        return da.from_zarr(store.zarr_array(name))[: store.n_steps]
    return da.from_array(store.block(name), chunks=(store.n_steps, -1))


@dataclass(frozen=True)
class OutOfCoreSVD(Result):
    """Top singular values of the gradient matrix ``A`` [steps, parameters] and how accurate they are.

    Attributes:
        singular_values: descending, float64 [k] (gradient units).
        time_profiles: float64 [k, steps], row i = unit step-space singular vector u_i. Not in JSON.
        residuals: ``||A v_i - s_i u_i||`` per value (gradient units). For the symmetric ``[[0, A], [A^T, 0]]``
            the pair (s_i, [u_i; v_i]/sqrt 2) has residual ``r_i / sqrt 2`` (``A^T u_i = s_i v_i`` holds by
            construction), so some true singular value lies within ``residuals[i] / sqrt 2`` of ``s_i``
            (Parlett 1998, Thm 4.5.1). 0 for the exact Gram route.
        relative_error_bound: ``residuals / (sqrt 2 * s_i)``.
        frobenius_sq: ``||A||_F^2`` (exact). captured: ``sum s_i^2 / ||A||_F^2``, the share of the energy in the
            k values (1 for the full Gram route).
        method: ``gram`` (exact, streamed Gram) or ``svd_compressed`` (randomized, ``power_iters`` iterations).
        n_steps, n_params: shape of ``A``.
    """

    singular_values: np.ndarray
    time_profiles: np.ndarray
    residuals: np.ndarray
    relative_error_bound: np.ndarray
    frobenius_sq: float
    captured: float
    method: str
    power_iters: int
    n_steps: int
    n_params: int

    _json_exclude = ("time_profiles",)

    def plot(self, ax=None):
        from modscope.report import style

        ax = style.axes(ax)
        idx = np.arange(1, self.singular_values.size + 1)
        ax.errorbar(idx, self.singular_values, yerr=self.residuals / np.sqrt(2), color=style.TRAINED, lw=1.2,
                    label=f"{self.method} ({self.captured:.1%} of ||A||²)")
        ax.set(xlabel="index", ylabel="singular value", yscale="log", title="gradient matrix, out of core")
        ax.legend()
        return ax


def _lazy_matrix(store: GradientStore, names: list[str]):
    import dask.array as da

    return da.concatenate([_lazy_block(store, n) for n in names], axis=1).astype(np.float64)


def gradient_svd(store_or_matrix: Any, *, k: int = 50, params=None, method: str = "auto", power_iters: int = 2,
                 engine: str = "dask", client: Any = None, scheduler: str | None = None,
                 seed: int = 0) -> OutOfCoreSVD:
    """Top-``k`` singular values of a gradient store that may not fit in memory.

    Args:
        store_or_matrix: a GradientStore (Zarr-backed), a store directory, or a matrix.
        k: values wanted. params: tensor names (default all).
        method: ``gram`` (streamed float64 Gram, exact, for up to ~2e4 steps), ``svd_compressed``
            (``dask.array.linalg.svd_compressed``, randomized with ``power_iters`` >= 2 power iterations), or
            ``auto`` (``gram`` up to 20000 steps).
        engine, client, scheduler: where the work runs (``svd_compressed`` always runs on Dask).
        seed: seed of the random test matrix.

    Returns:
        OutOfCoreSVD with per-value error bounds.
    """
    store = as_store(store_or_matrix)
    names = resolve_params(store, params)
    if method == "auto":
        method = "gram" if store.n_steps <= GRAM_MAX_STEPS else "svd_compressed"
    if method == "gram":
        gg = gradient_gram(store, params=names, engine=engine, client=client, scheduler=scheduler)
        values, vecs = spectrum_of_gram(gg.gram)
        k = min(k, store.n_steps, gg.n_params)
        zeros = np.zeros(k)
        return OutOfCoreSVD(values[:k], vecs[:, :k].T, zeros, zeros, float(np.trace(gg.gram)),
                            float(np.sum(values[:k] ** 2) / max(np.trace(gg.gram), 1e-300)), "gram", 0,
                            store.n_steps, gg.n_params)
    if method != "svd_compressed":
        raise ModscopeError(f"unknown method '{method}'; use auto, gram or svd_compressed")
    if power_iters < MIN_POWER_ITERS:
        raise ModscopeError(f"power_iters={power_iters} is too few for a reliable spectrum; use >= {MIN_POWER_ITERS}")
    import dask.array as da

    matrix = _lazy_matrix(store, names)
    k = min(k, *matrix.shape)
    with dask_client(client, scheduler) as dask:
        u, s, v = da.linalg.svd_compressed(matrix, k, n_power_iter=power_iters, seed=seed)
        u, s, v = dask.gather(dask.compute([u, s, v]))
        # A^T u_i = s_i v_i holds exactly for a Rayleigh–Ritz triplet from the range Q; A v_i - s_i u_i is the error
        residual = da.linalg.norm(matrix @ v.T - u * s, axis=0)
        frobenius_sq = (matrix**2).sum()
        residual, frobenius_sq = dask.gather(dask.compute([residual, frobenius_sq]))
    signs = np.where(u.sum(axis=0) < 0, -1.0, 1.0)
    bound = np.asarray(residual) / (np.sqrt(2) * np.where(s > 0, s, 1.0))
    return OutOfCoreSVD(np.asarray(s), (u * signs).T, np.asarray(residual), bound, float(frobenius_sq),
                        float(np.sum(s**2) / max(float(frobenius_sq), 1e-300)), "svd_compressed", power_iters,
                        store.n_steps, int(matrix.shape[1]))
