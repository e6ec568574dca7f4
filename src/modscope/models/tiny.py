"""Two-layer random models built from a config, and a byte-level tokenizer: for tests and quick experiments."""

from __future__ import annotations

from functools import lru_cache

from transformers import (
    GPT2Config,
    GPTNeoConfig,
    GPTNeoXConfig,
    LlamaConfig,
    OPTConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

EOS = "<|endoftext|>"
D_MODEL, N_HEADS, D_MLP, N_LAYERS, N_CTX = 64, 4, 128, 2, 1024


@lru_cache(maxsize=1)
def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A 257-token byte-level tokenizer (every byte is a token, plus EOS): no files, no hub."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab[EOS] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=EOS)


def tiny_config(name: str) -> PretrainedConfig:
    """The config of ``tiny-<arch>``: 2 layers, d_model 64, 4 heads, MLP 128, byte vocabulary."""
    vocab = len(byte_tokenizer())
    tokens = {"vocab_size": vocab, "bos_token_id": vocab - 1, "eos_token_id": vocab - 1}
    if name == "tiny-gpt2":
        return GPT2Config(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=N_HEADS, n_inner=D_MLP, n_positions=N_CTX, **tokens)
    if name == "tiny-llama":
        return LlamaConfig(num_hidden_layers=N_LAYERS, hidden_size=D_MODEL, num_attention_heads=N_HEADS,
                           num_key_value_heads=2, intermediate_size=D_MLP, max_position_embeddings=N_CTX,
                           tie_word_embeddings=True, pad_token_id=vocab - 1, **tokens)
    if name == "tiny-opt":
        return OPTConfig(num_hidden_layers=N_LAYERS, hidden_size=D_MODEL, num_attention_heads=N_HEADS,
                         ffn_dim=D_MLP, word_embed_proj_dim=D_MODEL, max_position_embeddings=N_CTX,
                         pad_token_id=vocab - 1, **tokens)
    if name == "tiny-neo":
        return GPTNeoConfig(num_layers=N_LAYERS, hidden_size=D_MODEL, num_heads=N_HEADS, intermediate_size=D_MLP,
                            attention_types=[[["global", "local"], 1]], window_size=256,
                            max_position_embeddings=N_CTX, **tokens)
    if name == "tiny-neox":
        return GPTNeoXConfig(num_hidden_layers=N_LAYERS, hidden_size=D_MODEL, num_attention_heads=N_HEADS,
                             intermediate_size=D_MLP, max_position_embeddings=N_CTX, rotary_pct=0.25,
                             use_parallel_residual=True, **tokens)
    raise KeyError(name)


TINY_MODELS = ("tiny-gpt2", "tiny-llama", "tiny-opt", "tiny-neo", "tiny-neox")
