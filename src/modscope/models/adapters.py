"""Architecture adapters: where each site of modscope's vocabulary lives inside a Hugging Face causal LM."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

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


# model_type -> (body, its block list, token embedding, final norm, and per block: ln_attn, attn_out, attn_proj,
# ln_mlp, mlp_out, mlp_down). OPT's MLP is not one module: fc1 -> act -> fc2 sit directly in the decoder layer, so
# fc2's output is mlp_out.
_LLAMA = ("model", "layers", "embed_tokens", "norm",
          "input_layernorm self_attn self_attn.o_proj post_attention_layernorm mlp mlp.down_proj")
LAYOUTS: dict[str, tuple[str, str, str, str, str]] = {
    "gpt2": ("transformer", "h", "wte", "ln_f", "ln_1 attn attn.c_proj ln_2 mlp mlp.c_proj"),
    "gpt_neo": ("transformer", "h", "wte", "ln_f", "ln_1 attn attn.attention.out_proj ln_2 mlp mlp.c_proj"),
    "opt": ("model.decoder", "layers", "embed_tokens", "final_layer_norm",
            "self_attn_layer_norm self_attn self_attn.out_proj final_layer_norm fc2 fc2"),
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "gpt_neox": ("gpt_neox", "layers", "embed_in", "final_layer_norm",
                 "input_layernorm attention attention.dense post_attention_layernorm mlp mlp.dense_4h_to_h"),
}


def adapter_for(hf: nn.Module) -> Adapter:
    """Pick the adapter for ``hf`` by its ``config.model_type``; an unknown layout gets a clear error."""
    cfg = hf.config
    model_type = getattr(cfg, "model_type", None)
    if model_type not in LAYOUTS:
        found = ", ".join(f"{name}: {type(m).__name__}" for name, m in list(hf.named_modules())[1:6])
        raise ModscopeError(
            f"no site adapter for architecture '{model_type}' ({type(hf).__name__}; modules found: {found}, ...); "
            f"supported: {', '.join(sorted(LAYOUTS))}"
        )
    if model_type == "opt" and not cfg.do_layer_norm_before:
        raise ModscopeError(
            "this OPT checkpoint normalises after the residual addition (do_layer_norm_before=False, e.g. "
            "opt-350m); modscope's site decomposition needs pre-norm blocks: use opt-125m or larger"
        )
    body_path, blocks, embed, norm, parts = LAYOUTS[model_type]
    body = attrgetter(body_path)(hf)
    layers = tuple(LayerModules(b, *attrgetter(*parts.split())(b)) for b in getattr(body, blocks))
    heads = cfg.num_attention_heads
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    lm_head = getattr(hf, "lm_head", None) or hf.embed_out  # older GPT-NeoX checkpoints call it embed_out
    return Adapter(model_type, getattr(body, embed), layers, getattr(body, norm), lm_head, heads, d_head,
                   parallel_residual=bool(getattr(cfg, "use_parallel_residual", False)))
