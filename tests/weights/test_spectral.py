"""Spectral embedding via the bipartite trick equals the normalised-Laplacian eigenvectors; k-means basics."""

from __future__ import annotations

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.weights.graph import as_abs_layers, layered_adjacency
from modscope.weights.spectral import kmeans, spectral_clusters, spectral_embedding


def laplacian_reference(weights, k):
    dense = layered_adjacency(weights).toarray()
    degree = dense.sum(axis=1)
    laplacian = np.eye(len(dense)) - dense / np.sqrt(np.outer(degree, degree))
    values, vectors = np.linalg.eigh(laplacian)
    return values[:k], vectors[:, :k] / np.sqrt(degree)[:, None]


def principal_cosines(a, b):
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


@pytest.mark.parametrize("solver", ["dense", "arpack"])
def test_bipartite_embedding_spans_smallest_laplacian_eigenvectors(solver):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((9, 12)), rng.standard_normal((12, 7)), rng.standard_normal((7, 5))]
    values_ref, vectors_ref = laplacian_reference(weights, 3)
    embedding, values, isolated = spectral_embedding(as_abs_layers(weights, dtype=np.float64), 3, solver=solver,
                                                     tol=0)
    np.testing.assert_allclose(values, values_ref, atol=1e-8)
    np.testing.assert_allclose(principal_cosines(embedding, vectors_ref), 1.0, atol=1e-6)
    assert not isolated.any()


def test_disconnected_components_give_zero_eigenvalues_and_exact_clusters():
    w = np.zeros((6, 6))
    w[:3, :3] = 1.0 + np.arange(9).reshape(3, 3)
    w[3:, 3:] = 2.0
    partition = spectral_clusters(as_abs_layers([w]), 2)
    np.testing.assert_allclose(partition.eigenvalues, 0.0, atol=1e-6)
    assert list(partition.labels) == [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]


def test_isolated_neurons_are_labelled_minus_one():
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((8, 10))
    w0[2] = 0.0  # input neuron 2 is dead
    partition = spectral_clusters(as_abs_layers([w0, rng.standard_normal((10, 6))]), 3)
    assert partition.labels[2] == -1 and partition.n_isolated == 1
    assert (np.delete(partition.labels, 2) >= 0).all()


def test_kmeans_separates_well_separated_blobs_and_is_seeded():
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat(np.arange(3), 30)
    points = centres[truth] + rng.standard_normal((90, 2))
    labels = kmeans(points, 3, seed=1)
    assert list(labels) == list(truth)  # renumbered by first occurrence, so ids equal the truth
    np.testing.assert_array_equal(labels, kmeans(points, 3, seed=1))


def test_too_many_clusters_is_an_error():
    with pytest.raises(ModscopeError, match="smaller k"):
        spectral_embedding(as_abs_layers([np.ones((3, 2))]), 3)
