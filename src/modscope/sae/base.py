"""The shared base of every SAE architecture: parameters, decode, the decoder-norm constraint, save/load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from modscope.errors import ModscopeError
from modscope.sae.config import SAEConfig
from modscope.sae.log import TrainingLog
from modscope.sae.saelens import is_saelens_dir, load_saelens, save_saelens

WEIGHTS_FILE = "sae.safetensors"
CONFIG_FILE = "sae.json"
REGISTRY: dict[str, type[SAE]] = {}


class TrainStep(NamedTuple):
    """One training forward pass: the loss to minimise and its parts (means over the batch)."""

    loss: torch.Tensor
    mse: torch.Tensor  # sum over d_in of the squared error, mean over tokens
    sparsity: torch.Tensor  # the L1 penalty before its coefficient (0 for TopK)
    l0: torch.Tensor  # active latents per token
    fired: torch.Tensor | None = None  # [n_latents] bool: latents active on at least one token of the batch
    aux: torch.Tensor | None = None  # auxiliary-K loss 1 - cos(e_hat, e) before its coefficient (TopK, dead)


def register(name: str):
    """Class decorator: make an architecture constructible by name (``make_sae``) and loadable from disk."""

    def add(cls: type[SAE]) -> type[SAE]:
        cls.architecture = name
        REGISTRY[name] = cls
        return cls

    return add


class SAE(nn.Module):
    """A sparse autoencoder ``x -> z = f((x - b_dec) W_enc^T + b_enc) -> x_hat = z W_dec + b_dec``.

    Attributes:
        W_enc: encoder directions [n_latents, d_in] (row i is read by latent i).
        b_enc: encoder bias [n_latents].
        W_dec: decoder directions [n_latents, d_in], unit-norm rows (row i is written by latent i).
        b_dec: decoder bias [d_in], also subtracted from the input before encoding.
        cfg: the SAEConfig it was built from. meta: provenance (model, site, input scale...), saved with it.
        log: the training log (loss curve, density history) when it came out of ``train`` or was loaded with one.

    Subclasses define ``encode`` (dense codes) and ``training_step`` (the loss of their architecture).
    """

    architecture: ClassVar[str] = ""

    def __init__(self, cfg: SAEConfig, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        n, d = cfg.n_latents, cfg.d_in
        gen = torch.Generator().manual_seed(cfg.seed)
        directions = torch.randn(n, d, generator=gen, dtype=torch.float32)
        directions /= directions.norm(dim=1, keepdim=True)
        self.cfg = cfg
        self.meta: dict[str, Any] = dict(meta or {})
        self.log: Any = None
        self.W_dec = nn.Parameter(directions.clone())
        # tied initialisation (Gao et al. 2024, sec. A.1): the encoder starts as the decoder's transpose
        self.W_enc = nn.Parameter(directions.clone())
        self.b_enc = nn.Parameter(torch.zeros(n))
        self.b_dec = nn.Parameter(torch.zeros(d))

    @property
    def d_in(self) -> int:
        return self.W_dec.shape[1]

    @property
    def n_latents(self) -> int:
        return self.W_dec.shape[0]

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``(x - b_dec) W_enc^T + b_enc`` [..., n_latents]."""
        return (x - self.b_dec) @ self.W_enc.T + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``z W_dec + b_dec`` [..., d_in] from codes [..., n_latents]."""
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def training_step(self, x: torch.Tensor, dead: torch.Tensor | None = None) -> TrainStep:  # pragma: no cover
        """The loss on batch ``x``; ``dead`` [n_latents] bool marks latents that have not fired for a while."""
        raise NotImplementedError

    @torch.no_grad()
    def remove_parallel_gradient(self) -> None:
        """Project out the component of each decoder row's gradient along the row (keeps ``||d_i|| = 1``)."""
        if self.cfg.decoder_norm == "unit" and self.W_dec.grad is not None:
            rows = self.W_dec / self.W_dec.norm(dim=1, keepdim=True)
            self.W_dec.grad -= (self.W_dec.grad * rows).sum(dim=1, keepdim=True) * rows

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (called after every step when ``decoder_norm='unit'``)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def fold_decoder_norms(self) -> None:
        """Move each decoder row's norm into the encoder: ``W_enc_i, b_enc_i *= ||d_i||``, ``d_i /= ||d_i||``.

        Exact for a ReLU SAE (``relu(c t) = c relu(t)`` for ``c > 0``), so ``forward`` is unchanged.
        """
        norms = self.W_dec.norm(dim=1).clamp_min(1e-12)
        self.W_enc *= norms[:, None]
        self.b_enc *= norms
        self.W_dec /= norms[:, None]

    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Make an SAE trained on ``x / scale`` act on ``x``: ``b_dec, b_enc *= scale`` (codes scale by ``scale``).

        With ``x' = x / scale``: ``z(x) = scale * f((x' - b_dec) W_enc^T + b_enc)`` for positively homogeneous
        ``f`` (ReLU, TopK of ReLU) and ``x_hat = z W_dec + scale * b_dec = scale * x_hat'``.
        """
        self.b_dec *= scale
        self.b_enc *= scale
        self.meta["input_scale"] = float(scale)

    def save(self, directory: str | Path, format: str = "modscope") -> Path:  # noqa: A002 - the natural name
        """Write the SAE into ``directory``.

        Args:
            directory: created if needed.
            format: ``"modscope"``: ``sae.safetensors`` (the four tensors) and ``sae.json`` (config, meta, training
                log); ``"saelens"``: ``sae_weights.safetensors`` + ``cfg.json`` as SAELens 6.x writes them
                (``SAE.load_from_disk(directory)`` reads it; see ``modscope.sae.saelens``).
        """
        from safetensors.torch import save_file

        if format == "saelens":
            return save_saelens(self, directory)
        if format != "modscope":
            raise ModscopeError(f"unknown SAE file format '{format}'; use 'modscope' or 'saelens'")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {name: p.detach().contiguous().cpu() for name, p in self.named_parameters()}
        save_file(tensors, str(directory / WEIGHTS_FILE))
        log = self.log.to_dict() if self.log is not None else None
        payload = {"architecture": self.architecture, "config": self.cfg.to_dict(), "meta": self.meta, "log": log}
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=1, default=float))
        return directory


def make_sae(cfg: SAEConfig, meta: dict[str, Any] | None = None) -> SAE:
    """A freshly initialised SAE of ``cfg.architecture``."""
    return REGISTRY[cfg.architecture](cfg, meta)


def load_sae(directory: str | Path) -> SAE:
    """Load an SAE written by ``SAE.save`` in either format, or by SAELens' ``save_model`` (``standard``/``topk``).

    The modscope format brings back weights, config, meta and, if present, the training log.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / CONFIG_FILE).exists() or not (directory / WEIGHTS_FILE).exists():
        if is_saelens_dir(directory):
            return load_saelens(directory)
        raise ModscopeError(f"{directory} holds no SAE ({CONFIG_FILE} + {WEIGHTS_FILE}, or SAELens' cfg.json + "
                            "sae_weights.safetensors); train one with `modscope sae train ... --out DIR`")
    payload = json.loads((directory / CONFIG_FILE).read_text())
    sae = make_sae(SAEConfig.from_dict(payload["config"]), payload.get("meta"))
    sae.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    if payload.get("log"):
        sae.log = TrainingLog.from_dict(payload["log"])
    return sae
