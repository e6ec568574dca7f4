"""End-to-end runs behind the CLI and the demo: train on a model's site and write the page; inspect a saved SAE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modscope.errors import ModscopeError
from modscope.sae.base import SAE, load_sae
from modscope.sae.config import SAEConfig
from modscope.sae.page import SAEReport, build_report, write_report
from modscope.sae.sources import ModelSource, StoreSource, token_windows
from modscope.sae.splice import model_device
from modscope.sae.trainer import train

IN_MEMORY_LIMIT_BYTES = 2 << 30
REPORT_WINDOWS = 24


def train_on_model(model, site: str, texts: list[str], cfg: SAEConfig, *, ctx: int = 128,
                   logit_space: bool = False, stream: bool | None = None, progress=None,
                   device: str | torch.device = "auto") -> tuple[SAE, torch.Tensor]:
    """Train an SAE on ``site`` of ``model`` over token windows of ``texts``; returns it and held-out windows.

    ``stream=None`` keeps the first pass in memory when the activations fit in ``IN_MEMORY_LIMIT_BYTES``, and
    streams (one forward pass per training token) otherwise.
    """
    source = ModelSource(model, site, texts, ctx=ctx, heldout_tokens=cfg.heldout_tokens, logit_space=logit_space)
    if stream is None:
        stream = source.windows.numel() * source.d_in * 4 > IN_MEMORY_LIMIT_BYTES
    source.keep_in_memory = not stream
    sae = train(source, cfg, progress=progress, device=device)
    return sae, source.heldout_windows[:REPORT_WINDOWS]


def train_on_store(store, site: str, cfg: SAEConfig, *, progress=None,
                   device: str | torch.device = "auto") -> tuple[SAE, torch.Tensor]:
    """Train an SAE on one site of a capture store (read in chunks, never whole); returns it and the held-out
    activations (the store's last rows, never trained on)."""
    source = StoreSource(store, site, heldout_tokens=cfg.heldout_tokens)
    return train(source, cfg, progress=progress, device=device), source.heldout()


def report_for(sae: SAE, model=None, windows: torch.Tensor | None = None, *, heldout: torch.Tensor | None = None,
               n_features: int = 12) -> SAEReport:
    """The page's results for ``sae`` (the model-dependent parts need ``model`` and token ``windows``;
    ``heldout`` activations, if given, are used for the reconstruction metrics)."""
    if model is not None:  # the feature tables read the decoder through the model's unembedding, on its device
        if sae.meta.get("fingerprint") not in (None, model.fingerprint):
            raise ModscopeError(f"this SAE was trained on another model ({sae.meta.get('model')}); inspect it with "
                                "that model (--model)")
        sae = sae.to(model_device(model))
    return build_report(sae, model, windows, heldout, n_features=n_features)


def inspect_saved(directory: str | Path, model=None, texts: list[str] | None = None, *, ctx: int = 128,
                  n_features: int = 12, out: str | Path | None = None, settings: dict[str, Any] | None = None,
                  ) -> SAEReport:
    """Load the SAE in ``directory``, rebuild its report (on the last windows of ``texts``) and write the page."""
    sae = load_sae(directory)
    windows = token_windows(model, texts, ctx)[-REPORT_WINDOWS:] if model is not None and texts else None
    report = report_for(sae, model, windows, n_features=n_features)
    write_report(out or directory, report, settings)
    return report
