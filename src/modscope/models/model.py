"""``Model``: a Hugging Face causal LM, its tokenizer and its site adapter, with the numbers probes need."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modscope.models import sites as _sites
from modscope.models.adapters import Adapter

TOKENIZE_BLOCK = 64  # texts per tokenizer call


@dataclass(frozen=True, eq=False)
class Model:
    """A loaded causal LM in modscope's site vocabulary.

    Attributes:
        name: the name it was loaded by (``smollm2-135m``, ``random:smollm2-135m``, ``tiny-gpt2``, an HF id...).
        hf: the Hugging Face module (in eval mode).
        tokenizer: its tokenizer.
        adapter: where each site lives inside ``hf``.
        seed: the seed of a random-init model (0 for trained weights).
        source: where the weights came from, for provenance.
    """

    name: str
    hf: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    adapter: Adapter
    seed: int = 0
    source: str = ""

    @property
    def n_layers(self) -> int:
        return len(self.adapter.layers)

    @property
    def d_model(self) -> int:
        return self.W_E.shape[1]

    @property
    def n_heads(self) -> int:
        return self.adapter.n_heads

    @property
    def d_head(self) -> int:
        return self.adapter.d_head

    @property
    def d_mlp(self) -> int:
        return self.adapter.d_mlp

    @property
    def vocab_size(self) -> int:
        return self.adapter.lm_head.weight.shape[0]

    @property
    def n_ctx(self) -> int:
        cfg = self.hf.config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))

    @property
    def W_E(self) -> torch.Tensor:
        """Token embedding matrix [vocab, d_model]."""
        return self.adapter.embed_tokens.weight

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding matrix [d_model, vocab] (logits = final @ W_U)."""
        return self.adapter.lm_head.weight.T

    @property
    def tied_embeddings(self) -> bool:
        return self.adapter.lm_head.weight.data_ptr() == self.W_E.data_ptr()

    @property
    def dtype(self) -> torch.dtype:
        return self.W_E.dtype

    def sites(self) -> dict[str, tuple[int, ...]]:
        """Every site name in forward order with its per-token shape."""
        return _sites.site_shapes(self)

    def select_sites(self, spec: str | Sequence[str]) -> list[str]:
        """Expand ``'resid_post.*'``-style patterns into site names (see ``modscope.models.sites``)."""
        return _sites.select_sites(self, spec)

    def run_with_sites(self, input_ids: torch.Tensor, sites: Sequence[str], **kwargs) -> dict[str, torch.Tensor]:
        """One forward pass; returns site -> tensor [batch, seq, ...] for the requested sites."""
        return _sites.run_with_sites(self, input_ids, sites, **kwargs)

    def tokenize(self, texts: Sequence[str], *, max_tokens: int | None = None) -> list[list[int]]:
        """Token ids of each text (no special tokens added), truncated to ``max_tokens``.

        Texts are encoded in blocks and truncated by the tokenizer, so the tokenizer's per-token records (strings,
        offsets) are held for one block only: memory stays bounded by the ids kept, whatever the corpus size.
        """
        texts, ids = list(texts), []
        cut = {"truncation": True, "max_length": max_tokens} if max_tokens else {}
        for start in range(0, len(texts), TOKENIZE_BLOCK):
            block = self.tokenizer(texts[start: start + TOKENIZE_BLOCK], add_special_tokens=False, **cut)
            ids += [seq[:max_tokens] if max_tokens else seq for seq in block["input_ids"]]
        return ids

    @torch.inference_mode()
    def loss(self, text: str, *, max_tokens: int = 512) -> float:
        """Mean next-token cross-entropy (nats/token) on ``text``."""
        ids = torch.tensor([self.tokenize([text], max_tokens=max_tokens)[0]])
        return float(self.hf(input_ids=ids, labels=ids, use_cache=False).loss)

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the architecture and weights: stores made by another model are refused."""
        cfg = json.dumps({"name": self.name, "arch": self.adapter.arch, "layers": self.n_layers,
                          "d": self.d_model, "vocab": self.vocab_size}, sort_keys=True)
        probe = self.W_E[:4].detach().to(torch.float64).cpu().numpy().tobytes()
        last = self.adapter.layers[-1].mlp_down
        probe += next(last.parameters()).detach().flatten()[:64].to(torch.float64).cpu().numpy().tobytes()
        return hashlib.sha1(cfg.encode() + probe).hexdigest()[:16]

    def describe(self) -> dict:
        return {"name": self.name, "arch": self.adapter.arch, "n_layers": self.n_layers, "d_model": self.d_model,
                "n_heads": self.n_heads, "d_head": self.d_head, "d_mlp": self.d_mlp, "vocab_size": self.vocab_size,
                "tied_embeddings": self.tied_embeddings, "seed": self.seed, "source": self.source,
                "dtype": str(self.dtype).removeprefix("torch.")}
