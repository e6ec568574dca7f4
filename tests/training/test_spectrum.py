"""Gradient-matrix spectrum: Gram route equals a dense SVD; thresholds count planted ranks."""

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.training.gram import center_gram
from modscope.training.spectrum import count_above, gradient_spectrum, parameter_directions
from modscope.training.store import GradientStore


def planted(steps=60, params=500, rank=7, noise=1e-4, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(10.0, 3.0, rank)
    return (rng.standard_normal((steps, rank)) * scales) @ rng.standard_normal((rank, params)) \
        + noise * rng.standard_normal((steps, params))


def two_block_store(matrix, path=None):
    store = GradientStore(["a", "b"], [(matrix.shape[1] // 2,), (matrix.shape[1] - matrix.shape[1] // 2,)],
                          path=path, chunk_steps=16)
    half = matrix.shape[1] // 2
    for start in range(0, len(matrix), 16):
        rows = matrix[start:start + 16]
        store.append({"a": rows[:, :half], "b": rows[:, half:]}, list(range(start, start + len(rows))),
                     [0.0] * len(rows), [0.1] * len(rows))
    return store


def test_gram_singular_values_equal_numpy_svd_to_1e8_relative():
    matrix = np.random.default_rng(1).standard_normal((40, 300))
    spec = gradient_spectrum(matrix, method="gram")
    expected = np.linalg.svd(matrix, compute_uv=False)
    assert np.allclose(spec.singular_values, expected, rtol=1e-8, atol=0)


def test_centred_spectrum_equals_svd_of_mean_subtracted_matrix():
    matrix = np.random.default_rng(2).standard_normal((30, 80)) + 5.0
    spec = gradient_spectrum(matrix, centre=True)
    expected = np.linalg.svd(matrix - matrix.mean(axis=0), compute_uv=False)
    assert np.allclose(spec.singular_values[:29], expected[:29], rtol=1e-8)
    assert spec.singular_values[29] < 1e-6 * spec.singular_values[0]


def test_old_center_keyword_still_centres_for_one_release():
    matrix = np.random.default_rng(2).standard_normal((30, 80)) + 5.0
    old = gradient_spectrum(matrix, center=True)
    assert np.array_equal(old.singular_values, gradient_spectrum(matrix, centre=True).singular_values)
    assert old.singular_values[0] < gradient_spectrum(matrix).singular_values[0] / 5  # the mean is gone


def test_planted_rank_plus_small_noise_gives_count_above_equal_rank():
    spec = gradient_spectrum(planted(rank=7))
    assert spec.counts == {0.05: 7, 0.10: 7, 0.15: 7}
    assert count_above(np.array([1.0, 0.2, 0.1, 0.05]), 0.1) == 2  # strictly greater


def test_streamed_blocks_and_zarr_store_give_the_same_gram_as_the_dense_matrix(tmp_path):
    matrix = planted(steps=48, params=300).astype(np.float32)
    dense = gradient_spectrum(matrix.astype(np.float64))
    ram = gradient_spectrum(two_block_store(matrix))
    zarr_store = GradientStore.open(two_block_store(matrix, tmp_path / "g").path)
    on_disk = gradient_spectrum(zarr_store, method="dask")
    for spec in (ram, on_disk):
        # float32 storage: equal to float32 round-off relative to the largest value
        assert np.allclose(spec.singular_values, dense.singular_values, rtol=1e-6,
                           atol=1e-8 * dense.singular_values[0])
    assert set(ram.per_param_counts) == {"a", "b"}


def test_randomized_method_recovers_the_top_values_of_a_low_rank_matrix():
    matrix = planted(steps=80, params=400, rank=10)
    exact = np.linalg.svd(matrix, compute_uv=False)
    approx = gradient_spectrum(matrix, method="randomized", rank=10, power_iters=3)
    assert np.allclose(approx.singular_values[:10], exact[:10], rtol=1e-6)
    centred = gradient_spectrum(matrix, method="randomized", rank=10, centre=True)
    assert np.allclose(centred.singular_values[:10],
                       np.linalg.svd(matrix - matrix.mean(0), compute_uv=False)[:10], rtol=1e-6)


def test_time_profiles_and_parameter_directions_rebuild_the_matrix():
    matrix = planted(steps=20, params=50, rank=20, noise=0.0)
    spec = gradient_spectrum(matrix)
    directions = parameter_directions(matrix, spec, 20)
    rebuilt = (spec.time_profiles.T * spec.singular_values[:20]) @ directions
    assert np.allclose(rebuilt, matrix, atol=1e-8)
    assert np.allclose(directions @ directions.T, np.eye(20), atol=1e-8)


def test_center_gram_matches_explicit_centring_with_weights():
    a = np.random.default_rng(3).standard_normal((10, 6))
    w = np.zeros(10)
    w[:4] = 0.25
    centred = a - w @ a
    assert np.allclose(center_gram(a @ a.T, w), centred @ centred.T)


def test_bad_inputs_raise_modscope_errors():
    with pytest.raises(ModscopeError):
        gradient_spectrum(np.zeros((1, 5)))
    with pytest.raises(ModscopeError):
        gradient_spectrum(np.ones((4, 5)), method="lanczos")
    with pytest.raises(ModscopeError):
        gradient_spectrum(np.ones((4, 5)), params=["nope"])


def test_compute_gram_on_dask_equals_numpy_per_parameter(tmp_path):
    from modscope.training.gram import compute_gram

    matrix = planted(steps=48, params=300).astype(np.float32)
    zarr_store = GradientStore.open(two_block_store(matrix, tmp_path / "g").path)
    local, dask = compute_gram(zarr_store), compute_gram(zarr_store, engine="dask")
    np.testing.assert_allclose(dask.gram, local.gram, rtol=1e-10, atol=0)
    assert set(dask.per_param) == set(local.per_param)
    for name, g in local.per_param.items():
        np.testing.assert_allclose(dask.per_param[name], g, rtol=1e-10, atol=1e-300)
    assert compute_gram(zarr_store, engine="dask", per_param=False).per_param == {}


def old_randomized_values(matrix, blocks, rank, power_iters, seed, oversample=10):
    """The range finder with each tensor's whole Gaussian test matrix drawn at once (the pre-striping code)."""
    rng = np.random.default_rng(seed)
    width = min(matrix.shape[0], rank + oversample)
    parts = np.split(matrix, np.cumsum(blocks)[:-1], axis=1)
    y = sum(p @ rng.standard_normal((p.shape[1], width)) for p in parts)
    q = np.linalg.qr(y)[0]
    for _ in range(power_iters):
        q = np.linalg.qr(sum(p @ (p.T @ q) for p in parts))[0]
    bbt = sum((q.T @ p) @ (q.T @ p).T for p in parts)
    return np.sqrt(np.clip(np.linalg.eigvalsh(bbt)[::-1], 0, None))[:rank]


@pytest.mark.parametrize("stripe", [7, 64, None])
def test_striped_test_matrix_gives_the_values_of_one_full_draw(stripe):
    from modscope.training.spectrum import randomized_spectrum

    # full-rank noise: the approximate values depend on every entry of the test matrix
    matrix = np.random.default_rng(5).standard_normal((40, 301)).astype(np.float32).astype(np.float64)
    store = two_block_store(matrix)
    got = randomized_spectrum(store, rank=5, power_iters=1, seed=3, stripe=stripe).singular_values
    expected = old_randomized_values(matrix, [150, 151], rank=5, power_iters=1, seed=3)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert not np.allclose(got, old_randomized_values(matrix, [150, 151], rank=5, power_iters=1, seed=4))
