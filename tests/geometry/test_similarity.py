"""Similarity kinds: the seed's scaled cosine, centring, and the dissimilarity they imply."""

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.geometry import similarity
from modscope.geometry.similarity import dissimilarity


def test_scaled_cosine_divides_every_vector_by_the_largest_length():
    # seed 001: "I rescaled each vector by the length of the largest vector ... then took the dot product"
    H = np.array([[3.0, 4.0], [0.0, 1.0], [1.0, 0.0]])  # lengths 5, 1, 1
    S = similarity(H, "scaled")
    rescaled = H / 5.0
    np.testing.assert_allclose(S, rescaled @ rescaled.T)
    assert S[0, 0] == pytest.approx(1.0)
    assert S[1, 1] == pytest.approx(1 / 25)
    assert S[1, 2] == pytest.approx(0.0)
    assert S[0, 1] == pytest.approx(4 / 25)


def test_cosine_ignores_length_and_scaled_keeps_it():
    H = np.array([[1.0, 1.0], [10.0, 10.0]])
    np.testing.assert_allclose(similarity(H, "cosine"), np.ones((2, 2)))
    np.testing.assert_allclose(similarity(H, "scaled"), [[0.01, 0.1], [0.1, 1.0]])


def test_centred_cosine_of_a_shared_offset_is_the_cosine_of_the_deviations():
    rng = np.random.default_rng(0)
    deviations = rng.normal(size=(20, 8))
    deviations -= deviations.mean(axis=0)
    offset = 100.0 * np.ones(8)
    raw = similarity(deviations + offset, "cosine")
    centred = similarity(deviations + offset, "centred")
    assert raw[np.triu_indices(20, 1)].min() > 0.99
    np.testing.assert_allclose(centred, similarity(deviations, "cosine"), atol=1e-10)


def test_centred_about_a_reference_point_uses_that_origin():
    H = np.array([[2.0, 0.0], [0.0, 2.0]])
    S = similarity(H, "centred", reference=np.array([1.0, 1.0]))
    np.testing.assert_allclose(S, [[1.0, -1.0], [-1.0, 1.0]])


def test_euclidean_is_negative_distance_and_dissimilarity_recovers_it():
    H = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    S = similarity(H, "euclidean")
    np.testing.assert_allclose(S, -np.array([[0, 5, 10], [5, 0, 5], [10, 5, 0]]))
    np.testing.assert_allclose(dissimilarity(S), -S)
    # for a Gram matrix the dissimilarity is half the squared distance
    np.testing.assert_allclose(dissimilarity(similarity(H, "dot")), S**2 / 2, atol=1e-9)


def test_unknown_kind_and_bad_shape_raise_modscope_error():
    with pytest.raises(ModscopeError, match="unknown similarity kind"):
        similarity(np.eye(3), "manhattan")
    with pytest.raises(ModscopeError, match="shape"):
        similarity(np.ones(3))
