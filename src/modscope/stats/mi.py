"""Gaussian mutual information between two sets of variables, with its exact null and a permutation null.

Optionally on the Gaussian copula of the data (gcmi, Ince et al. 2017, Hum. Brain Mapp. 38:1541): each
coordinate is replaced by the normal quantile of its rank, so the estimate is a lower bound on the true MI
that no heavy tail or massive activation can inflate. The exact Gaussian bias term stays right for what it is
(the Gaussian fitted to those values).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.stats.checks import require_finite_moments
from modscope.stats.covariance import Covariance, as_rows, covariance, feature_dim, resolve
from modscope.stats.null import (
    block_permutation,
    document_blocks,
    exact_p,
    logdet_bias,
    mi_null,
    rows_of_block_permutation,
)
from modscope.stats.subspace import DEFAULT_RANK_TOL, Subspace, subspace

LN2 = math.log(2.0)
# Whitened rows of an on-disk permutation null are held in memory up to this size, else streamed per permutation.
PERMUTATION_MEMORY_BYTES = 256 * 2**20
# 1 − ρ² is floored here so that an exact copy gives a large finite MI instead of inf.
MIN_ONE_MINUS_RHO2 = 1e-15


@dataclass(frozen=True)
class MIResult(Result):
    """Gaussian MI between X and Y and what it would be by chance.

    Attributes:
        mi: plug-in estimate ½(log det Σx + log det Σy − log det Σ) = −½ Σ_i log(1 − ρ_i²), nats.
        mi_bits: ``mi`` in bits.
        mi_corrected: bias-corrected estimate (each log det minus its Wishart bias), nats; unbiased for
            Gaussian data at any n. Equal to ``mi`` when bias correction was switched off.
        null_mean, null_sd: mean and sd of the plug-in ``mi`` under the null named by ``null``, nats: the exact
            values for independent Gaussians with the same n, rank_x, rank_y, or those of the permutation null.
        z: (mi − null_mean) / null_sd, in null standard deviations.
        p: one-sided p-value of ``mi`` under ``null``: (1 + #{perm ≥ mi}) / (1 + permutations) for a permutation
            null, Bartlett's χ² approximation of Wilks' Λ for the exact Gaussian null.
        null: which null ``null_mean``, ``null_sd``, ``z`` and ``p`` come from: "exact Gaussian (Wilks Λ)",
            "permutation (rows)" or "permutation (documents)".
        copula: the estimate is on the Gaussian copula (rank → normal per coordinate) rather than the raw values.
        n: rows used. dx, dy: column counts of X and Y. rank_x, rank_y: numerical ranks (dimensions used).
        canonical_correlations: ρ_i, descending, in [0, 1]; each direction carries −½ log(1 − ρ_i²) nats.
        perm_null: plug-in MI of each row-permutation of Y (nats), or None when not asked.
        perm_p: (1 + #{perm ≥ mi}) / (1 + permutations), or None.
    """

    mi: float
    mi_bits: float
    mi_corrected: float
    null_mean: float
    null_sd: float
    z: float
    n: int
    dx: int
    dy: int
    rank_x: int
    rank_y: int
    canonical_correlations: np.ndarray
    perm_null: np.ndarray | None = None
    perm_p: float | None = None
    p: float | None = None
    null: str = "exact Gaussian (Wilks Λ)"
    copula: bool = False

    def plot(self, ax=None):
        from modscope import figures as style

        ax = style.axes(ax)
        rho = np.asarray(self.canonical_correlations)
        ax.plot(np.arange(1, rho.size + 1), rho, color=style.TRAINED, lw=1.2, label="canonical correlation")
        ax.axhline(math.sqrt(min(self.rank_x, self.rank_y) / max(self.n, 1)), color=style.NULL, ls="--",
                   label="≈ chance level sqrt(min(d)/n)")
        ax.set(xlabel="canonical direction", ylabel="ρ", xscale="log", ylim=(0, 1.02),
               title=f"MI {self.mi:.3g} nats (null {self.null_mean:.3g} ± {self.null_sd:.2g}, z={self.z:.1f})")
        ax.legend()
        return ax


def canonical_correlations(joint: np.ndarray, dx: int, *, tol: float = DEFAULT_RANK_TOL
                           ) -> tuple[np.ndarray, Subspace, Subspace]:
    """Canonical correlations of the X = [:dx] and Y = [dx:] blocks of a joint covariance.

    ρ are the singular values of Kx^T Σxy Ky, where K whitens each block on its non-null subspace, so
    rank-deficient blocks (e.g. a norm that removes a direction) are handled by working in that subspace.

    Returns:
        (ρ descending, X subspace, Y subspace).
    """
    sx, sy = subspace(joint[:dx, :dx], tol=tol), subspace(joint[dx:, dx:], tol=tol)
    if sx.rank == 0 or sy.rank == 0:
        raise ModscopeError("X or Y has zero variance in every direction; MI is undefined for constant inputs")
    return rho_of(sx.whitener.T @ joint[:dx, dx:] @ sy.whitener), sx, sy


def rho_of(cross: np.ndarray) -> np.ndarray:
    """Canonical correlations from the cross-covariance of whitened X and Y: its singular values, clipped to [0, 1]."""
    return np.clip(np.linalg.svd(cross, compute_uv=False), 0.0, 1.0)


def mi_from_rho(rho: np.ndarray) -> float:
    """−½ Σ log(1 − ρ²) in nats."""
    return float(-0.5 * np.sum(np.log(np.maximum(1.0 - rho**2, MIN_ONE_MINUS_RHO2))))


def mi_from_covariance(joint: Covariance, dx: int, *, bias_correct: bool = True,
                       rank_tol: float = DEFAULT_RANK_TOL) -> MIResult:
    """Gaussian MI between the first ``dx`` columns of a joint accumulator and the rest.

    Args:
        joint: accumulator over [X, Y] columns (``covariance(X, Y)``).
        dx: number of X columns.
        bias_correct: subtract the Wishart log-det biases (see ``logdet_bias``) for ``mi_corrected``.
        rank_tol: relative eigenvalue threshold for the numerical rank of each block.

    Returns:
        MIResult (no permutation null; that needs the rows, see ``gaussian_mi``).
    """
    if not 0 < dx < joint.dim:
        raise ModscopeError(f"dx must split the {joint.dim} joint columns into two non-empty sets, got {dx}")
    n = joint.n
    dy = joint.dim - dx
    if n < 3:
        raise ModscopeError(f"MI needs at least {dx + dy + 1} rows, got n={n}")
    rho, sx, sy = canonical_correlations(joint.cov, dx, tol=rank_tol)
    if n <= sx.rank + sy.rank:
        raise ModscopeError(
            f"n={n} rows is too few for MI between {sx.rank} and {sy.rank} dimensions (ranks of {dx} and {dy} "
            f"columns); need at least {sx.rank + sy.rank + 1} rows — capture more tokens")
    mi = mi_from_rho(rho)
    null_mean, null_sd = mi_null(n, sx.rank, sy.rank)
    bias = 0.5 * (logdet_bias(n, sx.rank) + logdet_bias(n, sy.rank) - logdet_bias(n, sx.rank + sy.rank))
    return MIResult(
        mi=mi, mi_bits=mi / LN2, mi_corrected=mi - bias if bias_correct else mi,
        null_mean=null_mean, null_sd=null_sd, z=(mi - null_mean) / null_sd, n=n, dx=dx, dy=dy,
        rank_x=sx.rank, rank_y=sy.rank, canonical_correlations=rho, p=exact_p(n, sx.rank, sy.rank, mi))


def copula_normal(rows: np.ndarray) -> np.ndarray:
    """Each column replaced by Φ⁻¹(rank / (n + 1)) (gcmi's ``copnorm``, Ince et al. 2017); ties get their
    average rank."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    x = as_rows(rows)
    return ndtri(rankdata(x, axis=0) / (x.shape[0] + 1.0))


def permutation_null(X: Any, Y: Any, joint: Covariance, dx: int, *, permutations: int, seed: int = 0,
                     rank_tol: float = DEFAULT_RANK_TOL, groups: np.ndarray | None = None,
                     block_rows: int = 512, memory_bytes: int = PERMUTATION_MEMORY_BYTES) -> np.ndarray:
    """Plug-in MI after pairing X with shuffled Y, ``permutations`` times (nats).

    In-memory arrays: rows of Y are shuffled, or whole documents when ``groups`` (a document id per row,
    documents contiguous) is given. Σx and Σy do not change under a shuffle, so both sides are whitened once and
    each permutation costs one [rank_x, rank_y] cross-product and its singular values.

    On-disk arrays (Zarr): whole blocks are exchanged — documents, or ``block_rows`` rows without ``groups``.
    When the whitened projections (n · (rank_x + rank_y) float64) fit in ``memory_bytes`` they are read once,
    block by block; otherwise memory stays O(block · d): X blocks are read one at a time and paired with a Y
    block of the same length drawn by the permutation, so each permutation is one more pass over Y.
    """
    cov = joint.cov
    sx, sy = subspace(cov[:dx, :dx], tol=rank_tol), subspace(cov[dx:, dx:], tol=rank_tol)
    mean = joint.mean
    rng = np.random.default_rng(seed)
    n = joint.n
    in_memory = isinstance(X, np.ndarray) and isinstance(Y, np.ndarray)
    if groups is not None:
        blocks = document_blocks(groups)
    else:
        blocks = None if in_memory else [(a, min(a + block_rows, n)) for a in range(0, n, block_rows)]
    out = np.empty(permutations)

    def whitened(source, lo, hi, centre, whitener):
        return (as_rows(np.asarray(source[lo:hi])).astype(np.float64) - centre) @ whitener

    if in_memory or n * (sx.rank + sy.rank) * 8 <= memory_bytes:
        # in memory, or on disk with whitened projections that fit the budget: read once, block by block
        spans = [(0, n)] if in_memory else blocks
        wx = np.concatenate([whitened(X, lo, hi, mean[:dx], sx.whitener) for lo, hi in spans])
        wy = np.concatenate([whitened(Y, lo, hi, mean[dx:], sy.whitener) for lo, hi in spans])
        for k in range(permutations):
            order = (rng.permutation(n) if blocks is None
                     else rows_of_block_permutation(blocks, block_permutation(blocks, rng)))
            out[k] = mi_from_rho(rho_of(wx.T @ wy[order] / (n - 1)))
        return out
    for k in range(permutations):
        target = block_permutation(blocks, rng)
        cross = np.zeros((sx.rank, sy.rank))
        for b, (lo, hi) in enumerate(blocks):
            t_lo, t_hi = blocks[target[b]]
            cross += whitened(X, lo, hi, mean[:dx], sx.whitener).T @ whitened(Y, t_lo, t_hi, mean[dx:], sy.whitener)
        out[k] = mi_from_rho(rho_of(cross / (n - 1)))
    return out


def gaussian_mi(X: Any, Y: Any = None, *, dx: int | None = None, bias_correct: bool = True,
                permutations: int = 0, seed: int = 0, rank_tol: float = DEFAULT_RANK_TOL, copula: bool = False,
                groups: Any = None, engine: str = "local", chunk_rows: int | None = None, client: Any = None,
                scheduler: str | None = None) -> MIResult:
    """Mutual information of the Gaussian fitted to (X, Y): I = ½ log(det Σx det Σy / det Σ) (Cover & Thomas, eq. 8.56).

    Args:
        X: rows of X [n, dx] (numpy, Zarr, or ``(store, site)``), or a joint ``Covariance`` accumulator of
            [X, Y] columns (then pass ``dx`` and leave ``Y`` None).
        Y: rows of Y [n, dy], row-aligned with X.
        dx: number of X columns when ``X`` is a joint accumulator.
        bias_correct: report the digamma bias-corrected estimate in ``mi_corrected``.
        permutations: shuffles of Y for a permutation null (needs rows, not an accumulator). When > 0, ``z``,
            ``p``, ``null_mean`` and ``null_sd`` come from it (the exact Gaussian null is miscalibrated on
            heavy-tailed rows; see ``modscope calibrate``) and ``null`` says so.
        seed: seed of the permutations.
        rank_tol: relative eigenvalue threshold of the numerical rank.
        copula: estimate on the Gaussian copula (rank → normal per coordinate); needs in-memory rows.
        groups: a document id per row (documents contiguous): the permutation null exchanges whole documents.
        engine, chunk_rows, client, scheduler: where and in what chunks the joint covariance is streamed (see
            ``covariance``); every other argument means the same on both engines. The permutation null pairs
            rows of X with shuffled rows of Y, so it runs in this process after the covariance, on either engine.

    Returns:
        MIResult with the plug-in, corrected and null numbers, and the name of the null.
    """
    if isinstance(X, Covariance):
        if Y is not None or dx is None:
            raise ModscopeError("with a joint Covariance accumulator pass gaussian_mi(joint, dx=<X columns>)")
        if permutations or copula:
            raise ModscopeError("a permutation null and the copula need the rows; pass arrays X and Y instead of an "
                                "accumulator")
        return mi_from_covariance(X, dx, bias_correct=bias_correct, rank_tol=rank_tol)
    if Y is None:
        raise ModscopeError("gaussian_mi needs X and Y (or a joint Covariance accumulator and dx)")
    xs, ys = resolve(X), resolve(Y)
    if copula:
        if not (isinstance(xs, np.ndarray) and isinstance(ys, np.ndarray)):
            raise ModscopeError("copula=True ranks every column, which needs the rows in memory; pass numpy arrays "
                                "(np.asarray(store[site])) or use copula=False")
        xs, ys = copula_normal(xs), copula_normal(ys)
    dx = feature_dim(xs)
    joint = covariance(xs, ys, engine=engine, chunk_rows=chunk_rows, client=client, scheduler=scheduler)
    require_finite_moments(joint, "X and Y")
    result = mi_from_covariance(joint, dx, bias_correct=bias_correct, rank_tol=rank_tol)
    result = dataclasses.replace(result, copula=copula)
    if permutations > 0:
        if groups is not None and len(groups) != joint.n:
            raise ModscopeError(f"groups has {len(groups)} entries for {joint.n} rows; pass one document id per row")
        perm = permutation_null(xs, ys, joint, dx, permutations=permutations, seed=seed, rank_tol=rank_tol,
                                groups=None if groups is None else np.asarray(groups))
        p = (1 + int(np.sum(perm >= result.mi))) / (1 + permutations)
        mean, sd = float(perm.mean()), float(perm.std(ddof=1)) if permutations > 1 else float("nan")
        result = dataclasses.replace(
            result, perm_null=perm, perm_p=p, p=p, null_mean=mean, null_sd=sd,
            z=(result.mi - mean) / sd if sd > 0 else float("nan"),
            null="permutation (documents)" if groups is not None else "permutation (rows)")
    return result
