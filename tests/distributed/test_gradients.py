"""Gradient Gram and spectrum on Dask equal the local float64 Gram; svd_compressed lands within its error bounds."""

import numpy as np
import pytest

from modscope import ModscopeError
from modscope.training import GradientStore
from modscope.training.gram import compute_gram
from modscope.training.spectrum import gradient_spectrum, gradient_svd, spectrum_from_gram

WORKER_LIMIT = 4 << 20


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """96 steps of two parameter tensors whose gradients live near a 5-dim subspace; 3x a worker's limit."""
    rng = np.random.default_rng(0)
    steps, sizes = 96, (25_000, 8_000)
    basis = [rng.standard_normal((5, s)) for s in sizes]
    strength = np.array([10.0, 6.0, 4.0, 2.5, 1.5])
    path = tmp_path_factory.mktemp("grads") / "g"
    grads = GradientStore(["w", "b"], [(s,) for s in sizes], path=path, chunk_steps=8)
    for start in range(0, steps, 16):
        coef = rng.standard_normal((16, 5)) * strength
        blocks = {n: coef @ b + 0.3 * rng.standard_normal((16, b.shape[1])) for n, b in zip(grads.names, basis)}
        grads.append(blocks, list(range(start, start + 16)), [0.0] * 16, [0.1] * 16)
    return GradientStore.open(path)


def test_store_is_three_times_a_worker_limit(store, worker_limit):
    assert store.n_steps * store.n_params * 4 >= 3 * worker_limit


@pytest.fixture(scope="module")
def dask_gram(store, client):
    return compute_gram(store, engine="dask", client=client)


def test_dask_gram_equals_local_float64_gram(store, dask_gram, client):
    local, dask = compute_gram(store), dask_gram
    assert np.max(np.abs(dask.gram - local.gram)) / np.max(np.abs(local.gram)) < 1e-10
    for name in store.names:
        assert np.max(np.abs(dask.per_param[name] - local.per_param[name])) / np.max(local.per_param[name]) < 1e-10
    sub = dask.subset(np.arange(10, 50))
    np.testing.assert_allclose(sub.gram, compute_gram(store, steps=slice(10, 50)).gram, rtol=1e-10)


def test_dask_gradient_spectrum_equals_local(store, dask_gram):
    local = gradient_spectrum(store, method="gram")
    dask = spectrum_from_gram(dask_gram, method="dask")
    np.testing.assert_allclose(dask.singular_values, local.singular_values, rtol=1e-10, atol=1e-12)
    assert dask.counts == local.counts and local.counts[0.10] == 5


def test_svd_compressed_is_within_its_reported_error_bound(store, client):
    exact = gradient_svd(store, k=8, method="gram")
    approx = gradient_svd(store, k=8, method="svd_compressed", power_iters=2, engine="dask", client=client)
    assert exact.method == "gram" and np.all(exact.residuals == 0)
    # the 5 strong, well-separated values: each within its a-posteriori bound of the exact one
    error = np.abs(approx.singular_values[:5] - exact.singular_values[:5])
    assert np.all(error <= approx.residuals[:5] / np.sqrt(2) + 1e-9 * exact.singular_values[0])
    assert np.all(approx.relative_error_bound[:5] < 0.05) and np.all(approx.residuals > 0)
    assert abs(approx.frobenius_sq / exact.frobenius_sq - 1) < 1e-10
    with pytest.raises(ModscopeError, match="power_iters"):
        gradient_svd(store, k=4, method="svd_compressed", power_iters=1, engine="dask", client=client)


def test_training_api_dispatches_to_the_dask_engine(store, client):
    local = gradient_spectrum(store, method="gram")
    dask = gradient_spectrum(store, method="dask", client=client)
    np.testing.assert_allclose(dask.singular_values, local.singular_values, rtol=1e-10, atol=1e-12)
    assert dask.per_param_counts == local.per_param_counts
