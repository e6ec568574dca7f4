"""Architecture adapters: where each site of modscope's vocabulary lives inside a Hugging Face causal LM."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from modscope.errors import ModscopeError


@dataclass(frozen=True)
class LayerModules:
    """The modules of one transformer block that the site hooks attach to.

    ``attn_out`` and ``mlp_out`` are the modules whose *output* is the sublayer's contribution to the residual
    stream; ``attn_proj`` is W_O (its input is the concatenation of the heads); ``mlp_down`` is the MLP's output
    projection (its input is the hidden activation after the nonlinearity, ``mlp_act``).
    """

    block: nn.Module
    ln_attn: nn.Module
    attn_out: nn.Module
    attn_proj: nn.Module
    ln_mlp: nn.Module
    mlp_out: nn.Module
    mlp_down: nn.Module


@dataclass(frozen=True)
class Adapter:
    """Everything modscope needs to know about one architecture's module layout."""

    arch: str
    embed_tokens: nn.Module
    layers: tuple[LayerModules, ...]
    final_norm: nn.Module
    lm_head: nn.Module
    n_heads: int
    d_head: int
    parallel_residual: bool = False

    def w_o(self, layer: int) -> torch.Tensor:
        """W_O of ``layer`` as [n_heads, d_head, d_model] (head h writes ``z_h @ W_O[h]``)."""
        weight = linear_weight_in_out(self.layers[layer].attn_proj)
        return weight.reshape(self.n_heads, self.d_head, -1)

    def b_o(self, layer: int) -> torch.Tensor | None:
        return getattr(self.layers[layer].attn_proj, "bias", None)

    @property
    def d_mlp(self) -> int:
        return linear_weight_in_out(self.layers[0].mlp_down).shape[0]


def linear_weight_in_out(module: nn.Module) -> torch.Tensor:
    """The weight of a Linear (stored [out, in]) or GPT-2 Conv1D (stored [in, out]) as [in, out]."""
    if isinstance(module, nn.Linear):
        return module.weight.T
    if type(module).__name__ == "Conv1D":
        return module.weight
    raise ModscopeError(f"cannot read a weight matrix from {type(module).__name__}")


def _gpt2(hf: nn.Module) -> Adapter:
    body, cfg = hf.transformer, hf.config
    layers = tuple(
        LayerModules(b, b.ln_1, b.attn, b.attn.c_proj, b.ln_2, b.mlp, b.mlp.c_proj) for b in body.h
    )
    return Adapter("gpt2", body.wte, layers, body.ln_f, hf.lm_head, cfg.n_head, cfg.n_embd // cfg.n_head)


def _gpt_neo(hf: nn.Module) -> Adapter:
    body, cfg = hf.transformer, hf.config
    layers = tuple(
        LayerModules(b, b.ln_1, b.attn, b.attn.attention.out_proj, b.ln_2, b.mlp, b.mlp.c_proj) for b in body.h
    )
    d_head = cfg.hidden_size // cfg.num_heads
    return Adapter("gpt_neo", body.wte, layers, body.ln_f, hf.lm_head, cfg.num_heads, d_head)


def _opt(hf: nn.Module) -> Adapter:
    dec, cfg = hf.model.decoder, hf.config
    if not cfg.do_layer_norm_before:
        raise ModscopeError(
            "this OPT checkpoint normalises after the residual addition (do_layer_norm_before=False, e.g. "
            "opt-350m); modscope's site decomposition needs pre-norm blocks: use opt-125m or larger"
        )
    # OPT's MLP is not one module: fc1 -> act -> fc2 sit directly in the decoder layer, so fc2's output is mlp_out.
    layers = tuple(
        LayerModules(b, b.self_attn_layer_norm, b.self_attn, b.self_attn.out_proj, b.final_layer_norm, b.fc2, b.fc2)
        for b in dec.layers
    )
    heads = cfg.num_attention_heads
    return Adapter("opt", dec.embed_tokens, layers, dec.final_layer_norm, hf.lm_head, heads, cfg.hidden_size // heads)


def _llama(hf: nn.Module) -> Adapter:
    body, cfg = hf.model, hf.config
    layers = tuple(
        LayerModules(
            b, b.input_layernorm, b.self_attn, b.self_attn.o_proj, b.post_attention_layernorm, b.mlp, b.mlp.down_proj
        )
        for b in body.layers
    )
    heads = cfg.num_attention_heads
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return Adapter(cfg.model_type, body.embed_tokens, layers, body.norm, hf.lm_head, heads, d_head)


def _gpt_neox(hf: nn.Module) -> Adapter:
    body, cfg = hf.gpt_neox, hf.config
    layers = tuple(
        LayerModules(
            b, b.input_layernorm, b.attention, b.attention.dense, b.post_attention_layernorm, b.mlp,
            b.mlp.dense_4h_to_h,
        )
        for b in body.layers
    )
    heads = cfg.num_attention_heads
    return Adapter(
        "gpt_neox", body.embed_in, layers, body.final_layer_norm, _lm_head(hf), heads, cfg.hidden_size // heads,
        parallel_residual=bool(cfg.use_parallel_residual),
    )


def _lm_head(hf: nn.Module) -> nn.Module:
    return getattr(hf, "lm_head", None) or hf.embed_out  # older GPT-NeoX checkpoints call it embed_out


ADAPTERS: dict[str, Callable[[nn.Module], Adapter]] = {
    "gpt2": _gpt2,
    "gpt_neo": _gpt_neo,
    "opt": _opt,
    "llama": _llama,
    "mistral": _llama,
    "qwen2": _llama,
    "gpt_neox": _gpt_neox,
}


def adapter_for(hf: nn.Module) -> Adapter:
    """Pick the adapter for ``hf`` by its ``config.model_type``; an unknown layout gets a clear error."""
    model_type = getattr(hf.config, "model_type", None)
    if model_type not in ADAPTERS:
        found = ", ".join(f"{name}: {type(m).__name__}" for name, m in list(hf.named_modules())[1:6])
        raise ModscopeError(
            f"no site adapter for architecture '{model_type}' ({type(hf).__name__}; modules found: {found}, ...); "
            f"supported: {', '.join(sorted(ADAPTERS))}"
        )
    return ADAPTERS[model_type](hf)
