"""Clusterability against the shuffle null: planted modules are found, i.i.d. weights look like chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.weights import clusterability
from modscope.weights.null import compare_lower, shuffle_within_layers


def contingency(truth: np.ndarray, found: np.ndarray, k: int) -> np.ndarray:
    table = np.zeros((k, k), dtype=int)
    np.add.at(table, (truth, found), 1)
    return table


def test_planted_block_diagonal_mlp_is_clusterable_and_clusters_are_recovered(planted):
    weights, truth = planted
    result = clusterability(weights, k=4, n_shuffles=20, seed=0)
    assert result.z < -3
    assert result.p_value == pytest.approx(1 / 21)
    assert result.ncut < result.null_ncuts.min()
    table = contingency(truth, result.labels, 4)
    assert ((table > 0).sum(axis=1) == 1).all() and ((table > 0).sum(axis=0) == 1).all()  # a permutation


def test_iid_random_mlp_is_not_more_clusterable_than_its_shuffles(iid_mlp):
    result = clusterability(iid_mlp, k=4, n_shuffles=20, seed=0)
    assert abs(result.z) < 3
    assert result.p_value > 0.01
    assert sum(result.cluster_sizes) == 260


def test_result_is_reproducible_for_a_seed_and_torch_inputs_match_numpy(iid_mlp):
    a = clusterability(iid_mlp, k=3, n_shuffles=4, seed=5)
    b = clusterability([torch.tensor(w) for w in iid_mlp], k=3, n_shuffles=4, seed=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.null_ncuts, b.null_ncuts)


def test_module_input_uses_linear_weights_transposed():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 10))
    via_module = clusterability(net, k=3, n_shuffles=3)
    via_matrices = clusterability([net[0].weight.T, net[2].weight.T], k=3, n_shuffles=3)
    assert via_module.layer_sizes == (20, 30, 10)
    assert via_module.ncut == pytest.approx(via_matrices.ncut)


def test_shuffle_keeps_each_layers_weights_and_moves_them():
    rng = np.random.default_rng(0)
    layers = [np.abs(rng.standard_normal((5, 6))), np.abs(rng.standard_normal((6, 4)))]
    shuffled = shuffle_within_layers(layers, np.random.default_rng(1))
    for original, new in zip(layers, shuffled, strict=True):
        assert new.shape == original.shape
        np.testing.assert_array_equal(np.sort(new.ravel()), np.sort(original.ravel()))
        assert not np.array_equal(new, original)


def test_null_comparison_formulas():
    null = np.array([1.0, 2.0, 3.0, 4.0])
    comparison = compare_lower(0.5, null)
    assert comparison.null_mean == 2.5
    assert comparison.null_sd == pytest.approx(np.std(null, ddof=1))
    assert comparison.z == pytest.approx(-2.0 / np.std(null, ddof=1))
    assert comparison.p_value == pytest.approx(1 / 5)
    assert compare_lower(3.0, null).p_value == pytest.approx(4 / 5)


def test_result_json_leaves_out_labels_and_plot_draws(planted):
    result = clusterability(planted[0], k=4, n_shuffles=3)
    payload = result.to_json()
    assert "labels" not in payload and len(payload["null_ncuts"]) == 3
    assert result.plot() is not None


def test_bad_k_is_an_error(iid_mlp):
    with pytest.raises(ModscopeError, match="at least 2"):
        clusterability(iid_mlp, k=1)


def test_null_does_not_depend_on_the_number_of_worker_processes(iid_mlp):
    serial = clusterability(iid_mlp, k=3, n_shuffles=4, seed=2, n_jobs=1)
    parallel = clusterability(iid_mlp, k=3, n_shuffles=4, seed=2, n_jobs=2)
    np.testing.assert_array_equal(serial.null_ncuts, parallel.null_ncuts)
