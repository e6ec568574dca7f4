"""`modscope mi` / `modscope spectrum` on stores read them batch by batch and give the in-memory numbers."""

import numpy as np
import pytest
import zarr

from modscope.stats import gaussian_mi, mi_curve, spectrum
from modscope.stats.block_structure import blocks
from modscope.stats.covariance import DEFAULT_ROWS, prefix_covariances
from modscope.stats.model_mi import mi_of_stores
from modscope.stats.model_spectra import spectra_of_stores


class BatchOnly:
    """An on-disk-like array that records the largest read and cannot be converted whole by np.asarray."""

    def __init__(self, array):
        self._array, self.shape, self.dtype, self.largest = array, array.shape, array.dtype, 0

    def __getitem__(self, index):
        part = self._array[index]
        self.largest = max(self.largest, len(part))
        return part

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole array was loaded")


class FakeStore:
    def __init__(self, name, **arrays):
        self.arrays = {site: BatchOnly(a) for site, a in arrays.items()}
        self.model_info = {"name": name}
        self.n_rows = len(next(iter(arrays.values())))

    def __getitem__(self, site):
        return self.arrays[site]

    def __contains__(self, site):
        return site in self.arrays


def channel(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)) * np.arange(1, 6)
    Y = 0.4 * X[:, :3] + rng.standard_normal((n, 3))
    return X.astype(np.float32), Y.astype(np.float32)


def test_prefix_covariances_equal_the_covariance_of_each_subset():
    X, Y = channel(500)
    order = np.random.default_rng(1).permutation(500)
    joint = np.concatenate([X, Y], axis=1).astype(np.float64)
    for sizes, rows_order in (([10, 77, 500], order), ([9, 300], None)):
        accs = prefix_covariances([X, Y], sizes, order=rows_order, rows=64)
        for size, acc in zip(sizes, accs):
            picked = joint[rows_order[:size]] if rows_order is not None else joint[:size]
            assert acc.n == size
            np.testing.assert_allclose(acc.cov, np.cov(picked, rowvar=False), rtol=1e-12, atol=1e-12)


def test_mi_curve_points_are_the_mi_of_the_same_random_subsets_on_disk_or_in_memory(tmp_path):
    X, Y = channel(3000)
    on_disk = []
    for name, a in (("x", X), ("y", Y)):
        z = zarr.create_array(store=str(tmp_path / name), shape=a.shape, chunks=(256, a.shape[1]), dtype="float32")
        z[:] = a
        on_disk.append(z)
    in_memory, streamed = mi_curve(X, Y, seed=2), mi_curve(*on_disk, seed=2)
    order = np.random.default_rng(2).permutation(3000)
    for n, mi in zip(in_memory.n, in_memory.mi):
        assert mi == pytest.approx(gaussian_mi(X[order[:n]], Y[order[:n]]).mi, rel=1e-9)
    np.testing.assert_allclose(streamed.mi, in_memory.mi, rtol=1e-10)
    assert streamed.mi_inf == pytest.approx(in_memory.mi_inf, rel=1e-8)


def test_mi_of_stores_reads_batches_only_and_gives_the_in_memory_numbers():
    n = 20000  # more than two batches
    X, Y = channel(n, seed=3)
    model, twin = FakeStore("m", a=X), FakeStore("t", a=Y)
    result = mi_of_stores(model, twin, ["a"], curve_points=5, seed=4)
    assert model["a"].largest <= DEFAULT_ROWS and twin["a"].largest <= DEFAULT_ROWS
    assert result.results[0].mi == pytest.approx(gaussian_mi(X, Y).mi, rel=1e-10)
    expected = mi_curve(X, Y, points=5, seed=4)
    np.testing.assert_allclose(result.curves[0].mi, expected.mi, rtol=1e-10)
    np.testing.assert_array_equal(result.curves[0].n, expected.n)


def test_spectra_of_stores_equal_the_in_memory_spectrum_and_bound_the_shuffle_null():
    rng = np.random.default_rng(5)
    rows = (rng.standard_normal((20000, 6)) @ rng.standard_normal((6, 6)) * [1, 2, 3, 4, 5, 6]).astype(np.float32)
    store = FakeStore("m", a=rows)
    # enough rows allowed for the null: exactly the old in-memory computation
    full = spectra_of_stores(store, None, ["a"], block_sites=["a"], seed=1, shuffle_rows=20000)
    old = spectrum(rows, seed=1)
    np.testing.assert_allclose(full.trained[0].eigenvalues, old.eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(full.trained[0].shuffle_eigenvalues, old.shuffle_eigenvalues, rtol=1e-10)
    assert full.blocks[0].modularity == pytest.approx(blocks(np.cov(rows, rowvar=False), seed=1).modularity,
                                                      rel=1e-8)
    # a bounded null: at most 4000 rows held, the shuffled spectrum is still the column variances
    store = FakeStore("m", a=rows)
    bounded = spectra_of_stores(store, None, ["a"], seed=1, shuffle_rows=4000)
    assert store["a"].largest <= DEFAULT_ROWS
    np.testing.assert_allclose(bounded.trained[0].eigenvalues, old.eigenvalues, rtol=1e-10)
    variances = np.sort(rows.astype(np.float64).var(axis=0, ddof=1))[::-1]
    np.testing.assert_allclose(bounded.trained[0].shuffle_eigenvalues, variances, rtol=0.15)
    assert not np.allclose(bounded.trained[0].shuffle_eigenvalues, old.shuffle_eigenvalues, rtol=1e-6)
