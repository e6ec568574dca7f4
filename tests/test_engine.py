"""modscope.engine: the same kernel and merge give the same answer here and on Dask, chunk by chunk."""

import numpy as np
import pytest
import zarr

from modscope import ModscopeError
from modscope.engine import as_rows, check_engine, chunk_spans, iter_chunks, map_reduce


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture
def stored(tmp_path):
    """1050 rows [1050, 2, 3] in a Zarr array chunked by 100 rows; row i holds i in every entry."""
    data = np.repeat(np.arange(1050, dtype=np.float32), 6).reshape(1050, 2, 3)
    z = zarr.create_array(str(tmp_path / "z"), shape=data.shape, chunks=(100, 2, 3), dtype="float32")
    z[:] = data
    return data, z


def first_and_size(chunk):
    return [(float(chunk[0, 0]), chunk.shape[0], chunk.shape[1])]


def concat(parts):
    return sum(parts, [])


def test_local_and_dask_see_the_same_chunks_in_row_order(stored, client):
    data, z = stored
    local = map_reduce(first_and_size, z, concat, chunk_rows=128)
    dask = map_reduce(first_and_size, z, concat, chunk_rows=128, engine="dask", client=client)
    assert local == dask == [(float(s), min(128, 1050 - s), 6) for s in range(0, 1050, 128)]
    assert local[-1] == (1024.0, 26, 6)  # the short last chunk
    assert map_reduce(first_and_size, data, concat, chunk_rows=128) == local  # numpy source, same chunks


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 1050, 5000])
def test_every_row_is_seen_exactly_once_on_both_engines(stored, client, chunk_rows):
    data, z = stored
    total = float(data[:, 0, 0].astype(np.float64).sum())
    for engine in ("local", "dask"):
        got = map_reduce(lambda c: (c.shape[0], float(c[:, 0].astype(np.float64).sum())), z,
                         lambda parts: (sum(p[0] for p in parts), sum(p[1] for p in parts)),
                         chunk_rows=chunk_rows, engine=engine, client=client)
        assert got == (1050, total)


def test_dask_default_chunks_are_whole_zarr_chunks(stored):
    _, z = stored
    spans = chunk_spans([z], chunk_bytes=4 * 6 * 250)  # 250 rows' worth: grown to 2 Zarr chunks
    assert [s.start for s in spans] == list(range(0, 1050, 200)) and spans[-1].stop == 1050


def test_several_sources_are_read_side_by_side_and_must_share_rows(stored):
    data, z = stored
    y = np.arange(1050.0)
    chunks = list(iter_chunks([z, y], chunk_rows=500))
    assert [c.shape for c in chunks] == [(500, 7), (500, 7), (50, 7)]
    np.testing.assert_array_equal(np.concatenate(chunks)[:, -1], y)
    np.testing.assert_array_equal(np.concatenate(chunks)[:, 0], data[:, 0, 0])
    with pytest.raises(ModscopeError, match="different row counts"):
        map_reduce(first_and_size, [z, y[:10]], concat)


def test_an_empty_source_is_a_clear_error_on_both_engines(client):
    for engine in ("local", "dask"):
        with pytest.raises(ModscopeError, match="no rows"):
            map_reduce(first_and_size, np.zeros((0, 3)), concat, engine=engine, client=client)


def test_engine_names():
    assert check_engine("numpy") == "local" and check_engine("dask") == "dask"
    with pytest.raises(ModscopeError, match="unknown engine 'spark'"):
        check_engine("spark")


def test_as_rows_flattens_and_the_geometry_contract_calls_it():
    from modscope.geometry.similarity import as_rows as geometry_rows

    assert as_rows(np.arange(3)).shape == (3, 1) and as_rows(np.zeros((4, 2, 3), np.float32)).dtype == np.float32
    assert geometry_rows(np.zeros((4, 2, 3), np.float32)).shape == (4, 6)
    assert geometry_rows(np.zeros((4, 2), np.float32)).dtype == np.float64
    with pytest.raises(ModscopeError, match="numeric"):
        as_rows(np.array(["a", "b"]))
    with pytest.raises(ModscopeError, match=r"\[n, d\]"):
        geometry_rows(np.arange(3.0))
    with pytest.raises(ModscopeError, match="finite"):
        geometry_rows(np.array([[1.0, np.nan]]))


def test_gaussian_mi_takes_the_same_arguments_on_dask(client, tmp_path):
    from modscope.stats import gaussian_mi

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5))
    y = x[:, :3] @ rng.standard_normal((3, 4)) + rng.standard_normal((600, 4))
    zx = zarr.create_array(str(tmp_path / "x"), shape=x.shape, chunks=(64, 5), dtype="float64")
    zx[:] = x
    kwargs = {"permutations": 20, "seed": 3, "rank_tol": 1e-9, "groups": np.repeat(np.arange(60), 10)}
    local = gaussian_mi(zx, y, **kwargs)
    dask = gaussian_mi(zx, y, engine="dask", client=client, **kwargs)
    assert abs(dask.mi / local.mi - 1) < 1e-12 and local.mi > 0.5
    np.testing.assert_allclose(dask.perm_null, local.perm_null, rtol=1e-10)
    assert dask.p == local.p and dask.null == local.null == "permutation (documents)"


def test_randomized_svd_draws_the_same_test_matrix_on_dask(client, tmp_path):
    from modscope.training import GradientStore
    from modscope.training.spectrum import gradient_svd, randomized_spectrum

    rng = np.random.default_rng(1)
    grads = GradientStore(["w", "b"], [(300,), (77,)], path=tmp_path / "g", chunk_steps=8)
    grads.append({"w": rng.standard_normal((40, 300)), "b": rng.standard_normal((40, 77))}, list(range(40)),
                 [0.0] * 40, [0.1] * 40)
    store = GradientStore.open(tmp_path / "g")
    local = randomized_spectrum(store, rank=6, power_iters=1, seed=2, stripe=50)
    dask = randomized_spectrum(store, rank=6, power_iters=1, seed=2, stripe=50, engine="dask", client=client)
    np.testing.assert_allclose(dask.singular_values, local.singular_values, rtol=1e-12)
    exact = np.linalg.svd(store.matrix().astype(np.float64), compute_uv=False)
    svd = gradient_svd(store, k=6, method="randomized", power_iters=2, engine="dask", client=client)
    assert np.all(np.abs(svd.singular_values - exact[:6]) <= svd.residuals / np.sqrt(2) + 1e-9 * exact[0])
    assert abs(svd.frobenius_sq / np.sum(exact**2) - 1) < 1e-10
