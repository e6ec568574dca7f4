"""Planted-cluster and i.i.d. random MLPs shared by the clusterability tests."""

from __future__ import annotations

import numpy as np
import pytest


def planted_mlp(sizes, k, *, noise=0.05, seed=0):
    """An MLP whose neurons belong to k planted modules: within-module weights ~ N(0, 1), across ~ noise * N(0, 1)."""
    rng = np.random.default_rng(seed)
    labels = [rng.integers(0, k, n) for n in sizes]
    weights = []
    for i in range(len(sizes) - 1):
        same = labels[i][:, None] == labels[i + 1][None, :]
        shape = (sizes[i], sizes[i + 1])
        weights.append(same * rng.standard_normal(shape) + noise * rng.standard_normal(shape))
    return weights, np.concatenate(labels)


@pytest.fixture
def planted():
    return planted_mlp((60, 80, 80, 40), k=4)


@pytest.fixture
def iid_mlp():
    rng = np.random.default_rng(1)
    sizes = (60, 80, 80, 40)
    return [rng.standard_normal((sizes[i], sizes[i + 1])) for i in range(3)]
