"""The site vocabulary (names, shapes, patterns) and the hooks that read sites out of a forward pass."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from modscope.errors import ModscopeError

if TYPE_CHECKING:
    from modscope.models.model import Model

LAYER_KINDS = ("resid_pre", "head_out", "attn_out", "mlp_act", "mlp_out", "resid_post")
SITE_DOC = {
    "embed": "token (+ position) embeddings entering block 0",
    "resid_pre": "residual stream entering block L",
    "attn_out": "attention block output before it is added to the residual",
    "head_out": "each head's contribution after its slice of W_O: [n_heads, d_model]",
    "mlp_act": "MLP hidden activation after the nonlinearity (input of the down projection)",
    "mlp_out": "MLP block output before it is added to the residual",
    "resid_post": "residual stream leaving block L",
    "final": "residual stream after the final norm",
    "logits": "unembedded logits",
}


class StopForward(Exception):
    """Raised by a hook once every requested site is read: the rest of the forward pass is not needed."""


def site_shapes(model: Model) -> dict[str, tuple[int, ...]]:
    """Every site of ``model`` in forward order, with its per-token shape."""
    d, shapes = model.d_model, {"embed": (model.d_model,)}
    # every layer site is (d,) but head_out (W_O's input is read before the attention returns) and mlp_act
    wide = {"head_out": (model.n_heads, d), "mlp_act": (model.d_mlp,)}
    for layer in range(model.n_layers):
        shapes.update({f"{kind}.{layer}": wide.get(kind, (d,)) for kind in LAYER_KINDS})
    shapes["final"] = (d,)
    shapes["logits"] = (model.vocab_size,)
    return shapes


def parse_site(name: str) -> tuple[str, int | None]:
    """``'resid_post.3'`` -> ``('resid_post', 3)``; ``'final'`` -> ``('final', None)``."""
    m = re.fullmatch(r"([a-z_]+)\.(-?\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


def select_sites(model: Model, spec: str | Sequence[str]) -> list[str]:
    """Expand a site spec (comma-separated names or globs, negative layers allowed) into site names.

    ``'resid_post.*'`` gives every layer's residual stream; ``'resid_post.-1'`` the last one. Unknown names raise a
    ModscopeError listing the valid ones.
    """
    shapes = site_shapes(model)
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p.strip()]
    if not parts:
        raise ModscopeError("no sites given: name at least one, e.g. 'resid_post.*' (see `modscope sites MODEL`)")
    chosen: list[str] = []
    for part in parts:
        kind, layer = parse_site(part)
        if layer is not None and layer < 0:
            part = f"{kind}.{model.n_layers + layer}"
        matches = [s for s in shapes if fnmatch.fnmatchcase(s, part)]
        if not matches:
            raise ModscopeError(f"unknown site '{part}' for {model.name}; valid: {valid_sites_summary(model)}")
        chosen += [m for m in matches if m not in chosen]
    order = list(shapes)
    return sorted(chosen, key=order.index)


def valid_sites_summary(model: Model) -> str:
    last = model.n_layers - 1
    return ", ".join(["embed", *[f"{k}.0-{last}" for k in LAYER_KINDS], "final", "logits"])


@contextmanager
def record_sites(
    model: Model,
    sites: Sequence[str],
    select: Callable[[torch.Tensor], torch.Tensor] | None = None,
    stop_early: bool = True,
):
    """Hook ``sites`` for the duration of the block; yields a dict site -> tensor filled by each forward pass.

    ``select`` maps each recorded tensor [batch, seq, ...] to what is kept (e.g. chosen positions), so that large
    sites such as logits are cut down inside the hook. With ``stop_early`` the forward pass stops once the last
    requested site is read: capturing early layers does not pay for the rest of the network.
    """
    ad, values, handles = model.adapter, {}, []
    keep = select or (lambda t: t)
    batch_shape: list[torch.Size] = []
    order = list(site_shapes(model))
    sites = sorted(sites, key=order.index)
    last_site = sites[-1] if sites else None

    def remember_batch_shape(_m, args, kwargs):
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
        batch_shape[:] = [ids.shape]

    def store(name: str, tensor: torch.Tensor) -> None:
        batch = batch_shape[0]
        if tensor.shape[: len(batch)] != batch:
            tensor = tensor.unflatten(0, batch)
        values[name] = keep(tensor.detach())
        if stop_early and name == last_site:
            raise StopForward

    def on_output(name):
        return lambda _m, _a, out: store(name, out[0] if isinstance(out, tuple) else out)

    def on_input(name):  # a block's hidden states come positionally or as ``hidden_states=``
        return lambda _m, args, kwargs: store(name, args[0] if args else kwargs["hidden_states"])

    # some blocks (OPT's MLP) flatten [batch, seq] into one axis; the batch shape lets us undo that
    handles.append(model.hf.register_forward_pre_hook(remember_batch_shape, with_kwargs=True))
    for name in sites:
        kind, layer = parse_site(name)
        where = ad.layers[0 if kind == "embed" else layer] if kind in ("embed", *LAYER_KINDS) else None
        if kind in ("embed", "resid_pre"):
            handles.append(where.block.register_forward_pre_hook(on_input(name), with_kwargs=True))
        elif kind in ("final", "logits"):
            handles.append((ad.final_norm if kind == "final" else ad.lm_head).register_forward_hook(on_output(name)))
        elif kind in ("resid_post", "attn_out", "mlp_out"):
            module = where.block if kind == "resid_post" else getattr(where, kind)
            handles.append(module.register_forward_hook(on_output(name)))
        elif kind == "mlp_act":
            handles.append(where.mlp_down.register_forward_pre_hook(lambda _m, args, name=name: store(name, args[0])))
        elif kind == "head_out":
            w_o = ad.w_o(layer)

            def per_head(_m, args, name=name, w_o=w_o):
                z = args[0].unflatten(-1, (ad.n_heads, ad.d_head))
                store(name, torch.einsum("...hd,hdm->...hm", z, w_o.to(z.dtype)))

            handles.append(where.attn_proj.register_forward_pre_hook(per_head))
        else:
            raise ModscopeError(f"unknown site '{name}'; valid: {valid_sites_summary(model)}")
    try:
        yield values
    finally:
        for h in handles:
            h.remove()


def run_with_sites(
    model: Model,
    input_ids: torch.Tensor,
    sites: Sequence[str],
    *,
    attention_mask: torch.Tensor | None = None,
    select: Callable[[torch.Tensor], torch.Tensor] | None = None,
    stop_early: bool = True,
) -> dict[str, torch.Tensor]:
    """One forward pass of ``model`` on ``input_ids`` [batch, seq]; returns site -> tensor [batch, seq, ...]."""
    with record_sites(model, sites, select=select, stop_early=stop_early) as values:
        try:
            model.hf(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except StopForward:
            pass
    return values
