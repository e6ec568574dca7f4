"""``TrainingLog``: the loss curve and the per-checkpoint firing counts of one SAE training run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modscope.results import Result
from modscope.sae.config import DictFields
from modscope.sae.density import DensityHistory, density_history


@dataclass(frozen=True)
class TrainingLog(Result, DictFields):
    """What ``train`` records while it runs (it appends to the lists, then sets the wall time once).

    Attributes:
        steps / tokens / loss / mse / l0: the loss curve, one entry per logged step (``mse`` summed over d_in,
            in the normalised training units; ``l0`` active latents per token).
        dead: latents that have fired on none of the last ``cfg.dead_window_tokens`` training tokens, per logged
            step (the set the aux-K loss / resampling acts on; 0 until one window has passed).
        aux_loss: the auxiliary-K loss (before its coefficient) per logged step; 0 when no latent is dead.
        resampled: ``[step, latents resampled]`` for every resampling of a ReLU SAE.
        checkpoint_tokens: training tokens consumed at each density checkpoint.
        checkpoint_counts: held-out tokens on which each latent fired, per checkpoint [n_checkpoints][n_latents].
        checkpoint_fve: fraction of held-out variance explained at each checkpoint.
        n_heldout: held-out tokens per checkpoint. threshold: the ultra-rare density threshold.
        seconds: wall time of the training loop; tokens_per_second: its throughput.
    """

    steps: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)
    l0: list[float] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)
    aux_loss: list[float] = field(default_factory=list)
    resampled: list[list[int]] = field(default_factory=list)
    checkpoint_tokens: list[int] = field(default_factory=list)
    checkpoint_counts: list[list[int]] = field(default_factory=list)
    checkpoint_fve: list[float] = field(default_factory=list)
    n_heldout: int = 0
    threshold: float = 1e-5
    seconds: float = 0.0
    tokens_per_second: float = 0.0

    _frame_columns = ("steps", "tokens", "loss", "mse", "l0", "dead", "aux_loss")

    def density(self, *, window: int = 5) -> DensityHistory:
        """The density history of this run (see ``modscope.sae.density.density_history``)."""
        return density_history(np.array(self.checkpoint_counts), self.n_heldout, np.array(self.checkpoint_tokens),
                               threshold=self.threshold, window=window)

    def plot(self, ax=None):
        """The training loss against training tokens (log scale)."""
        from modscope.figures import axes, label

        ax = axes(ax)
        ax.plot(self.tokens, self.loss)
        ax.set_yscale("log")
        label(ax, x="training tokens", y="loss")
        return ax
