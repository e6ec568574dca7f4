"""Simulated activations with known truth, in the regimes real residual streams live in (for calibration).

Every regime starts from a Gaussian core G [n, d] (i.i.d. N(0, 1) entries, or with planted correlations) and
changes its marginals without adding any correlation between coordinates:

- ``gaussian``: G itself.
- ``heavy``: every row scaled by s_i = sqrt(ν / χ²_ν), ν = 2 (rows are multivariate t with 2 dof; token
  norms of real residual streams are this heavy-tailed). Coordinates stay uncorrelated but share the scale.
- ``spread``: column j scaled so its variance is 10^(−2 + 4 j / (d − 1)): four decades of variances.
- ``massive``: coordinate 0 set to 100 (+ the core's noise) on 1 % of the rows, as the "massive activations"
  of Sun et al. (2024) on a few token positions.
- ``n_close``: Gaussian, with n close to the dimension (the caller's n is replaced by ``close_rows(d)``).

X and Y of an MI pair are transformed independently (their own row scales, their own massive rows), so under
"no effect" X ⟂ Y exactly.
"""

from __future__ import annotations

import math

import numpy as np

from modscope.errors import ModscopeError

REGIMES = ("gaussian", "heavy", "spread", "massive", "n_close")
HEAVY_DOF = 2.0
SPREAD_DECADES = 4.0
MASSIVE_ROW_SHARE = 0.01
MASSIVE_VALUE = 100.0


def close_rows(dim: int) -> int:
    """Rows of the ``n_close`` regime for ``dim`` columns in all (⌈1.25·dim⌉ + 2, just above the minimum)."""
    return int(math.ceil(1.25 * dim)) + 2


def rows_for(regime: str, n: int, dim: int) -> int:
    """The number of rows a regime uses: ``n``, except ``n_close`` which uses ``close_rows(dim)``."""
    check_regime(regime)
    return close_rows(dim) if regime == "n_close" else n


def check_regime(regime: str) -> None:
    if regime not in REGIMES:
        raise ModscopeError(f"unknown regime '{regime}'; the regimes are: {', '.join(REGIMES)}")


def apply_regime(core: np.ndarray, regime: str, rng: np.random.Generator) -> np.ndarray:
    """Give a Gaussian core [n, d] the marginals of ``regime`` (see the module docstring); a new array."""
    check_regime(regime)
    x = np.array(core, dtype=np.float64)
    n, d = x.shape
    if regime == "heavy":
        x *= np.sqrt(HEAVY_DOF / rng.chisquare(HEAVY_DOF, size=n))[:, None]
    elif regime == "spread":
        x *= 10.0 ** (SPREAD_DECADES / 2 * (np.linspace(-1.0, 1.0, d) if d > 1 else np.zeros(1)))[None, :]
    elif regime == "massive":
        rows = rng.choice(n, size=max(1, round(MASSIVE_ROW_SHARE * n)), replace=False)
        x[rows, 0] += MASSIVE_VALUE
    return x


def independent_rows(regime: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """[rows_for(regime, n, d), d] rows with uncorrelated coordinates (no effect) in ``regime``."""
    return apply_regime(rng.standard_normal((rows_for(regime, n, d), d)), regime, rng)


def factor_rows(regime: str, n: int, d: int, rng: np.random.Generator, *, loading: float) -> np.ndarray:
    """Rows with one planted shared direction: core = G + loading·f·u^T, u a random unit vector, f ~ N(0, 1).

    The top population eigenvalue of the core is 1 + loading² against 1 for the rest.
    """
    m = rows_for(regime, n, d)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    core = rng.standard_normal((m, d)) + loading * rng.standard_normal((m, 1)) * u[None, :]
    return apply_regime(core, regime, rng)


def channel_pair(regime: str, n: int, dx: int, dy: int, rng: np.random.Generator, *, channels: int = 0,
                 rho: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) whose Gaussian cores share ``channels`` canonical pairs of correlation ``rho`` (0: independent).

    The core's MI is exactly −(channels/2)·log(1 − rho²) nats (``planted_mi``); the regime is then applied to X
    and Y separately.
    """
    if channels > min(dx, dy) or not 0.0 <= rho < 1.0:
        raise ModscopeError(f"need channels ≤ min(dx, dy) and 0 ≤ rho < 1, got {channels}, {rho}")
    m = rows_for(regime, n, dx + dy)
    gx = rng.standard_normal((m, dx))
    gy = rng.standard_normal((m, dy))
    if channels:
        gy[:, :channels] = rho * gx[:, :channels] + math.sqrt(1.0 - rho**2) * gy[:, :channels]
    return apply_regime(gx, regime, rng), apply_regime(gy, regime, rng)


def planted_mi(channels: int, rho: float) -> float:
    """MI (nats) of the Gaussian core of ``channel_pair``: −(channels/2)·log(1 − rho²)."""
    return -0.5 * channels * math.log(1.0 - rho**2)


def labelled_rows(regime: str, n: int, d: int, rng: np.random.Generator, *, categories: int = 2,
                  shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(rows [n, d], labels [n]): balanced random labels; category c's core mean is shift·c along coordinate 1
    (0: labels carry no information)."""
    m = rows_for(regime, n, d)
    labels = np.arange(m) % categories
    rng.shuffle(labels)
    core = rng.standard_normal((m, d))
    core[:, min(1, d - 1)] += shift * labels
    return apply_regime(core, regime, rng), labels


def block_rows(regime: str, n: int, d: int, rng: np.random.Generator, *, blocks: int = 2,
               loading: float = 0.0) -> np.ndarray:
    """Rows whose coordinates fall in ``blocks`` equal groups, each sharing one latent factor with weight
    ``loading`` (within-block correlation loading² / (1 + loading²) in the core; 0: no structure)."""
    m = rows_for(regime, n, d)
    group = np.arange(d) * blocks // d
    core = rng.standard_normal((m, d)) + loading * rng.standard_normal((m, blocks))[:, group]
    return apply_regime(core, regime, rng)


def layered_weights(regime: str, widths: tuple[int, ...], rng: np.random.Generator, *, modules: int = 2,
                    boost: float = 1.0) -> list[np.ndarray]:
    """Weight matrices [widths[l], widths[l+1]] with Gaussian cores in ``regime`` (rows = input neurons);
    entries inside ``modules`` diagonal blocks are multiplied by ``boost`` (1: no modules)."""
    out = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        core = rng.standard_normal((a, b))
        same = (np.arange(a)[:, None] * modules // a) == (np.arange(b)[None, :] * modules // b)
        core = np.where(same, boost * core, core)
        out.append(apply_regime(core, "gaussian" if regime == "n_close" else regime, rng))
    return out
