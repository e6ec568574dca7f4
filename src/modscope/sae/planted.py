"""A planted sparse dictionary: activations with a known answer for testing and benchmarking SAEs."""

from __future__ import annotations

import numpy as np


def planted_dictionary(d: int = 32, atoms: int = 64, n: int = 6000, active: int = 3, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Activations ``x = c D`` with random unit atoms ``D`` [atoms, d] and ``active`` non-zero codes per row.

    Each row's ``active`` atoms are drawn without replacement, with coefficients uniform in [0.5, 1.5].

    Returns:
        (float32 rows [n, d], the atoms [atoms, d] with unit norm).
    """
    rng = np.random.default_rng(seed)
    atoms_matrix = rng.standard_normal((atoms, d))
    atoms_matrix /= np.linalg.norm(atoms_matrix, axis=1, keepdims=True)
    codes = np.zeros((n, atoms))
    rows = np.repeat(np.arange(n), active)
    cols = np.concatenate([rng.choice(atoms, active, replace=False) for _ in range(n)])
    codes[rows, cols] = rng.uniform(0.5, 1.5, n * active)
    return (codes @ atoms_matrix).astype(np.float32), atoms_matrix
