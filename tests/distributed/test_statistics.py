"""Dask engine = local engine: covariance, MI, spectra and the cosine histogram over stores 3x a worker's memory."""

import numpy as np
import pytest
import zarr

from modscope import ModscopeError
from modscope.engine import chunk_spans, map_reduce, task_bytes
from modscope.geometry import cosine_histogram
from modscope.stats import covariance, gaussian_mi, spectrum

WORKER_LIMIT = 4 << 20  # = conftest.WORKER_LIMIT, checked by the worker_limit fixture

RTOL = 1e-10


def zarr_of(path, array, chunk_rows):
    z = zarr.create_array(str(path), shape=array.shape, chunks=(chunk_rows, *array.shape[1:]), dtype=array.dtype)
    z[:] = array
    return z


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Correlated X [n, 48] and Y [n, 16] with X + Y three times one worker's memory limit."""
    rng = np.random.default_rng(0)
    n = 3 * WORKER_LIMIT // (4 * 64) + 1000
    latent = rng.standard_normal((n, 8))
    x = (latent @ rng.standard_normal((8, 48)) + rng.standard_normal((n, 48)) + 3.0).astype(np.float32)
    y = (latent @ rng.standard_normal((8, 16)) + 2 * rng.standard_normal((n, 16))).astype(np.float32)
    root = tmp_path_factory.mktemp("big")
    return zarr_of(root / "x", x, 2048), zarr_of(root / "y", y, 2048)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def test_store_is_three_times_a_worker_limit_and_tasks_fit(big, client, worker_limit):
    x, y = big
    assert x.nbytes + y.nbytes >= 3 * WORKER_LIMIT
    spans = chunk_spans([x, y], chunk_bytes=task_bytes(client))
    assert len(spans) > 3 * 8 and all(s.start % 2048 == 0 for s in spans)  # aligned to the Zarr chunks
    assert max((s.stop - s.start) * 64 * 4 for s in spans) * 8 <= WORKER_LIMIT


def test_dask_covariance_equals_local_engine(big, client):
    x, _ = big
    local = covariance(x)
    dask = covariance(x, engine="dask", client=client)
    assert dask.n == local.n == x.shape[0]
    assert rel(dask.mean, local.mean) < RTOL and rel(dask.cov, local.cov) < RTOL
    assert rel(covariance(x, engine="local").cov, local.cov) < RTOL


def test_dask_mi_equals_local_engine(big, client):
    x, y = big
    local = gaussian_mi(x, y)
    dask = gaussian_mi(x, y, engine="dask", client=client)
    assert local.mi > 10 * local.null_mean  # a real dependence, not noise
    assert abs(dask.mi / local.mi - 1) < RTOL and abs(dask.mi_corrected / local.mi_corrected - 1) < RTOL
    assert (dask.null_mean, dask.null_sd, dask.rank_x, dask.rank_y) == (local.null_mean, local.null_sd, 48, 16)


def test_dask_spectrum_equals_local_engine(big, client):
    x, _ = big
    local = spectrum(x)
    dask = spectrum(x, engine="dask", client=client)
    assert rel(dask.eigenvalues, local.eigenvalues) < RTOL
    assert abs(dask.participation_ratio / local.participation_ratio - 1) < RTOL
    assert dask.n_above_mp == local.n_above_mp >= 8


def test_dask_histogram_equals_local_counts_exactly(tmp_path, client):
    rng = np.random.default_rng(1)
    rows = 3 * WORKER_LIMIT // (4 * 1024) + 100
    emb = (rng.standard_normal((rows, 1024)) + 0.3).astype(np.float32)
    emb[7] = 0.0  # a zero row is left out by both engines
    z = zarr_of(tmp_path / "e", emb, 1000)
    assert z.nbytes >= 3 * WORKER_LIMIT
    local = cosine_histogram(emb, block=1200, bins=100)
    dask = cosine_histogram(z, block=1200, bins=100, engine="dask", client=client)
    np.testing.assert_array_equal(dask.counts, local.counts)
    assert (dask.n_pairs, dask.n_zero_rows, dask.min, dask.max) == (local.n_pairs, 1, local.min, local.max)
    assert abs(dask.mean / local.mean - 1) < RTOL and abs(dask.sd / local.sd - 1) < RTOL
    centred_local = cosine_histogram(emb, block=1200, bins=100, centre=True)
    centred = cosine_histogram(z, block=1200, bins=100, centre=True, engine="dask", client=client)
    assert abs(centred.mean / centred_local.mean - 1) < RTOL and abs(centred.sd / centred_local.sd - 1) < RTOL
    assert centred.counts.sum() == centred_local.counts.sum() and abs(centred.mean) < abs(local.mean) / 10


def test_map_reduce_runs_any_kernel_in_chunk_order(client):
    data = np.arange(1000, dtype=np.float64)[:, None]
    first_rows = map_reduce(lambda c: [float(c[0, 0])], data, lambda parts: sum(parts, []), chunk_rows=128,
                            engine="dask", client=client)
    assert first_rows == [float(s) for s in range(0, 1000, 128)]


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(ModscopeError, match="unknown engine"):
        covariance(np.ones((4, 2)), engine="spark")


def test_stats_api_dispatches_to_the_dask_engine(big, client):
    from modscope.stats import covariance as stats_covariance

    x, y = big
    assert rel(stats_covariance(x, engine="dask", client=client).cov, covariance(x).cov) < RTOL
    assert abs(gaussian_mi(x, y, engine="dask", client=client).mi / gaussian_mi(x, y).mi - 1) < RTOL
    assert rel(spectrum(x, engine="dask", client=client).eigenvalues, spectrum(x).eigenvalues) < RTOL


def test_geometry_api_dispatches_to_the_dask_engine(tmp_path, client):
    emb = np.random.default_rng(2).standard_normal((900, 32)).astype(np.float32)
    z = zarr_of(tmp_path / "small", emb, 128)
    dask = cosine_histogram(z, block=300, engine="dask", client=client)
    local = cosine_histogram(emb, block=300)
    np.testing.assert_array_equal(dask.counts, local.counts)
    assert np.isnan(cosine_histogram(z, block=300, extremes=False, engine="dask", client=client).min)
