"""The shuffle null of clusterability: the same edge weights per layer, placed at random."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def shuffle_within_layers(layers: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Permute the entries of each weight matrix uniformly at random (Filan et al. 2021, sec. 3).

    Each layer keeps its shape and its multiset of |weights| (so its total weight and weight distribution), but
    any arrangement of them into clusters is destroyed.

    Args:
        layers: ``[|W_0|, |W_1|, ...]``.
        rng: the generator to draw permutations from.

    Returns:
        New arrays, one per layer.
    """
    return [rng.permutation(w.reshape(-1)).reshape(w.shape) for w in layers]


@dataclass(frozen=True)
class NullComparison:
    """An observed statistic against its null samples, for a one-sided test that it is *lower* than chance.

    Attributes:
        null_mean: mean of the null samples. null_sd: their standard deviation (ddof=1).
        z: ``(observed - null_mean) / null_sd`` (negative = lower than the null; ``-inf``/``inf`` if sd is 0).
        p_value: ``(1 + #{null <= observed}) / (1 + n_null)`` (Phipson & Smyth 2010), one-sided, never 0.
    """

    null_mean: float
    null_sd: float
    z: float
    p_value: float


def compare_lower(observed: float, null: np.ndarray) -> NullComparison:
    """Compare ``observed`` with ``null`` samples (see :class:`NullComparison` for the formulas)."""
    null = np.asarray(null, dtype=np.float64)
    mean = float(null.mean()) if len(null) else float("nan")
    sd = float(null.std(ddof=1)) if len(null) > 1 else float("nan")
    diff = observed - mean
    with np.errstate(divide="ignore", invalid="ignore"):  # sd 0: z is ±inf, or 0 when observed equals the null
        z = 0.0 if sd == 0 and diff == 0 else np.float64(diff) / sd
    p_value = (1 + int(np.sum(null <= observed))) / (1 + len(null))
    return NullComparison(null_mean=mean, null_sd=sd, z=float(z), p_value=p_value)
