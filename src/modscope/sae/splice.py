"""Splice an SAE's reconstruction into the forward pass and measure the model's loss with it.

The hooks live here (``modscope.models`` only reads sites): ``resid_post.L`` replaces the block's output,
``mlp_out.L`` the MLP module's output, ``mlp_act.L`` the input of the down projection (a pre-hook);
a logit-space SAE replaces the site's direct logit update inside the logits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.models.sites import parse_site
from modscope.results import Result

SPLICE_KINDS = ("resid_post", "mlp_out", "mlp_act", "attn_out")


def _replace_output(output, replace):
    """A module output (a tensor, or a tuple whose first item is the hidden state) with that tensor replaced."""
    if isinstance(output, tuple):
        return (replace(output[0]), *output[1:])
    return replace(output)


@contextmanager
def splice_site(model, site: str, replace: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, the activations of ``site`` are replaced by ``replace(activations)`` in every forward.

    ``replace`` receives and returns a tensor [..., d_site] (the same shape).
    """
    kind, layer = parse_site(site)
    if kind not in SPLICE_KINDS or layer is None:
        kinds = ", ".join(k + ".L" for k in SPLICE_KINDS)
        raise ModscopeError(f"cannot splice into '{site}'; spliceable sites: {kinds}")
    modules = model.adapter.layers[layer]
    if kind == "mlp_act":
        handle = modules.mlp_down.register_forward_pre_hook(lambda _m, args: (replace(args[0]), *args[1:]))
    else:
        module = {"resid_post": modules.block, "mlp_out": modules.mlp_out, "attn_out": modules.attn_out}[kind]
        handle = module.register_forward_hook(lambda _m, _a, out: _replace_output(out, replace))
    with handle:
        yield


@contextmanager
def splice_logit_update(model, lmap, replace: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, the logits become ``logits - u + replace(u)`` for the site's direct logit update ``u``."""
    from modscope.models.sites import record_sites
    from modscope.sae.logit_map import frozen_scale

    final_input = lmap.resid_final_site(model.n_layers)
    with record_sites(model, [lmap.site, final_input], stop_early=False) as values:
        def adjust(_m, _a, logits):
            scale = frozen_scale(values[final_input], centre=lmap.centre, eps=lmap.eps)
            update = lmap.logit_update(values[lmap.site].to(lmap.W_U.dtype), scale)
            return logits + (replace(update) - update).to(logits.dtype)

        with model.adapter.lm_head.register_forward_hook(adjust):
            yield


@dataclass(frozen=True)
class SplicedLoss(Result):
    """Next-token loss with the SAE spliced in, against the clean, the zero-ablated and the mean-ablated model.

    Attributes:
        clean: mean cross-entropy of the unmodified model (nats/token; SAELens' ``ce_loss_without_sae``).
        spliced: with the site replaced by the SAE's reconstruction (``ce_loss_with_sae``).
        zero_ablated: with the site replaced by zeros (``ce_loss_with_ablation``); the null an SAE must beat.
        mean_ablated: with the site replaced by its mean over these tokens (a stronger null than zeros).
        loss_recovered: ``(zero_ablated - spliced) / (zero_ablated - clean)``, SAELens' ``ce_loss_score``;
            1 = as good as the clean model, 0 = no better than deleting the site.
        loss_recovered_mean: the same against mean ablation, ``(mean_ablated - spliced) / (mean_ablated - clean)``.
        delta: ``spliced - clean`` (nats/token).
        n_tokens: predicted tokens the means are over.
    """

    clean: float
    spliced: float
    zero_ablated: float
    loss_recovered: float
    delta: float
    n_tokens: int
    mean_ablated: float = float("nan")
    loss_recovered_mean: float = float("nan")

    def plot(self, ax=None):
        from modscope.figures import NULL, TRAINED, TWIN, axes

        ax = axes(ax, figsize=(4.5, 3.0))
        ax.bar(["clean", "SAE spliced", "mean-ablated", "zero-ablated"],
               [self.clean, self.spliced, self.mean_ablated, self.zero_ablated], color=[TRAINED, TWIN, NULL, NULL])
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.set_title(f"loss recovered {self.loss_recovered:.1%} (vs zero), {self.loss_recovered_mean:.1%} (vs mean)")
        return ax


def fraction_recovered(clean: float, spliced: float, zero_ablated: float) -> float:
    """``(ablated - spliced) / (ablated - clean)`` (nan when ablation does not change the loss); with zero
    ablation this is SAELens' ``ce_loss_score``."""
    gap = zero_ablated - clean
    return (zero_ablated - spliced) / gap if abs(gap) > 1e-12 else float("nan")


@torch.inference_mode()
def _mean_loss(model, windows: torch.Tensor, batch: int) -> float:
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        ids = windows[i:i + batch]
        n = ids.shape[0] * (ids.shape[1] - 1)
        total += float(model.hf(input_ids=ids, labels=ids, use_cache=False).loss) * n
        count += n
    return total / count


def spliced_loss(model, sae, windows: torch.Tensor | Sequence[Sequence[int]], *, batch: int = 8) -> SplicedLoss:
    """Clean, SAE-spliced, zero-ablated and mean-ablated loss of ``model`` on token ``windows`` [n, ctx].

    The mean used for mean ablation is the site's mean activation over the same windows (recorded during the
    clean pass), so it is the best constant replacement for these tokens.

    Args:
        model: the model the SAE was trained on (``sae.meta['site']`` names the site).
        sae: the trained SAE (``sae.meta['logit_space']`` selects the logit-space splice).
        windows: token ids, all the same length.
        batch: windows per forward pass.
    """
    from modscope.sae.logit_map import logit_map

    windows = torch.as_tensor(np.asarray(windows), dtype=torch.long, device=model_device(model))
    site = sae.meta.get("site")
    if site is None:
        raise ModscopeError("this SAE does not record its site (meta['site']); train it from a model or a store")

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        weight = next(sae.parameters(), None)  # the SAE may live on another device than the model
        return sae(x.float().to(weight.device if weight is not None else x.device)).to(device=x.device,
                                                                                      dtype=x.dtype)

    totals: dict[str, torch.Tensor | int] = {"sum": 0, "count": 0}

    def record_mean(x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().double().reshape(-1, x.shape[-1])
        totals["sum"] = totals["sum"] + flat.sum(dim=0)
        totals["count"] = int(totals["count"]) + len(flat)
        return x

    def mean(x: torch.Tensor) -> torch.Tensor:
        return (totals["sum"] / totals["count"]).to(device=x.device, dtype=x.dtype).expand_as(x)

    lmap = logit_map(model, site) if sae.meta.get("logit_space") else None

    def loss_with(replace: Callable[[torch.Tensor], torch.Tensor]) -> float:
        with splice_site(model, site, replace) if lmap is None else splice_logit_update(model, lmap, replace):
            return _mean_loss(model, windows, batch)

    # in this order: record_mean is the identity, a clean pass that also accumulates the site's mean
    clean, spliced, zero, mean_ablated = map(loss_with, (record_mean, reconstruct, torch.zeros_like, mean))
    return SplicedLoss(clean, spliced, zero, fraction_recovered(clean, spliced, zero), spliced - clean,
                       int(windows.shape[0] * (windows.shape[1] - 1)), mean_ablated,
                       fraction_recovered(clean, spliced, mean_ablated))


def model_device(model) -> torch.device:
    """The device of the model's weights (where token ids must go)."""
    return next(model.hf.parameters()).device
