"""The neuron graph of a layered network and its normalised cut."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.weights.graph import as_abs_layers, layered_adjacency, layered_ncut, ncut


def brute_force_ncut(dense: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for c in np.unique(labels[labels >= 0]):
        inside = labels == c
        cut = sum(dense[i, j] for i, j in itertools.product(np.nonzero(inside)[0], range(len(labels)))
                  if not inside[j] and labels[j] >= 0)
        vol = dense[inside].sum()
        total += cut / vol
    return total


def test_adjacency_is_symmetric_block_tridiagonal_of_absolute_weights():
    w0 = np.array([[1.0, -2.0, 0.0], [0.5, 0.0, -3.0]])
    w1 = np.array([[4.0], [-1.0], [2.0]])
    dense = layered_adjacency([w0, w1]).toarray()
    assert dense.shape == (6, 6)
    np.testing.assert_array_equal(dense, dense.T)
    np.testing.assert_array_equal(dense[:2, 2:5], np.abs(w0))
    np.testing.assert_array_equal(dense[2:5, 5:], np.abs(w1))
    assert dense[:2, :2].sum() == 0 and dense[:2, 5:].sum() == 0  # no within-layer or skip edges


def test_ncut_matches_brute_force_on_tiny_graph():
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((3, 4)), rng.standard_normal((4, 3))]
    dense = layered_adjacency(weights).toarray()
    for _ in range(5):
        labels = rng.integers(0, 3, 10)
        expected = brute_force_ncut(dense, labels)
        assert ncut(dense, labels) == pytest.approx(expected, rel=1e-12)
        assert layered_ncut(as_abs_layers(weights), labels, 3) == pytest.approx(expected, rel=1e-5)


def test_ncut_of_two_disconnected_components_split_along_them_is_zero():
    w = np.zeros((4, 4))
    w[:2, :2] = 1.0
    w[2:, 2:] = 2.0
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    assert ncut(layered_adjacency([w]), labels) == 0.0
    assert layered_ncut(as_abs_layers([w]), labels, 2) == 0.0


def test_ncut_of_one_cluster_is_zero_and_bounded_by_k():
    rng = np.random.default_rng(2)
    adjacency = layered_adjacency([rng.standard_normal((5, 6))])
    assert ncut(adjacency, np.zeros(11, dtype=int)) == 0.0
    assert 0 < ncut(adjacency, rng.integers(0, 3, 11)) <= 3


def test_ncut_ignores_isolated_neurons_labelled_minus_one():
    w = np.array([[1.0, 2.0], [0.0, 0.0]])  # input neuron 1 has no edges
    labels = np.array([0, -1, 0, 1])
    dense = layered_adjacency([w]).toarray()
    assert ncut(dense, labels) == pytest.approx(brute_force_ncut(dense, labels))


def test_non_consecutive_shapes_are_rejected_with_orientation_hint():
    with pytest.raises(ModscopeError, match=r"\[n_in, n_out\]"):
        as_abs_layers([np.ones((3, 4)), np.ones((5, 2))])
    with pytest.raises(ModscopeError, match="NaN"):
        as_abs_layers([np.array([[np.nan, 1.0]])])
