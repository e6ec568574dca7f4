"""Sublayer and path maps of a model as tensor functions of the residual stream, in a float64 copy of the model."""

from __future__ import annotations

import copy
import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache

from modscope.errors import ModscopeError
from modscope.jacobian.precision import keep_float64
from modscope.models.adapters import adapter_for
from modscope.models.model import Model
from modscope.models.sites import StopForward, parse_site, record_sites

PARTS = ("attn", "mlp", "block")
_FLOAT64: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def float64_copy(model: Model) -> Model:
    """A float64 copy of ``model`` whose attention stays in float64 (eager maths, no fused kernels), cached.

    Its weights are frozen (``requires_grad=False``): Jacobians are taken with respect to the stream only, and
    ``torch.func`` runs every backward with ``create_graph=True``, so trainable weights would make each vjp record
    a graph of its own backward pass (all of its intermediates) that every Jacobian row keeps alive."""
    if model not in _FLOAT64:
        hf = copy.deepcopy(model.hf).to(torch.float64).eval().requires_grad_(False)
        keep_float64(hf)
        _FLOAT64[model] = Model(name=model.name, hf=hf, tokenizer=model.tokenizer, adapter=adapter_for(hf),
                                seed=model.seed, source=model.source)
    return _FLOAT64[model]


def cache_keyword(hf: torch.nn.Module) -> str:
    """The forward's cache argument and output field: ``cache`` in newer transformers, ``past_key_values`` (now
    deprecated) before."""
    return "cache" if "cache" in inspect.signature(hf.forward).parameters else "past_key_values"


def first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@dataclass(frozen=True)
class ModuleCall:
    """One recorded call of a module; calling it again swaps in new hidden states and keeps everything else
    (causal mask, rotary position embeddings, position ids) exactly as the real forward pass passed it."""

    module: torch.nn.Module
    args: tuple
    kwargs: dict

    def __call__(self, hidden: torch.Tensor, cache: Any = None) -> torch.Tensor:
        kwargs, args = dict(self.kwargs), self.args[1:]
        if cache is not None:  # the real cache grows on every call; the frozen prefix does not
            kwargs.update({k: cache for k, v in kwargs.items() if isinstance(v, Cache)})
            args = tuple(cache if isinstance(a, Cache) else a for a in args)
        if self.args:
            return first(self.module(hidden, *args, **kwargs))
        return first(self.module(**{**kwargs, "hidden_states": hidden}))


class FrozenPrefix:
    """A key/value cache of a fixed token prefix that is read but never grown: each call's keys and values are
    concatenated after the prefix's, so positions before the perturbed token cost nothing per Jacobian product."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]):
        self.keys, self.values = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        return (torch.cat([self.keys[layer_idx], key_states], dim=-2),
                torch.cat([self.values[layer_idx], value_states], dim=-2))


def record_calls(modules: dict[str, torch.nn.Module]):
    """Forward pre-hooks that keep each module's last (args, kwargs); returns (calls dict, handles)."""
    calls: dict[str, ModuleCall] = {}

    def hook(name):
        def keep(module, args, kwargs):
            calls[name] = ModuleCall(module, args, dict(kwargs))
        return keep

    handles = [m.register_forward_pre_hook(hook(name), with_kwargs=True) for name, m in modules.items()]
    return calls, handles


def hidden_of(call: ModuleCall) -> torch.Tensor:
    return call.args[0] if call.args else call.kwargs["hidden_states"]


@dataclass(frozen=True)
class PartMap:
    """A sublayer as a function of the stream entering it, at the real input.

    Attributes:
        fn: tokens [T, d] -> [T, d] (no residual unless ``residual``). token_fn: the same map on one token
            [d] -> [d] when the part acts token by token (mlp), else None.
        x: the real input [T, d] (float64). target: the model's own float64 output of the part [T, d].
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    token_fn: Callable[[torch.Tensor], torch.Tensor] | None
    x: torch.Tensor
    target: torch.Tensor


def mlp_module(model: Model, layer: int, calls: dict[str, ModuleCall]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The MLP after its norm: the recorded MLP module, or OPT's inline fc1 -> act -> fc2."""
    mods = model.adapter.layers[layer]
    if mods.mlp_out is not mods.mlp_down:
        return calls["mlp"]
    block = mods.block
    if not all(hasattr(block, a) for a in ("fc1", "fc2", "activation_fn")):
        raise ModscopeError(f"cannot isolate the MLP of {model.adapter.arch}; use part='block'")
    return lambda h: block.fc2(block.activation_fn(block.fc1(h)))


def part_map(model: Model, input_ids: torch.Tensor, *, layer: int, part: str, residual: bool = False) -> PartMap:
    """Build the map of one sublayer of ``model`` (float64 copy) at the input of a real forward pass on ``input_ids``.

    ``attn``: x ↦ Attn(LN_attn(x)) on ``resid_pre.L`` (with the recorded causal mask and position embeddings);
    ``mlp``: x ↦ MLP(LN_mlp(x)) on the stream the MLP's norm reads (``resid_pre.L + attn_out.L``; ``resid_pre.L``
    in GPT-NeoX parallel blocks); ``block``: x ↦ Block(x) − x on ``resid_pre.L``. ``residual`` adds x back.

    Args:
        model: any Model (a float64 eager copy is made once). input_ids: [1, T]. layer: block index.
        part: ``attn`` | ``mlp`` | ``block``. residual: include the identity path.

    Returns:
        A PartMap with the real input and the model's own output of the part.
    """
    if part not in PARTS:
        raise ModscopeError(f"unknown part '{part}'; use one of {', '.join(PARTS)}")
    if not -model.n_layers <= layer < model.n_layers:
        raise ModscopeError(f"layer {layer} does not exist; {model.name} has layers 0-{model.n_layers - 1}")
    layer %= model.n_layers
    m64 = float64_copy(model)
    mods = m64.adapter.layers[layer]
    watched = {"block": mods.block, "attn": mods.attn_out, "ln_mlp": mods.ln_mlp}
    if mods.mlp_out is not mods.mlp_down:
        watched["mlp"] = mods.mlp_out
    calls, handles = record_calls(watched)
    sites = [f"attn_out.{layer}", f"mlp_out.{layer}", f"resid_pre.{layer}", f"resid_post.{layer}"]
    try:
        with record_sites(m64, sites, stop_early=True) as seen, torch.no_grad():
            try:
                m64.hf(input_ids=input_ids, use_cache=False)
            except StopForward:  # the layers after this block are not needed
                pass
    finally:
        for h in handles:
            h.remove()
    ln_attn, ln_mlp = mods.ln_attn, mods.ln_mlp
    if part == "attn":
        attn = calls["attn"]
        x, target = seen[f"resid_pre.{layer}"][0], seen[f"attn_out.{layer}"][0]

        def core(t):
            return attn(ln_attn(t[None]))[0]
        token_core = None
    elif part == "mlp":
        mlp = mlp_module(m64, layer, calls)
        stream = hidden_of(calls["ln_mlp"]).detach()  # OPT flattens [batch, seq] into one axis here
        x, target = stream.reshape(-1, stream.shape[-1]), seen[f"mlp_out.{layer}"][0]

        def core(t):
            return mlp(ln_mlp(t[None]))[0]

        def token_core(v):
            return mlp(ln_mlp(v[None, None]))[0, 0]
    else:
        block = calls["block"]
        x = seen[f"resid_pre.{layer}"][0]
        target = seen[f"resid_post.{layer}"][0] - x

        def core(t):
            return block(t[None])[0] - t
        token_core = None
    if residual:
        return PartMap(lambda t: core(t) + t, (lambda v: token_core(v) + v) if token_core else None, x, target + x)
    return PartMap(core, token_core, x, target)


def stream_index(model: Model, site: str, role: str) -> int:
    """Position of a residual-stream site in the chain embed=resid_pre.0 → resid_post.0=resid_pre.1 → …;
    ``final`` (after the final norm) is n_layers + 1."""
    kind, layer = parse_site(site)
    if kind == "embed":
        return 0
    if kind == "final" and role == "dst":
        return model.n_layers + 1
    if kind in ("resid_pre", "resid_post") and layer is not None:
        layer = layer + model.n_layers if layer < 0 else layer
        if 0 <= layer < model.n_layers:
            return layer + (kind == "resid_post")
    allowed = "embed, resid_pre.L, resid_post.L" + (", final" if role == "dst" else "")
    raise ModscopeError(f"path {role} '{site}' is not a residual-stream site of {model.name}; use {allowed}")


@dataclass(frozen=True)
class PathMap:
    """The end-to-end map from one token's stream vector at ``src`` to one token's vector at ``dst``.

    Attributes:
        fn: [d] -> [d]. x: the real source vector [d]. target: the model's own float64 destination vector [d].
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    x: torch.Tensor
    target: torch.Tensor


def path_map(model: Model, input_ids: torch.Tensor, *, src: str, dst: str, src_pos: int, dst_pos: int) -> PathMap:
    """Build x_src[src_pos] ↦ x_dst[dst_pos] through the blocks between the two sites, all else held at the real
    forward pass. Tokens before ``src_pos`` only enter through their keys and values, which cannot depend on the
    perturbation (causal mask), so they are run once into a frozen cache and each product costs only the
    ``dst_pos − src_pos + 1`` tokens after it.

    Args:
        model: any Model. input_ids: [1, T] with T > dst_pos. src, dst: stream sites (src before dst).
        src_pos, dst_pos: token positions, src_pos ≤ dst_pos (a later token cannot affect an earlier one).

    Returns:
        A PathMap.
    """
    start, stop = stream_index(model, src, "src"), stream_index(model, dst, "dst")
    if stop <= start:
        raise ModscopeError(f"dst '{dst}' must come after src '{src}' in the forward pass")
    if not 0 <= src_pos <= dst_pos:
        raise ModscopeError(f"need 0 ≤ src_pos ≤ dst_pos (causal: later tokens cannot change earlier ones), "
                            f"got src_pos={src_pos}, dst_pos={dst_pos}")
    if input_ids.shape[1] <= dst_pos:
        raise ModscopeError(f"the text has {input_ids.shape[1]} tokens; dst_pos={dst_pos} needs more text")
    m64 = float64_copy(model)
    layers = m64.adapter.layers
    prefix, cache_key = None, cache_keyword(m64.hf)
    with torch.no_grad():
        if src_pos > 0:
            cache = m64.hf(input_ids=input_ids[:, :src_pos], use_cache=True)[cache_key]
            prefix = FrozenPrefix([c.keys for c in cache.layers], [c.values for c in cache.layers])
        calls, handles = record_calls({str(i): layers[i].block for i in range(start, min(stop, len(layers)))})
        src_site = "embed" if start == 0 else f"resid_pre.{start}" if start < len(layers) else None
        dst_site = "final" if stop > len(layers) else f"resid_post.{stop - 1}"
        try:
            with record_sites(m64, [s for s in (src_site, dst_site) if s], stop_early=False) as seen:
                m64.hf(input_ids=input_ids[:, src_pos: dst_pos + 1], use_cache=prefix is not None,
                       **{cache_key: cache if prefix else None})
        finally:
            for h in handles:
                h.remove()
    stream = seen[src_site]
    final_norm = m64.adapter.final_norm

    def fn(v: torch.Tensor) -> torch.Tensor:
        h = torch.cat([v[None, None].to(stream.dtype), stream[:, 1:]], dim=1)
        for i in range(start, min(stop, len(layers))):
            h = calls[str(i)](h, FrozenPrefix(prefix.keys, prefix.values) if prefix else None)
        if stop > len(layers):
            h = final_norm(h)
        return h[0, -1]

    return PathMap(fn, stream[0, 0], seen[dst_site][0, -1])
