"""Block structure of a correlation matrix: spectral ordering, eigengap block count, modularity vs a null."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.stats.covariance import Covariance, as_rows
from modscope.stats.spectral_clustering import kmeans, normalized_embedding


@dataclass(frozen=True)
class BlockResult(Result):
    """A permutation of the variables that reveals blocks of mutually correlated variables.

    Attributes:
        order: permutation of the d variables (blocks contiguous, each block sorted by the Fiedler vector).
        labels: block index of each variable, in the original order.
        n_blocks: number of blocks k, the largest eigengap λ_k − λ_{k+1} (k ≥ 2) of the normalised
            affinity D^{-1/2} |C| D^{-1/2} (von Luxburg 2007, §8.3).
        block_sizes: variables per block, in display order.
        eigengap: the gap λ_k − λ_{k+1} that chose k (unitless).
        affinity_eigenvalues: leading eigenvalues of the normalised affinity (for the eigengap plot).
        modularity: Newman's weighted modularity Q = (1/2m) Σ_ij (A_ij − k_i k_j / 2m) δ(c_i, c_j) of the
            partition, A = |corr| off the diagonal (Newman 2006, PNAS 103:8577). A rank-one "one big
            channel" matrix has Q ≈ 0 for every partition.
        null_mean, null_sd: modularity of the same procedure on null matrices (see ``null``).
        z: (modularity − null_mean) / null_sd.
        p: (1 + #{null ≥ modularity}) / (1 + n_shuffles), the one-sided permutation p-value (what a verdict
            should use: the null of a maximised modularity is skewed, so z is not a normal deviate).
        null: which null: "sign-flip (rows)" — the centred rows with every entry's sign flipped at random, which
            keeps every |x_ij| (heavy-tailed token norms included) and removes all correlation; "Wishart (n rows)"
            — correlation matrices of n independent Gaussian rows, exact for Gaussian data; or "shuffled entries"
            — the off-diagonal |corr| entries placed at random (used only when neither rows nor n are known;
            calibration finds it too liberal when n is close to d).
        n_shuffles: null matrices drawn.
        permuted: |corr| with rows and columns in ``order`` (for the heat map; not in JSON).
    """

    order: np.ndarray
    labels: np.ndarray
    n_blocks: int
    block_sizes: list[int]
    eigengap: float
    affinity_eigenvalues: np.ndarray
    modularity: float
    null_mean: float
    null_sd: float
    z: float
    n_shuffles: int
    permuted: np.ndarray
    p: float = float("nan")
    null: str = "shuffled entries"

    _json_exclude = ("permuted",)
    _frame_columns = ("labels",)

    def plot(self, ax=None, *, title: str | None = None):
        from modscope import figures as style

        ax = style.axes(ax, figsize=(4.2, 3.8))
        off = self.permuted[~np.eye(self.permuted.shape[0], dtype=bool)]
        top = float(np.quantile(off, 0.99)) if off.size else 1.0  # the diagonal would wash out weak blocks
        image = ax.imshow(self.permuted, cmap="viridis", vmin=0, vmax=max(top, 1e-12), interpolation="nearest")
        edges = np.cumsum(self.block_sizes)[:-1] - 0.5
        for e in edges:
            ax.axhline(e, color="w", lw=0.6)
            ax.axvline(e, color="w", lw=0.6)
        ax.grid(False)
        ax.set(xticks=[], yticks=[], title=title or f"{self.n_blocks} blocks, Q={self.modularity:.3f} (z={self.z:.1f})")
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label="|corr|")
        return ax


def correlation_of(cov_or_corr: Any) -> np.ndarray:
    if isinstance(cov_or_corr, Covariance):
        return cov_or_corr.corr
    C = np.asarray(cov_or_corr, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ModscopeError(f"blocks() needs a square covariance or correlation matrix, got shape {C.shape}")
    sd = np.sqrt(np.clip(np.diag(C), 0.0, None))
    safe = np.where(sd > 0, sd, 1.0)
    return C / np.outer(safe, safe)


def modularity(A: np.ndarray, labels: np.ndarray) -> float:
    """Newman's weighted modularity of ``labels`` on the symmetric non-negative affinity ``A``."""
    k = A.sum(axis=1)
    two_m = k.sum()
    if two_m <= 0:
        return 0.0
    same = labels[:, None] == labels[None, :]
    return float(np.sum((A - np.outer(k, k) / two_m) * same) / two_m)


def partition(A: np.ndarray, max_blocks: int, seed: int) -> tuple[np.ndarray, np.ndarray, int, float, np.ndarray]:
    """Spectral clustering (Ng, Jordan & Weiss 2001) of affinity A with k from the eigengap.

    Returns:
        (labels, fiedler, k, eigengap, leading eigenvalues).
    """
    values, vectors, inv_sqrt = normalized_embedding(A, min(max_blocks + 2, A.shape[0]))
    top = values[: max_blocks + 1]
    gaps = top[1:-1] - top[2:]  # gaps after λ_2, λ_3, …: k ≥ 2 blocks
    k = int(np.argmax(gaps)) + 2
    embedding = vectors[:, :k]
    embedding = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    fiedler = vectors[:, 1] * inv_sqrt
    return kmeans(embedding, k, seed=seed), fiedler, k, float(gaps[k - 2]), top


def null_affinities(kind: str, A: np.ndarray, rng: np.random.Generator, *, rows: np.ndarray | None, n: int | None):
    """One null affinity |corr| (zero diagonal) of the kind named (see ``BlockResult.null``)."""
    if kind == "sign-flip (rows)":
        x = rows * (rng.integers(0, 2, size=rows.shape, dtype=np.int8) * 2 - 1)
        C = x.T @ x  # not re-centred: the flipped rows keep the data's diagonal (see stats.spectra)
    elif kind == "Wishart (n rows)":
        from scipy.stats import wishart

        d = A.shape[0]
        if n - 1 >= d:  # Bartlett's construction, O(d³) whatever n
            C = np.atleast_2d(wishart.rvs(df=n - 1, scale=np.eye(d), random_state=rng))
        else:
            g = rng.standard_normal((n - 1, d))
            C = g.T @ g
    else:  # the same off-diagonal weights placed at random symmetric positions
        upper = np.triu_indices(A.shape[0], k=1)
        out = np.zeros_like(A)
        out[upper] = rng.permutation(A[upper])
        return out + out.T
    out = np.abs(correlation_of(C))
    np.fill_diagonal(out, 0.0)
    return out


def blocks(cov_or_corr: Any, *, n_shuffles: int = 20, max_blocks: int | None = None, seed: int = 0,
           rows: Any = None, n: int | None = None) -> BlockResult:
    """Find a block-revealing permutation of a covariance/correlation matrix and test it against a null.

    Args:
        cov_or_corr: [d, d] covariance or correlation matrix, or a ``Covariance`` accumulator (its n is used).
        n_shuffles: null matrices (19 or more for a p-value that can reach 0.05).
        max_blocks: largest block count considered (default min(20, d // 2)).
        seed: seed of k-means and of the null.
        rows: the rows [n, d] in memory, for the sign-flip null. n: rows behind the matrix, for the Wishart null
            (taken from an accumulator). With neither, the shuffled-entries null (see ``BlockResult.null``).

    Returns:
        BlockResult.
    """
    if n is None and isinstance(cov_or_corr, Covariance):
        n = cov_or_corr.n
    corr = correlation_of(cov_or_corr)
    d = corr.shape[0]
    if d < 4:
        raise ModscopeError(f"block structure needs at least 4 variables, got {d}")
    max_blocks = min(max_blocks or 20, d // 2)
    if max_blocks < 2:
        raise ModscopeError(f"max_blocks must be at least 2, got {max_blocks}")
    centred = None
    if rows is not None:
        centred = as_rows(np.asarray(rows)).astype(np.float64)
        if centred.shape[1] != d:
            raise ModscopeError(f"rows have {centred.shape[1]} columns for a {d}x{d} matrix; pass the same rows")
        centred = centred - centred.mean(axis=0)
    kind = "sign-flip (rows)" if centred is not None else ("Wishart (n rows)" if n and n > 2 else "shuffled entries")
    A = np.abs(corr)
    np.fill_diagonal(A, 0.0)
    labels, fiedler, k, gap, top = partition(A, max_blocks, seed)
    q = modularity(A, labels)
    rng = np.random.default_rng(seed)
    null = np.array([modularity(S, partition(S, max_blocks, seed)[0])
                     for S in (null_affinities(kind, A, rng, rows=centred, n=n) for _ in range(n_shuffles))])
    block_rank = np.argsort([fiedler[labels == b].mean() if np.any(labels == b) else np.inf for b in range(k)])
    labels = np.argsort(block_rank)[labels]  # block b becomes its place in the Fiedler order
    order = np.lexsort((fiedler, labels))
    sizes = [int(s) for s in np.bincount(labels, minlength=k) if s > 0]
    null_mean = float(null.mean()) if n_shuffles else float("nan")
    null_sd = float(null.std(ddof=1)) if n_shuffles > 1 else float("nan")
    z = (q - null_mean) / null_sd if n_shuffles > 1 and null_sd > 0 else float("nan")
    p = (1.0 + float(np.sum(null >= q))) / (1.0 + n_shuffles)
    permuted = np.abs(corr)[np.ix_(order, order)]
    return BlockResult(order=order, labels=labels, n_blocks=len(sizes), block_sizes=sizes, eigengap=gap,
                       affinity_eigenvalues=top, modularity=q, null_mean=null_mean, null_sd=null_sd, z=z,
                       n_shuffles=n_shuffles, permuted=permuted, p=p, null=kind)
