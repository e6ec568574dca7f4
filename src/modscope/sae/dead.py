"""Dead latents during training: who has not fired for a while, and Anthropic-style resampling of them.

TopK SAEs revive dead latents through the auxiliary-K loss (``modscope.sae.topk``); ReLU SAEs, optionally,
through resampling (Bricken et al. 2023, "Towards Monosemanticity", "Neuron resampling"), implemented here.
"""

from __future__ import annotations

import torch

from modscope.sae.base import SAE

RESAMPLE_ENCODER_SCALE = 0.2  # new encoder rows get 0.2 x the mean norm of the live ones (Bricken et al. 2023)


class DeadLatentTracker:
    """Counts, for every latent, the training tokens since it last fired (on the SAE's device).

    A latent is dead when that count reaches ``window_tokens`` (it has fired on none of the last
    ``window_tokens`` training tokens). Counts start at 0, so no latent is dead before ``window_tokens``.
    """

    def __init__(self, n_latents: int, window_tokens: int, device: torch.device | str = "cpu") -> None:
        self.window_tokens = int(window_tokens)
        self.since_fired = torch.zeros(n_latents, dtype=torch.long, device=device)

    def update(self, fired: torch.Tensor, batch_tokens: int) -> None:
        """Record one batch of ``batch_tokens`` tokens on which the latents in ``fired`` [n_latents] fired."""
        self.since_fired += batch_tokens
        self.since_fired[fired] = 0

    def dead(self) -> torch.Tensor:
        """[n_latents] bool: latents silent for at least ``window_tokens`` training tokens."""
        return self.since_fired >= self.window_tokens

    def reset(self, latents: torch.Tensor) -> None:
        """Give resampled ``latents`` a fresh window."""
        self.since_fired[latents] = 0


@torch.no_grad()
def resample_dead_latents(sae: SAE, x: torch.Tensor, dead: torch.Tensor, optimiser: torch.optim.Optimizer,
                          generator: torch.Generator | None = None) -> int:
    """Re-initialise the ``dead`` latents of ``sae`` from inputs it reconstructs badly; returns how many.

    Bricken et al. (2023), "Neuron resampling": draw one input per dead latent with probability proportional to
    its squared reconstruction error ``||x - x_hat||^2``; set the decoder row to that input (minus ``b_dec``)
    normalised to unit norm, the encoder row to the same direction times 0.2 x the mean encoder-row norm of the
    live latents, the encoder bias to 0; and zero the Adam moments of those rows so that stale statistics do not
    throw them away again.

    Args:
        sae: the SAE being trained (its parameters are changed in place).
        x: a batch of (normalised) training inputs [batch, d_in] to draw from.
        dead: [n_latents] bool, the latents to resample.
        optimiser: the Adam optimiser over ``sae.parameters()`` (its per-row state is reset).
        generator: for the draw (on ``x``'s device).
    """
    latents = torch.nonzero(dead).flatten()
    if len(latents) == 0:
        return 0
    error = (sae(x) - x).pow(2).sum(dim=1)
    weights = error if float(error.sum()) > 0 else torch.ones_like(error)
    rows = torch.multinomial(weights, len(latents), replacement=len(latents) > len(x), generator=generator)
    directions = x[rows] - sae.b_dec
    directions /= directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    alive = ~dead
    enc_norm = float(sae.W_enc[alive].norm(dim=1).mean()) if bool(alive.any()) else 1.0
    sae.W_dec[latents] = directions
    sae.W_enc[latents] = directions * RESAMPLE_ENCODER_SCALE * enc_norm
    sae.b_enc[latents] = 0.0
    for param, index in ((sae.W_dec, latents), (sae.W_enc, latents), (sae.b_enc, latents)):
        state = optimiser.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][index] = 0.0
    return len(latents)
