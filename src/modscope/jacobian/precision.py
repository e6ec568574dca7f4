"""Float64 end to end: Hugging Face kernels that upcast to float32 (for half-precision safety) replaced in a copy."""

from __future__ import annotations

import types

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

ATTENTION = "modscope_float64"


def float64_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ · scaling + mask) v in the inputs' dtype (grouped key/value heads repeated to the query heads).

    Args:
        module: the attention module. query [B, H, T, D], key/value [B, H_kv, S, D]. attention_mask: additive
            [B, 1, T, S] or None. scaling: 1/√D when None.

    Returns:
        (output [B, T, H, D], weights [B, H, T, S]) as the eager kernel returns them.
    """
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    scores = query @ key.transpose(-1, -2) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = scores + attention_mask[..., : key.shape[-2]]
    weights = torch.softmax(scores, dim=-1)
    return (weights @ value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, float64_attention)
AttentionMaskInterface.register(ATTENTION, eager_mask)  # the additive float mask the eager kernel expects


def _gpt_neo_attn(self, query, key, value, attention_mask=None):
    """GPT-Neo's ``_attn`` without its float32 casts (same sliding-window mask, no scaling, as the original)."""
    scores = query @ key.transpose(-1, -2)
    query_length, key_length = query.size(-2), key.size(-2)
    causal = self.bias[:, :, key_length - query_length: key_length, :key_length]
    scores = torch.where(causal, scores, torch.tensor(torch.finfo(scores.dtype).min, dtype=scores.dtype))
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


def _rms_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """RMSNorm (Zhang & Sennrich 2019) w ⊙ x / √(mean(x²) + ε) in the input's dtype (Llama's casts to float32)."""
    eps = getattr(self, "variance_epsilon", None) or getattr(self, "eps", 1e-6)
    return self.weight * hidden_states * torch.rsqrt(hidden_states.pow(2).mean(-1, keepdim=True) + eps)


def keep_float64(hf: nn.Module) -> None:
    """Make ``hf`` (a float64 copy) compute in float64 throughout: Hugging Face's eager attention runs its softmax
    in float32, GPT-Neo casts queries and keys to float32 and Llama-style RMSNorm normalises in float32, each of
    which would leave a float32-sized error (and a cotangent rounding that is not linear) in every Jacobian."""
    neo = False
    for module in hf.modules():
        name = type(module).__name__
        if name == "GPTNeoSelfAttention":
            module._attn = types.MethodType(_gpt_neo_attn, module)
            neo = True
        elif name.endswith("RMSNorm") and hasattr(module, "weight"):
            module.forward = types.MethodType(_rms_norm, module)
    hf.set_attn_implementation("eager" if neo else ATTENTION)
