"""The site vocabulary means the same thing on every architecture."""

import pytest
import torch

from modscope import ModscopeError, load_model
from modscope.models import TINY_MODELS

TEXT = "The committee approved the budget on Tuesday, and the new library opens in May."


@pytest.fixture(scope="module", params=TINY_MODELS)
def run(request):
    model = load_model(request.param)
    ids = torch.tensor([model.tokenize([TEXT])[0]])
    values = model.run_with_sites(ids, list(model.sites()), stop_early=False)
    with torch.no_grad():
        reference = model.hf(input_ids=ids, output_hidden_states=True)
    return model, ids, values, reference


def test_every_site_has_its_advertised_shape(run):
    model, ids, values, _ = run
    for site, shape in model.sites().items():
        assert tuple(values[site].shape) == (1, ids.shape[1], *shape), site


def test_resid_post_equals_hf_hidden_states(run):
    model, _, values, ref = run
    # HF's last hidden state is taken after the final norm, so it is compared with `final`
    for layer in range(model.n_layers - 1):
        torch.testing.assert_close(values[f"resid_post.{layer}"], ref.hidden_states[layer + 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(values["final"], ref.hidden_states[-1], rtol=0, atol=1e-6)
    torch.testing.assert_close(values["embed"], ref.hidden_states[0], rtol=0, atol=0)
    torch.testing.assert_close(values["logits"], ref.logits, rtol=0, atol=1e-6)


def test_residual_stream_is_the_sum_of_block_outputs(run):
    # sequential: post = pre + attn(pre) + mlp(pre + attn); parallel (GPT-NeoX): post = pre + attn(pre) + mlp(pre)
    model, _, v, _ = run
    for layer in range(model.n_layers):
        total = v[f"resid_pre.{layer}"] + v[f"attn_out.{layer}"] + v[f"mlp_out.{layer}"]
        torch.testing.assert_close(total, v[f"resid_post.{layer}"], rtol=0, atol=1e-5)
        if layer:
            torch.testing.assert_close(v[f"resid_pre.{layer}"], v[f"resid_post.{layer - 1}"], rtol=0, atol=0)


def test_heads_sum_to_attention_output(run):
    model, _, v, _ = run
    for layer in range(model.n_layers):
        bias = model.adapter.b_o(layer)
        summed = v[f"head_out.{layer}"].sum(-2) + (bias if bias is not None else 0)
        torch.testing.assert_close(summed, v[f"attn_out.{layer}"], rtol=0, atol=1e-5)


def test_mlp_act_through_down_projection_gives_mlp_out(run):
    model, _, v, _ = run
    down = model.adapter.layers[0].mlp_down
    with torch.no_grad():
        torch.testing.assert_close(down(v["mlp_act.0"]), v["mlp_out.0"], rtol=0, atol=1e-5)


def test_early_stop_returns_the_same_values(tiny_llama):
    ids = torch.tensor([tiny_llama.tokenize([TEXT])[0]])
    full = tiny_llama.run_with_sites(ids, ["resid_post.0"], stop_early=False)
    early = tiny_llama.run_with_sites(ids, ["resid_post.0"], stop_early=True)
    torch.testing.assert_close(full["resid_post.0"], early["resid_post.0"], rtol=0, atol=0)


def test_site_patterns_expand_in_forward_order(tiny_gpt2):
    assert tiny_gpt2.select_sites("resid_post.*") == ["resid_post.0", "resid_post.1"]
    assert tiny_gpt2.select_sites("logits, resid_pre.-1,embed") == ["embed", "resid_pre.1", "logits"]
    assert tiny_gpt2.select_sites(["mlp_act.1", "head_out.1"]) == ["head_out.1", "mlp_act.1"]


@pytest.mark.parametrize("spec", ["resid_post.7", "resid.0", "", "bogus"])
def test_unknown_site_names_the_valid_ones(tiny_gpt2, spec):
    with pytest.raises(ModscopeError, match="valid|no sites"):
        tiny_gpt2.select_sites(spec)
