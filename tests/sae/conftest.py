"""Shared fixtures of the SAE tests: a planted sparse dictionary."""

from __future__ import annotations

import numpy as np
import pytest


def planted_dictionary(d: int = 32, atoms: int = 64, n: int = 6000, active: int = 3, seed: int = 0):
    """Activations ``x = c D`` with random unit atoms ``D`` [atoms, d] and ``active`` non-zero codes per row."""
    rng = np.random.default_rng(seed)
    atoms_matrix = rng.standard_normal((atoms, d))
    atoms_matrix /= np.linalg.norm(atoms_matrix, axis=1, keepdims=True)
    codes = np.zeros((n, atoms))
    rows = np.repeat(np.arange(n), active)
    cols = np.concatenate([rng.choice(atoms, active, replace=False) for _ in range(n)])
    codes[rows, cols] = rng.uniform(0.5, 1.5, n * active)
    return (codes @ atoms_matrix).astype(np.float32), atoms_matrix


@pytest.fixture(scope="session")
def planted():
    return planted_dictionary()
