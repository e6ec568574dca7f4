"""Covariance, Gaussian MI and spectra of Zarr stores on either engine, from ``modscope.stats``'s own kernel/merge."""

from __future__ import annotations

from typing import Any

from modscope.distributed.mapreduce import map_reduce
from modscope.errors import ModscopeError
from modscope.stats.covariance import Covariance, feature_dim, resolve
from modscope.stats.mi import MIResult, mi_from_covariance
from modscope.stats.spectra import SpectrumResult, spectrum


def merge_covariances(parts: list[Covariance]) -> Covariance:
    """Exact merge of partial accumulators (``Covariance.merge``, Chan et al. 1979); the inputs are not modified."""
    total = parts[0].copy()
    for part in parts[1:]:
        total.merge(part)
    return total


def covariance(*sources: Any, engine: str = "local", client: Any = None, scheduler: str | None = None,
               chunk: int | None = None) -> Covariance:
    """Mean and covariance of one source, or the joint covariance of several row-aligned sources, chunk by chunk.

    The per-chunk kernel is ``Covariance.from_batch`` (a float64 GEMM on the centred chunk) and the merge is
    ``Covariance.merge``; with ``engine="dask"`` each Zarr chunk is a task, so a worker needs about
    ``chunk x features x 12`` bytes (float32 read + float64 copy) plus ``features^2 x 8`` for its partial.

    Args:
        sources: numpy or Zarr arrays [n, ...], or ``(store, site)`` pairs of an ActivationStore.
        engine: ``local`` or ``dask``. client / scheduler: the Dask client or scheduler address.
        chunk: rows per task (default: the Zarr chunk, grown to ~32 MB).

    Returns:
        A ``Covariance`` accumulator (``.n``, ``.mean``, ``.cov``).
    """
    if not sources:
        raise ModscopeError("covariance() needs at least one array or (store, site) pair")
    arrays = [resolve(s) for s in sources]
    return map_reduce(arrays, Covariance.from_batch, merge_covariances, chunk=chunk, engine=engine, client=client,
                      scheduler=scheduler)


def gaussian_mi(X: Any, Y: Any, *, engine: str = "local", client: Any = None, scheduler: str | None = None,
                chunk: int | None = None, bias_correct: bool = True) -> MIResult:
    """Gaussian MI between row-aligned X and Y from their streamed joint covariance (see ``stats.gaussian_mi``).

    Only the accumulator leaves the workers, so the permutation null (which needs the rows) is not offered here;
    the exact Wilks null (``null_mean``, ``null_sd``) is.
    """
    xs, ys = resolve(X), resolve(Y)
    joint = covariance(xs, ys, engine=engine, client=client, scheduler=scheduler, chunk=chunk)
    return mi_from_covariance(joint, feature_dim(xs), bias_correct=bias_correct)


def covariance_spectrum(X: Any, *, engine: str = "local", client: Any = None, scheduler: str | None = None,
                        chunk: int | None = None, standardize: bool = False, top_k: int = 10) -> SpectrumResult:
    """Eigen-spectrum of the streamed covariance with its Marchenko–Pastur null (see ``stats.spectrum``)."""
    acc = covariance(X, engine=engine, client=client, scheduler=scheduler, chunk=chunk)
    return spectrum(acc, standardize=standardize, top_k=top_k)
