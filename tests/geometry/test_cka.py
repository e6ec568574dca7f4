"""Linear CKA and CKA maps."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from modscope.errors import ModscopeError
from modscope.geometry import cka, cka_map


def unbiased_hsic(K, L):
    """Song et al. 2012, eq. 5, written out term by term on raw Grams with zeroed diagonals."""
    n = len(K)
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    return (np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ K @ L @ one) / (n * (n - 3))


@pytest.mark.parametrize("debiased", [True, False])
def test_cka_of_a_matrix_with_itself_is_one(debiased):
    X = np.random.default_rng(0).normal(size=(30, 10))
    assert cka(X, X, debiased=debiased) == pytest.approx(1.0)


@pytest.mark.parametrize("debiased", [True, False])
def test_cka_is_invariant_to_rotation_isotropic_scaling_and_offset(debiased):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(40, 8)), rng.normal(size=(40, 6))
    Y = Y + X[:, :6]
    Q = ortho_group.rvs(8, random_state=2)
    base = cka(X, Y, debiased=debiased)
    assert cka(3.7 * X @ Q + 5.0, Y, debiased=debiased) == pytest.approx(base, abs=1e-10)


def test_biased_cka_equals_the_feature_space_formula():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(25, 7)), rng.normal(size=(25, 4))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert cka(X, Y, debiased=False) == pytest.approx(expected)


def test_debiased_cka_equals_ratio_of_unbiased_hsic():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(15, 5)), rng.normal(size=(15, 9))
    K, L = X @ X.T, Y @ Y.T
    expected = unbiased_hsic(K, L) / np.sqrt(unbiased_hsic(K, K) * unbiased_hsic(L, L))
    assert cka(X, Y, debiased=True) == pytest.approx(expected)


def test_debiased_cka_of_independent_wide_representations_is_near_zero():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(50, 200)), rng.normal(size=(50, 200))
    assert abs(cka(X, Y, debiased=True)) < 0.05
    assert cka(X, Y, debiased=False) > 0.5  # the bias the debiased estimator removes


def test_cka_map_is_symmetric_with_unit_diagonal_and_matches_pairwise_cka():
    rng = np.random.default_rng(5)
    layers = [rng.normal(size=(20, 6))]
    for _ in range(3):
        layers.append(layers[-1] + 0.5 * rng.normal(size=(20, 6)))
    result = cka_map(layers, row_names=["a", "b", "c", "d"])
    np.testing.assert_allclose(result.matrix, result.matrix.T)
    np.testing.assert_allclose(np.diag(result.matrix), 1.0)
    assert result.matrix[0, 3] == pytest.approx(cka(layers[0], layers[3]))
    other = cka_map(layers[:2], layers[1:], debiased=False)
    assert other.matrix.shape == (2, 3)
    assert other.matrix[1, 0] == pytest.approx(1.0)


def test_cka_rejects_misaligned_samples():
    with pytest.raises(ModscopeError, match="same samples"):
        cka(np.ones((5, 2)), np.ones((6, 2)))


def gram_map(arrays_r, arrays_c, debiased):
    """The reference: CKA of every pair from n x n centred Grams."""
    from modscope.geometry.cka import centred_gram, cka_from_grams

    return np.array([[cka_from_grams(centred_gram(X), centred_gram(Y), debiased=debiased) for Y in arrays_c]
                     for X in arrays_r])


@pytest.mark.parametrize("debiased", [True, False])
def test_feature_space_cka_map_equals_the_gram_implementation(debiased, tmp_path):
    import zarr

    rng = np.random.default_rng(7)
    base = rng.normal(size=(120, 5))
    layers = [base @ rng.normal(size=(5, d)) + 0.5 * rng.normal(size=(120, d)) + 40.0 for d in (6, 9, 4)]
    on_disk = zarr.create_array(store=str(tmp_path / "z"), shape=layers[1].shape, chunks=(32, 9), dtype="float64")
    on_disk[:] = layers[1]
    expected = gram_map(layers, layers, debiased)
    for budget in (10**9, 1):  # everything in one pass; one pair per pass
        got = cka_map([layers[0], on_disk, layers[2]], debiased=debiased, budget_bytes=budget).matrix
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    others = [rng.normal(size=(120, 3)), layers[0][:, ::-1] * 2.0]
    np.testing.assert_allclose(cka_map(layers, others, debiased=debiased).matrix,
                               gram_map(layers, others, debiased), rtol=0, atol=1e-10)


def test_feature_space_cka_is_exact_at_small_n_and_wide_layers():
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(6, 50)), rng.normal(size=(6, 30))
    np.testing.assert_allclose(cka_map([X], [Y]).matrix, gram_map([X], [Y], True), rtol=0, atol=1e-10)
    with pytest.raises(ModscopeError, match="NaN"):
        cka_map([X, np.full_like(X, np.nan)])
