"""Nulls of the Gaussian plug-in MI: its exact finite-sample null and log-det bias, and permutation nulls.

The exact null is right for Gaussian rows only; on heavy-tailed rows (token norms of real residual streams) it is
far too narrow (see ``modscope calibrate``). The permutation null — Y's rows (or whole documents of Y) shuffled
against X's — is exact for any distribution when the shuffled units are exchangeable, so it is the one the
report uses for z and p when it is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, polygamma
from scipy.stats import chi2

from modscope.errors import ModscopeError
from modscope.results import Result


def logdet_bias(n: int, d: int) -> float:
    """E[log det S] − log det Σ for the unbiased sample covariance S of n Gaussian rows in d dimensions.

    (n − 1) S ~ Wishart(Σ, n − 1), so E[log det S] = log det Σ + Σ_{i=1}^{d} ψ((n − i)/2) + d·log(2/(n − 1))
    (Anderson 2003, Thm 7.5.4; the correction used by gcmi's ``ent_g``, Ince et al. 2017, Hum. Brain Mapp.).
    It does not depend on Σ, so subtracting it makes each log-det unbiased.

    Args:
        n: rows used. d: dimension (numerical rank) of the covariance.

    Returns:
        The bias in nats of log det (not of ½ log det).
    """
    if n <= d:
        raise ModscopeError(f"log det of a {d}-dim sample covariance needs n > {d} rows, got n={n}")
    i = np.arange(1, d + 1)
    return float(np.sum(digamma((n - i) / 2.0)) + d * math.log(2.0 / (n - 1)))


@dataclass(frozen=True)
class MINull(Result):
    """The exact null of the plug-in Gaussian MI (see ``mi_null``): ``mean`` and ``sd`` in nats.

    Unpacks like the ``(mean, sd)`` tuple it replaces (``mean, sd = mi_null(n, dx, dy)``).
    """

    mean: float
    sd: float
    n: int
    dx: int
    dy: int

    def __iter__(self):
        return iter((self.mean, self.sd))

    def plot(self, ax=None):
        """The null's normal approximation, mean ± 3 sd."""
        from modscope.figures import NULL, axes

        ax = axes(ax)
        x = np.linspace(self.mean - 3 * self.sd, self.mean + 3 * self.sd, 200)
        ax.plot(x, np.exp(-0.5 * ((x - self.mean) / self.sd) ** 2) / (self.sd * math.sqrt(2 * math.pi)), color=NULL)
        ax.set(xlabel="plug-in MI under independence (nats)", ylabel="density",
               title=f"n={self.n}, dx={self.dx}, dy={self.dy}")
        return ax


def mi_null(n: int, dx: int, dy: int) -> MINull:
    """Exact mean and sd (nats) of the plug-in Gaussian MI of n rows when X ⟂ Y are Gaussian.

    The plug-in estimate is MI = −½ log Λ with Λ = det S / (det S_xx det S_yy), Wilks' lambda. Under
    independence Λ ~ Λ(dx; n − 1 − dy, dy), a product of independent Beta variables (Anderson 2003,
    Thm 8.4.1; centred data has n − 1 degrees of freedom):

        log Λ = Σ_{i=1}^{dx} log B_i,   B_i ~ Beta(a_i, b),  a_i = (n − dy − i)/2,  b = dy/2,
        E[log B] = ψ(a) − ψ(a + b),     Var[log B] = ψ'(a) − ψ'(a + b).

    So mean = −½ Σ_i [ψ(a_i) − ψ(a_i + b)] and sd = ½ sqrt(Σ_i [ψ'(a_i) − ψ'(a_i + b)]). The result is
    symmetric in dx and dy and approaches dx·dy / (2n) for large n.

    Args:
        n: rows. dx, dy: dimensions (numerical ranks) of X and Y.

    Returns:
        MINull (mean and sd in nats; unpacks as ``(null_mean, null_sd)``).
    """
    if dx < 1 or dy < 1:
        raise ModscopeError(f"MI needs at least one dimension on each side, got dx={dx}, dy={dy}")
    if n <= dx + dy:
        raise ModscopeError(f"Gaussian MI of {dx}+{dy} dimensions needs at least {dx + dy + 1} rows, got n={n}; "
                            "use more tokens or fewer dimensions")
    i = np.arange(1, dx + 1)
    a = (n - dy - i) / 2.0
    apb = (n - i) / 2.0
    mean = -0.5 * float(np.sum(digamma(a) - digamma(apb)))
    var = 0.25 * float(np.sum(polygamma(1, a) - polygamma(1, apb)))
    return MINull(mean, math.sqrt(var), n, dx, dy)


def exact_p(n: int, dx: int, dy: int, mi: float) -> float:
    """P(plug-in MI ≥ ``mi``) for independent Gaussians, from Bartlett's χ² approximation of Wilks' Λ:
    −(n − 1 − (dx + dy + 1)/2) log Λ ~ χ²(dx·dy), with log Λ = −2·MI (Anderson 2003, §8.5; Bartlett 1938).
    Unlike a normal tail of ``z`` it follows the null's right skew, which matters when dx·dy is small."""
    stat = 2.0 * mi * (n - 1 - (dx + dy + 1) / 2.0)
    return float(chi2.sf(stat, dx * dy))


def document_blocks(groups: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive ``groups`` values (a document's rows are contiguous)."""
    groups = np.asarray(groups)
    bounds = [0, *(np.flatnonzero(groups[1:] != groups[:-1]) + 1).tolist(), groups.size]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def block_permutation(blocks: list[tuple[int, int]], rng: np.random.Generator) -> np.ndarray:
    """For each block, the index of the block it is paired with: a random permutation within each class of
    equal-length blocks (whole documents are exchanged only with documents of the same length, so rows stay
    aligned; a block with a unique length stays paired with itself, which makes the null conservative)."""
    lengths = np.array([b - a for a, b in blocks])
    target = np.arange(len(blocks))
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        target[members] = rng.permutation(members)
    return target


def rows_of_block_permutation(blocks: list[tuple[int, int]], target: np.ndarray) -> np.ndarray:
    """Row index of Y paired with each row of X under a block pairing ``target``."""
    return np.concatenate([np.arange(*blocks[t]) for t in target]) if blocks else np.zeros(0, dtype=np.int64)
