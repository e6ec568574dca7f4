"""Streaming covariance: equal to np.cov, exact merges, joint covariance of two sources without stacking."""

import numpy as np
import pytest
import zarr

from modscope.errors import ModscopeError
from modscope.stats import Covariance, covariance


def data(n=3000, d=7, seed=0, offset=1e3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + offset


def test_streaming_covariance_equals_np_cov_to_1e12():
    X = data()
    acc = Covariance(X.shape[1])
    for start in range(0, len(X), 257):
        acc.update(X[start:start + 257])
    assert acc.n == len(X)
    np.testing.assert_allclose(acc.mean, X.mean(0), rtol=0, atol=1e-12 * np.abs(X).max())
    np.testing.assert_allclose(acc.cov, np.cov(X, rowvar=False), rtol=1e-12, atol=1e-12)


def test_merge_of_partial_accumulators_is_exact_in_any_order():
    X = data(seed=1)
    parts = [Covariance.from_batch(X[i:i + 500]) for i in range(0, len(X), 500)]
    forward, backward = Covariance(X.shape[1]), Covariance(X.shape[1])
    for p in parts:
        forward.merge(p)
    for p in reversed(parts):
        backward.merge(p)
    np.testing.assert_allclose(forward.cov, np.cov(X, rowvar=False), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backward.cov, forward.cov, rtol=1e-12, atol=1e-12)


def test_joint_covariance_of_zarr_and_numpy_equals_cov_of_stacked_columns():
    X, Y = data(d=5, seed=2), data(d=3, seed=3)
    zx = zarr.create_array(store=zarr.storage.MemoryStore(), shape=X.shape, chunks=(400, 5), dtype="f8")
    zx[:] = X
    joint = covariance(zx, Y, rows=333)
    np.testing.assert_allclose(joint.cov, np.cov(np.hstack([X, Y]), rowvar=False), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(joint.marginal(slice(5, 8)).cov, np.cov(Y, rowvar=False), rtol=1e-12)


def test_float32_batches_accumulate_in_float64():
    X = data(n=2000, d=4, seed=4).astype(np.float32)
    np.testing.assert_allclose(covariance(X).cov, np.cov(X.astype(np.float64), rowvar=False), rtol=1e-12)


def test_per_token_shapes_are_flattened_and_row_mismatch_is_an_error():
    rng = np.random.default_rng(5)
    heads = rng.standard_normal((100, 2, 3))
    assert covariance(heads).dim == 6
    with pytest.raises(ModscopeError, match="row counts"):
        covariance(heads, rng.standard_normal((99, 2)))
