"""Reconstruction quality of an SAE on held-out activations: MSE, variance explained, L0, dead latents."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from modscope.results import Result


@dataclass(frozen=True)
class Reconstruction(Result):
    """How well an SAE reconstructs held-out activations.

    Attributes:
        mse: mean over tokens of ``||x - x_hat||^2 / d_in`` (squared site units per dimension).
        fve: fraction of variance explained, ``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``; the null of
            predicting every token by the mean activation scores 0.
        cosine: mean cosine similarity between ``x`` and ``x_hat``.
        l0: mean active latents per token.
        dead_fraction: fraction of latents that fire on none of these tokens.
        n_tokens: held-out tokens evaluated.
        dead: number of such latents. dense: latents firing on more than ``dense_threshold`` of the tokens;
            dense_fraction: their fraction.
        fve_zero_ablation: the FVE of predicting every token by 0, ``1 - sum ||x||^2 / sum ||x - mean(x)||^2``
            (the mean-ablation baseline is 0 by definition).
    """

    mse: float
    fve: float
    cosine: float
    l0: float
    dead_fraction: float
    n_tokens: int
    dead: int = 0
    dense: int = 0
    dense_fraction: float = 0.0
    dense_threshold: float = 0.1
    fve_zero_ablation: float = float("nan")

    def plot(self, ax=None):
        from modscope.figures import TRAINED, axes

        ax = axes(ax, figsize=(4.5, 3.0))
        ax.bar(["FVE", "cosine", "alive"], [self.fve, self.cosine, 1 - self.dead_fraction], color=TRAINED)
        ax.set_ylim(0, 1)
        ax.set_title(f"L0 = {self.l0:.1f} latents/token")
        return ax


def _from_sums(sq_err: float, total: float, sq_norm: float, cosine: float, l0: float, dead: int, dense: int,
               n_tokens: int, d_in: int, n_latents: int, dense_threshold: float) -> Reconstruction:
    """The Reconstruction of ``n_tokens`` tokens from its sums over them: squared error, squared deviation from
    the mean (``total``), squared norm, cosine and active latents."""
    def explained(sq: float) -> float:
        return float(1 - sq / total) if total > 0 else float("nan")

    return Reconstruction(
        mse=float(sq_err / n_tokens / d_in), fve=explained(sq_err), cosine=float(cosine / n_tokens),
        l0=float(l0 / n_tokens), dead_fraction=dead / n_latents, n_tokens=int(n_tokens), dead=dead, dense=dense,
        dense_fraction=dense / n_latents, dense_threshold=dense_threshold, fve_zero_ablation=explained(sq_norm),
    )


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray, codes: np.ndarray,
                           dense_threshold: float = 0.1) -> Reconstruction:
    """Reconstruction metrics from activations ``x``, reconstructions ``x_hat`` [tokens, d_in], codes [tokens, n].

    Sums are accumulated in float64.
    """
    x, x_hat = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(x_hat, axis=1)
    active = np.asarray(codes) > 0
    density = active.mean(axis=0)
    return _from_sums(((x - x_hat) ** 2).sum(axis=1).sum(), ((x - x.mean(axis=0)) ** 2).sum(), (x**2).sum(),
                      ((x * x_hat).sum(axis=1) / np.maximum(norms, 1e-30)).sum(), active.sum(axis=1).sum(),
                      int((density == 0).sum()), int((density > dense_threshold).sum()), len(x), x.shape[1],
                      active.shape[1], dense_threshold)


@torch.no_grad()
def evaluate_reconstruction(sae, x: np.ndarray | torch.Tensor, chunk: int = 2048) -> Reconstruction:
    """The metrics of ``reconstruction_metrics`` for ``x`` [tokens, d_in], accumulated chunk by chunk (float64)
    on the SAE's device, so that the dense codes [tokens, n_latents] are never held at once."""
    device = sae.W_dec.device
    x = x.detach().float() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
    n, d = x.shape
    sq_err = cosine = l0 = 0.0
    fired = torch.zeros(sae.n_latents, dtype=torch.long, device=device)
    total = float((x.double() - x.double().mean(dim=0)).pow(2).sum())
    sq_norm = float(x.double().pow(2).sum())
    for start in range(0, n, chunk):
        xs = x[start:start + chunk].to(device)
        z = sae.encode(xs)
        x_hat = sae.decode(z).double()
        xd = xs.double()
        sq_err += float((xd - x_hat).pow(2).sum())
        norms = (xd.norm(dim=1) * x_hat.norm(dim=1)).clamp_min(1e-30)
        cosine += float(((xd * x_hat).sum(dim=1) / norms).sum())
        active = z > 0
        l0 += float(active.sum())
        fired += active.sum(dim=0)
    threshold = float(getattr(sae.cfg, "dense_threshold", 0.1))
    return _from_sums(sq_err, total, sq_norm, cosine, l0, int((fired == 0).sum()), int((fired > threshold * n).sum()),
                      n, d, sae.n_latents, threshold)
