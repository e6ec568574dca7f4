"""The mnist-mlp names take their weights from the loader passed in (training is a sibling package, not imported)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.weights.sources import network_units


def _loader(calls):
    def load(*, epochs, seed):
        calls.append((epochs, seed))
        rng = np.random.default_rng(seed)
        trained = [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)]
        return SimpleNamespace(trained=trained, init=[-w for w in trained], test_accuracy=0.9)

    return load


def test_mnist_names_use_the_given_loader_trained_and_initial_weights():
    calls = []
    units, graph = network_units("mnist-mlp", epochs=2, seed=5, mnist_loader=_loader(calls))
    twin, twin_graph = network_units("random:mnist-mlp", epochs=2, seed=5, mnist_loader=_loader(calls))
    assert calls == [(2, 5), (2, 5)]
    assert list(units) == ["all", "layer.0", "layer.1"] and graph.startswith("MNIST MLP 6-4-3 (trained 2 epoch(s)")
    assert np.array_equal(twin["layer.1"][0], -units["layer.1"][0]) and "initial weights" in twin_graph
    only, _ = network_units("mnist-mlp", layers=[1], mnist_loader=_loader([]))
    assert list(only) == ["all", "layer.1"]


def test_mnist_name_without_a_loader_says_what_to_pass():
    with pytest.raises(ModscopeError, match="mnist_loader=modscope.training.mnist.mnist_mlp_weights"):
        network_units("mnist-mlp")
