"""PCA, the low-rank split of a similarity matrix, and stream-dimension ranking."""

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.geometry import low_rank_split, pca, rank_stream_dimensions, similarity


def test_pca_recovers_a_planted_direction_and_its_variance():
    rng = np.random.default_rng(0)
    direction = np.zeros(10)
    direction[3] = 1.0
    H = rng.normal(size=(2000, 1)) * 5.0 * direction + 0.1 * rng.normal(size=(2000, 10))
    result = pca(H, k=2)
    assert abs(result.components[0] @ direction) == pytest.approx(1.0, abs=1e-3)
    assert result.explained_variance[0] == pytest.approx(25.0, rel=0.1)
    assert result.explained_ratio[0] > 0.99
    np.testing.assert_allclose(result.scores @ result.components, (H - H.mean(0)) @ result.components.T
                               @ result.components, atol=1e-9)


def test_pca_variances_sum_to_total_variance_when_all_components_kept():
    H = np.random.default_rng(1).normal(size=(30, 5))
    result = pca(H, k=5)
    assert result.explained_variance.sum() == pytest.approx(H.var(axis=0, ddof=1).sum())
    assert result.explained_ratio.sum() == pytest.approx(1.0)
    with pytest.raises(ModscopeError, match="k must be"):
        pca(H, k=6)


def test_low_rank_split_sees_a_common_offset_that_centring_removes():
    rng = np.random.default_rng(2)
    H = rng.normal(size=(40, 64)) + 6.0 * rng.normal(size=64)
    split = low_rank_split(similarity(H, "dot"))
    assert split.top_fraction > 0.95
    assert split.top_fraction_centred < 0.2
    assert split.common_share > 0.95
    assert split.offdiag_mean_centred == pytest.approx(-split.eigenvalues_centred.sum() / (40 * 39), rel=1e-6)


def test_low_rank_split_of_a_rank_one_matrix_is_one():
    v = np.arange(1.0, 6.0)
    split = low_rank_split(np.outer(v, v))
    assert split.top_fraction == pytest.approx(1.0)
    assert split.effective_rank == pytest.approx(1.0)


def test_anova_f_equals_scipy_and_planted_stream_ranks_first():
    from scipy.stats import f_oneway

    rng = np.random.default_rng(3)
    labels = np.repeat(["news", "code", "legal"], 8)
    values = rng.normal(size=(24, 4, 20))
    shift = {"news": -2.0, "code": 0.0, "legal": 2.0}
    values[:, :, 13] += np.array([shift[label] for label in labels])[:, None]
    result = rank_stream_dimensions(values, labels, n_permutations=200)
    for layer in range(4):
        expected = f_oneway(*[values[labels == c, layer, 7] for c in ["news", "code", "legal"]]).statistic
        assert result.F[layer, 7] == pytest.approx(expected)
    assert result.top[0] == 13 and result.shown[0] == 13
    assert result.p_fwer[13] == pytest.approx(1 / 201)
    assert np.median(result.p_fwer) > 0.5
    assert result.streams.shape == (24, 4, 6)


def test_stream_ranking_draws_requested_dims_and_rejects_bad_ones():
    values = np.random.default_rng(4).normal(size=(12, 3, 5))
    labels = ["a", "b"] * 6
    result = rank_stream_dimensions(values, labels, dims=[4, 1], n_permutations=20)
    assert result.shown == [4, 1]
    np.testing.assert_array_equal(result.streams[:, :, 0], values[:, :, 4])
    with pytest.raises(ModscopeError, match="dims"):
        rank_stream_dimensions(values, labels, dims=[5], n_permutations=20)
