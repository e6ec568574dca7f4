"""The ReLU SAE with an L1 penalty (Bricken et al. 2023, "Towards Monosemanticity")."""

from __future__ import annotations

import torch

from modscope.sae.base import SAE, TrainStep, register


@register("relu")
class ReluSAE(SAE):
    """``z = relu((x - b_dec) W_enc^T + b_enc)``; loss ``||x - x_hat||^2 + l1 * sum_i z_i ||d_i||``.

    The L1 term is weighted by each decoder row's norm (Anthropic, "Update on dictionary learning", 2024), so
    that with ``decoder_norm='free'`` the penalty cannot be dodged by shrinking codes and growing rows.
    """

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense codes [..., n_latents] (non-negative)."""
        return torch.relu(self.pre_acts(x))

    def training_step(self, x: torch.Tensor, dead: torch.Tensor | None = None) -> TrainStep:
        """Reconstruction + L1 loss of ``x``; ``dead`` is unused (dead ReLU latents are resampled by the trainer,
        see ``modscope.sae.dead.resample_dead_latents``)."""
        z = self.encode(x)
        x_hat = self.decode(z)
        mse = (x_hat - x).pow(2).sum(dim=-1).mean()
        sparsity = (z * self.W_dec.norm(dim=1)).sum(dim=-1).mean()
        l0 = (z > 0).sum(dim=-1).float().mean()
        return TrainStep(mse + self.cfg.l1_coefficient * sparsity, mse, sparsity, l0, (z > 0).any(dim=0).detach())
