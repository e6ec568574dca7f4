"""Grokking components in the Fourier basis of Z_p: sparsity of singular directions, ablation, per-example loss PCA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result

TOP_K = 5  # Nanda et al. (2023) find 5 key frequencies in their grokked modular-addition model


def fourier_energy(direction: np.ndarray, p: int) -> np.ndarray:
    """Share of a direction's squared norm at each frequency f = 0..p//2 of Z_p.

    The direction is any array whose last axis (after reshaping to ``[-1, p]``) indexes the residues 0..p-1, e.g.
    the first-layer weight of the modadd MLP as ``[width, 2, p]`` (input a, input b). With the DFT
    F_f = sum_t x_t exp(-2 pi i f t / p), energy_f = sum_rows |F_f|^2 * (2 if 0 < f < p/2 else 1) / p, which
    sums to ||x||^2 (Parseval); frequencies f and p - f are one real frequency.

    Returns:
        float64 [p // 2 + 1], summing to 1 (all zeros for a zero direction).
    """
    rows = np.asarray(direction, dtype=np.float64).reshape(-1, p)
    spectrum = np.abs(np.fft.rfft(rows, axis=1)) ** 2
    freq = np.arange(spectrum.shape[1])
    weight = np.where((freq > 0) & (2 * freq < p), 2.0, 1.0)
    energy = (spectrum * weight).sum(0) / p
    total = energy.sum()
    return energy / total if total > 0 else energy


def sparsity(energy: np.ndarray, top_k: int = TOP_K) -> tuple[float, float, list]:
    """(share of energy in the top ``top_k`` frequencies, inverse participation ratio sum e_f^2 / (sum e_f)^2,
    dominant frequencies as [frequency, share] in decreasing share). 1 / IPR is the effective number of
    frequencies: 1 for a pure frequency, about p/2 for a flat (dense) spectrum."""
    energy = np.asarray(energy, dtype=np.float64)
    order = np.argsort(-energy, kind="stable")
    total = energy.sum()
    if total <= 0:
        return 0.0, 0.0, []
    ipr = float((energy ** 2).sum() / total ** 2)
    return float(energy[order[:top_k]].sum() / total), ipr, [[int(f), float(energy[f])] for f in order[:top_k]]


def top_directions(matrix: np.ndarray, k: int, *, centre: bool = False, seed: int = 0, power: int = 3
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Top ``k`` right singular vectors of ``matrix`` [n, D] (randomized range finder with ``power`` iterations,
    Halko et al. 2011, Alg. 4.4; float64). ``centre`` subtracts the row mean first (a trajectory's PCA).

    Returns:
        (singular values [k], directions [k, D] with unit norm, squared Frobenius norm of the matrix used).
    """
    a = np.asarray(matrix, dtype=np.float64)
    if centre:
        a = a - a.mean(0)
    k = min(k, *a.shape)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(a @ rng.normal(size=(a.shape[1], min(k + 8, min(a.shape)))))
    for _ in range(power):
        q, _ = np.linalg.qr(a @ (a.T @ q))
    _, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    return s[:k], vt[:k], float((a ** 2).sum())


@dataclass(frozen=True)
class FourierNull:
    """Sparsity of random Gaussian directions of the same shape (the null of "sparse").

    Fields: n (directions drawn), top_share_mean/sd/q99 (share of energy in the top-k frequencies),
    n_effective_mean (1 / IPR, frequencies).
    """

    n: int
    top_share_mean: float
    top_share_sd: float
    top_share_q99: float
    n_effective_mean: float


def fourier_null(shape: tuple[int, ...], p: int, *, top_k: int = TOP_K, n: int = 200, seed: int = 0) -> FourierNull:
    """Draw ``n`` isotropic Gaussian directions of ``shape`` and measure their Fourier sparsity."""
    rng = np.random.default_rng(seed)
    found = np.array([sparsity(fourier_energy(rng.normal(size=shape), p), top_k)[:2] for _ in range(n)])
    shares, effective = found[:, 0], 1 / found[:, 1]  # top-k share and 1 / IPR of each direction
    return FourierNull(n=n, top_share_mean=float(shares.mean()), top_share_sd=float(shares.std(ddof=1)),
                       top_share_q99=float(np.quantile(shares, 0.99)), n_effective_mean=float(np.mean(effective)))


def fourier_directions(directions: np.ndarray, singular_values: np.ndarray, *, p: int, shape: tuple[int, ...],
                       null: FourierNull, total: float, source: str, top_k: int = TOP_K) -> list[dict]:
    """One record per direction: its singular value and share of the matrix's squared norm, Fourier top-k share,
    IPR, effective number of frequencies, dominant frequencies, and ``sparse`` = top-k share above the null's
    99th percentile (``dense`` otherwise: as spread over frequencies as a random direction)."""
    out = []
    for index, (direction, value) in enumerate(zip(directions, singular_values)):
        share, ipr, dominant = sparsity(fourier_energy(direction.reshape(shape), p), top_k)
        out.append({"source": source, "component": index, "singular_value": float(value),
                    "variance_share": float(value ** 2 / total) if total > 0 else float("nan"),
                    "top_share": share, "ipr": ipr, "n_effective": 1 / ipr if ipr > 0 else float("nan"),
                    "dominant": dominant, "sparse": bool(share > null.top_share_q99)})
    return out


def ablate_direction(weight: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The weight with its component along the unit ``direction`` removed: W - <W, v> v (same shape as W)."""
    w = np.asarray(weight, dtype=np.float64)
    v = np.asarray(direction, dtype=np.float64).reshape(w.shape)
    v = v / np.linalg.norm(v)
    return w - np.sum(w * v) * v


def turning_points(trajectory: np.ndarray, n: int = 2, min_gap: int = 3) -> list[int]:
    """Indices of the ``n`` sharpest turns of a 2-D trajectory: the interior points with the largest angle between
    the incoming and outgoing displacement (each at least ``min_gap`` checkpoints from the others)."""
    path = np.asarray(trajectory, dtype=np.float64)
    if len(path) < 3:
        return []
    before, after = path[1:-1] - path[:-2], path[2:] - path[1:-1]
    norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
    cos = np.where(norms > 0, (before * after).sum(1) / np.maximum(norms, 1e-300), 1.0)
    angle = np.arccos(np.clip(cos, -1, 1))
    chosen: list[int] = []
    for index in np.argsort(-angle, kind="stable") + 1:
        if all(abs(int(index) - c) >= min_gap for c in chosen):
            chosen.append(int(index))
        if len(chosen) == n:
            break
    return sorted(chosen)


def pca_path(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores on PC1 and PC2 ``[rows, 2]`` (zero-padded) of the column-centred ``matrix`` [checkpoints, features],
    and the variance share of every PC (the path of a run through its checkpoints)."""
    u, s, _ = np.linalg.svd(matrix - matrix.mean(0), full_matrices=False)
    return np.pad(u[:, :2] * s[:2], ((0, 0), (0, max(0, 2 - len(s))))), s**2 / max((s**2).sum(), 1e-300)


@dataclass(frozen=True)
class LossPCA(Result):
    """PCA of per-example losses over checkpoints (Olsson et al. 2022, sec. on loss PCA).

    Fields:
        steps: checkpoint steps. pcs: [checkpoints, 2] coordinates on PC1/PC2 of the centred [checkpoints,
        examples] loss matrix (nats). explained: variance share of PC1, PC2. turning_steps: steps of the sharpest
        turns of the PC1/PC2 path (``turning_points``).
    """

    steps: list
    pcs: list
    explained: list
    turning_steps: list

    def plot(self, ax=None):
        """The PC1/PC2 path coloured by step, turning points marked."""
        ax = axes(ax)
        pcs = np.asarray(self.pcs)
        ax.plot(pcs[:, 0], pcs[:, 1], "-", color=NULL, lw=0.8)
        points = ax.scatter(pcs[:, 0], pcs[:, 1], c=self.steps, cmap="viridis", s=10, zorder=3)
        ax.figure.colorbar(points, ax=ax, label="step")
        for step in self.turning_steps:
            k = self.steps.index(step)
            ax.annotate(f"turn @ {step}", pcs[k], fontsize=7, color=TRAINED)
        ax.set(xlabel=f"PC1 of per-example loss ({100 * self.explained[0]:.0f}%)",
               ylabel=f"PC2 ({100 * self.explained[1]:.0f}%)")
        return ax


def loss_pca(losses: np.ndarray, steps) -> LossPCA:
    """PCA of ``losses`` [checkpoints, examples] (per-example cross-entropy, nats) over checkpoints."""
    matrix = np.asarray(losses, dtype=np.float64)
    if matrix.ndim != 2 or len(matrix) < 3:
        raise ModscopeError(f"loss PCA needs >= 3 checkpoints of per-example losses, got shape {matrix.shape}; "
                            "train with more checkpoints")
    pcs, var = pca_path(matrix)
    steps = [int(x) for x in steps]
    return LossPCA(steps=steps, pcs=pcs.tolist(), explained=[float(v) for v in np.pad(var, (0, 2))[:2]],
                   turning_steps=[steps[k] for k in turning_points(pcs)])


def per_example_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy -log softmax(logits)[label] (nats) for logits [..., examples, classes] and labels [examples]."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(-1))
    picked = np.take_along_axis(z, np.broadcast_to(np.asarray(labels)[..., None], z.shape[:-1] + (1,)), -1)[..., 0]
    return log_norm - picked
