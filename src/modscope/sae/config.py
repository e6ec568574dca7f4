"""``SAEConfig``: everything that defines one sparse autoencoder and its training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from modscope.errors import ModscopeError

ARCHITECTURES = ("relu", "topk")
DECODER_NORMS = ("unit", "free")


class DictFields:
    """``to_dict`` / ``from_dict`` of a dataclass (``from_dict`` ignores keys that are not its fields)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class SAEConfig(DictFields):
    """The architecture and training settings of a sparse autoencoder.

    Attributes:
        d_in: width of the activations it encodes (``None``: taken from the source when training starts).
        expansion: latents per input dimension; ``n_latents = expansion * d_in``.
        architecture: ``"relu"`` (ReLU encoder, L1 penalty) or ``"topk"`` (keep the ``k`` largest pre-activations).
        k: active latents per token of a TopK SAE (ignored by ``relu``).
        l1_coefficient: weight of the L1 penalty ``sum_i z_i * ||d_i||`` of a ReLU SAE, in the units of the
            normalised input (each token scaled so that the mean norm is ``sqrt(d_in)``; ignored by ``topk``).
        lr: Adam learning rate (peak of the schedule).
        batch_size: tokens per optimiser step.
        tokens: training tokens in all (``steps = tokens // batch_size``).
        seed: seed of the initialisation and of the shuffling.
        decoder_norm: ``"unit"`` keeps every decoder row at unit norm after each step (gradient component along
            the row removed first); ``"free"`` lets rows grow, penalises ``z_i * ||d_i||`` and folds the norms
            into the encoder at the end (ReLU only: TopK selection is not invariant to that fold).
        normalize_input: divide activations by a scalar so that their mean norm is ``sqrt(d_in)`` while
            training; the scalar is folded back into the biases, so the saved SAE works in the site's units.
        lr_warmup_fraction: fraction of the steps over which the learning rate rises linearly from 0.
        lr_decay_fraction: fraction of the steps at the end over which it falls linearly to 0.
        checkpoints: number of density checkpoints (evenly spaced in tokens, the last at the end of training).
        heldout_tokens: held-out tokens (never trained on) on which density is measured at each checkpoint.
        ultra_rare_threshold: density below which a feature that fires at all counts as ultra-rare.
        d_sae: number of latents when it is not a multiple of ``d_in`` (SAELens' name; ``None``: ``expansion *
            d_in``).
        aux_k_coefficient: weight of the auxiliary-K loss of a TopK SAE (Gao et al. 2024, sec. A.2; their 1/32);
            0 switches it off.
        aux_k: dead latents used by that loss per token (``None``: ``d_in // 2``, as in Gao et al.).
        resample_dead: a ReLU SAE re-initialises its dead latents from badly reconstructed inputs (Bricken et al.
            2023, "Towards Monosemanticity", resampling) every ``dead_after_tokens`` until the learning-rate decay.
        dead_after_tokens: a latent that has not fired on this many consecutive training tokens is dead (for the
            aux-K loss and resampling; ``None``: ``min(10_000_000, tokens // 10, heldout_tokens)``, at least one
            batch; Gao et al. use 10M). Capped at ``heldout_tokens`` so that a latent the evaluation counts as dead
            (firing on none of the held-out tokens) is one the aux-K loss acts on: with a longer window, latents
            firing once in 20k-200k tokens were left alone in training yet silent on 20k held-out tokens.
        dense_threshold: density above which a latent counts as dense in the evaluation.
    """

    d_in: int | None = None
    expansion: int = 8
    architecture: str = "topk"
    k: int = 32
    l1_coefficient: float = 5.0
    lr: float = 4e-4
    batch_size: int = 4096
    tokens: int = 2_000_000
    seed: int = 0
    decoder_norm: str = "unit"
    normalize_input: bool = True
    lr_warmup_fraction: float = 0.05
    lr_decay_fraction: float = 0.2
    checkpoints: int = 10
    heldout_tokens: int = 16384
    ultra_rare_threshold: float = 1e-5
    d_sae: int | None = None
    aux_k_coefficient: float = 1 / 32
    aux_k: int | None = None
    resample_dead: bool = False
    dead_after_tokens: int | None = None
    dense_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            known = ", ".join(ARCHITECTURES)
            raise ModscopeError(f"unknown SAE architecture '{self.architecture}'; use one of {known}")
        if self.decoder_norm not in DECODER_NORMS:
            raise ModscopeError(f"decoder_norm must be one of {', '.join(DECODER_NORMS)}, got '{self.decoder_norm}'")
        if self.architecture == "topk" and self.decoder_norm != "unit":
            raise ModscopeError("a TopK SAE needs decoder_norm='unit' (its selection is not invariant to row norms)")
        for name in ("expansion", "batch_size", "tokens", "checkpoints", "heldout_tokens"):
            if getattr(self, name) <= 0:
                raise ModscopeError(f"SAEConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.d_in is not None and self.d_in <= 0:
            raise ModscopeError(f"SAEConfig.d_in must be > 0, got {self.d_in}")
        for name in ("d_sae", "aux_k", "dead_after_tokens"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ModscopeError(f"SAEConfig.{name} must be > 0 (or None for the default), got "
                                    f"{getattr(self, name)}")
        if self.aux_k_coefficient < 0 or not 0 < self.dense_threshold <= 1:
            raise ModscopeError("aux_k_coefficient must be >= 0 and dense_threshold in (0, 1], got "
                                f"{self.aux_k_coefficient} and {self.dense_threshold}")
        if self.lr <= 0 or self.l1_coefficient < 0:
            raise ModscopeError(f"lr must be > 0 and l1_coefficient >= 0, got {self.lr} and {self.l1_coefficient}")
        if self.architecture == "topk" and self.d_in is not None and not 0 < self.k <= self.n_latents:
            raise ModscopeError(f"k must be in 1..n_latents={self.n_latents}, got {self.k}")
        if not 0 <= self.lr_warmup_fraction + self.lr_decay_fraction <= 1:
            raise ModscopeError("lr_warmup_fraction + lr_decay_fraction must lie in [0, 1]")

    @property
    def n_latents(self) -> int:
        if self.d_in is None:
            raise ModscopeError("SAEConfig.d_in is not set yet: give d_in or let train() take it from the source")
        return self.d_sae if self.d_sae is not None else self.expansion * self.d_in

    @property
    def aux_k_latents(self) -> int:
        """Dead latents per token in the auxiliary-K loss (``aux_k``, else ``d_in // 2``, at least 1)."""
        return self.aux_k if self.aux_k is not None else max(1, (self.d_in or 2) // 2)

    @property
    def dead_window_tokens(self) -> int:
        """Consecutive training tokens without firing after which a latent counts as dead."""
        if self.dead_after_tokens is not None:
            return self.dead_after_tokens
        return max(self.batch_size, min(10_000_000, self.tokens // 10, self.heldout_tokens))

    @property
    def steps(self) -> int:
        return max(1, self.tokens // self.batch_size)

    def with_d_in(self, d_in: int) -> SAEConfig:
        """This config for activations of width ``d_in`` (a set ``d_in`` that differs is an error)."""
        if self.d_in is not None and self.d_in != d_in:
            raise ModscopeError(f"SAEConfig.d_in={self.d_in} but the activations have width {d_in}; drop d_in or "
                                "set it to the source's width")
        return replace(self, d_in=d_in)
