"""The logit-space image of a site: its direct effect on the logits through the frozen final norm and W_U.

For a site whose output ``x`` is added to the residual stream (``resid_post.L``, ``mlp_out.L``; ``mlp_act.L``
first through the MLP's down projection, without its bias), the direct-path logit update is

    RMSNorm final norm:   u = (x / rms(r)) * gamma @ W_U,           rms(r) = sqrt(mean_j r_j^2 + eps)
    LayerNorm final norm: u = ((x - mean_j x_j) / std(r)) * gamma @ W_U,   std(r) = sqrt(var_j r_j + eps)

where ``r`` is the final norm's input in the full forward pass (its scale is *frozen*: treated as a constant,
as in direct logit attribution, Elhage et al. 2021) and the norm's bias is left out because ``u`` is an update,
not a point. This is the logit-space site of nostalgebraist's comment in the seed thread of issue 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from modscope.errors import ModscopeError
from modscope.models.adapters import linear_weight_in_out
from modscope.models.sites import parse_site

LOGIT_SPACE_KINDS = ("resid_post", "mlp_out", "mlp_act", "attn_out", "resid_pre")


def frozen_scale(resid_final: torch.Tensor, *, centre: bool, eps: float) -> torch.Tensor:
    """The final norm's divisor for each token: ``rms(r)`` (RMSNorm) or ``std(r)`` (LayerNorm), shape [..., 1]."""
    r = resid_final.double()
    if centre:
        r = r - r.mean(dim=-1, keepdim=True)
    return (r.pow(2).mean(dim=-1, keepdim=True) + eps).sqrt().to(resid_final.dtype)


@dataclass(frozen=True)
class LogitMap:
    """The linear map from a site's activations to its direct logit update, given the frozen scale.

    Attributes:
        site: the site it maps.
        write: [d_site, d_model] matrix taking the site into the residual stream (``None``: the identity).
        gamma: the final norm's gain [d_model].
        centre: whether the final norm subtracts the mean (LayerNorm) or not (RMSNorm).
        eps: the final norm's epsilon.
        W_U: unembedding [d_model, vocab].
    """

    site: str
    write: torch.Tensor | None
    gamma: torch.Tensor
    centre: bool
    eps: float
    W_U: torch.Tensor

    def to_resid(self, x: torch.Tensor) -> torch.Tensor:
        """The site's write into the residual stream [..., d_model] (mean removed for a LayerNorm)."""
        resid = x if self.write is None else x @ self.write
        return resid - resid.mean(dim=-1, keepdim=True) if self.centre else resid

    def logit_update(self, x: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``(to_resid(x) / scale) * gamma @ W_U`` [..., vocab]; ``scale`` [..., 1] from ``frozen_scale``."""
        return (self.to_resid(x) / scale * self.gamma) @ self.W_U

    def resid_final_site(self, n_layers: int) -> str:
        return f"resid_post.{n_layers - 1}"

    @torch.inference_mode()
    def site_logits_from_model(self, model, input_ids: torch.Tensor) -> torch.Tensor:
        """Run ``model`` on ``input_ids`` [batch, seq] and return the site's logit update [batch, seq, vocab]."""
        final_input = self.resid_final_site(model.n_layers)
        values = model.run_with_sites(input_ids, [self.site, final_input])
        scale = frozen_scale(values[final_input], centre=self.centre, eps=self.eps)
        return self.logit_update(values[self.site].to(self.W_U.dtype), scale)


def norm_kind(norm: torch.nn.Module) -> tuple[bool, float]:
    """``(centre, eps)`` of a final norm: LayerNorm centres, RMSNorm does not."""
    centre = isinstance(norm, torch.nn.LayerNorm) or "LayerNorm" in type(norm).__name__
    eps = getattr(norm, "eps", None) or getattr(norm, "variance_epsilon", None) or 1e-5
    return centre, float(eps)


def logit_map(model, site: str) -> LogitMap:
    """The LogitMap of ``site`` in ``model`` (weights read from the adapter, nothing copied beyond views).

    Raises:
        ModscopeError: for a site whose output does not add into the residual stream through one matrix.
    """
    kind, layer = parse_site(site)
    if kind not in LOGIT_SPACE_KINDS:
        raise ModscopeError(f"site '{site}' has no logit-space version; use one of "
                            f"{', '.join(k + '.L' for k in LOGIT_SPACE_KINDS)}")
    ad = model.adapter
    write = linear_weight_in_out(ad.layers[layer].mlp_down).detach() if kind == "mlp_act" else None
    centre, eps = norm_kind(ad.final_norm)
    gamma = getattr(ad.final_norm, "weight", None)
    gamma = torch.ones(model.d_model) if gamma is None else gamma.detach()
    return LogitMap(site, write, gamma, centre, eps, model.W_U.detach())
