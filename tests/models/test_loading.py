"""Loading: tiny models, random twins, offline failures with one clear line."""

import pytest
import torch
from torch import nn

from modscope import ModscopeError, load_model
from modscope.models import OFFLINE_ALTERNATIVES, adapter_for


def test_tiny_models_report_their_dimensions(tiny_llama):
    m = tiny_llama
    assert (m.n_layers, m.d_model, m.n_heads, m.d_head, m.d_mlp, m.vocab_size) == (2, 64, 4, 16, 128, 257)
    assert m.W_E.shape == (257, 64) and m.W_U.shape == (64, 257)
    assert m.tied_embeddings


def test_random_init_is_seeded_and_reproducible():
    a, b, c = load_model("tiny-gpt2", seed=1), load_model("tiny-gpt2", seed=1), load_model("tiny-gpt2", seed=2)
    assert torch.equal(a.W_E, b.W_E)
    assert not torch.equal(a.W_E, c.W_E)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_random_twin_shares_config_and_tokenizer_but_not_weights():
    base, twin = load_model("tiny-opt"), load_model("random:tiny-opt", seed=5)
    assert twin.name == "random:tiny-opt" and twin.sites() == base.sites()
    assert twin.tokenize(["abc"]) == base.tokenize(["abc"])
    assert not torch.equal(twin.W_E, base.W_E)


def test_twin_of_a_random_model_is_a_different_random_model():
    assert not torch.equal(load_model("random:tiny-gpt2").W_E, load_model("tiny-gpt2").W_E)


def test_float64_models_run_in_float64():
    m = load_model("tiny-llama", dtype=torch.float64)
    out = m.run_with_sites(torch.tensor([[1, 2, 3]]), ["resid_post.1"])
    assert out["resid_post.1"].dtype == torch.float64


def test_unreachable_hub_model_fails_with_one_line_naming_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModscopeError) as err:
        load_model("gpt2-this-model-is-not-cached")
    message = str(err.value)
    assert "\n" not in message and OFFLINE_ALTERNATIVES in message


def test_missing_local_directory_is_a_clear_error():
    with pytest.raises(ModscopeError, match="does not exist"):
        load_model("./no/such/model/dir")


def test_unknown_architecture_lists_the_modules_found():
    class Strange(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("Cfg", (), {"model_type": "strange"})()
            self.blocks = nn.ModuleList([nn.Linear(2, 2)])

    with pytest.raises(ModscopeError, match="no site adapter for architecture 'strange'.*blocks"):
        adapter_for(Strange())
