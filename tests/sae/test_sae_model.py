"""Logit-space sites, feature logit weights, splicing and streaming against tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.sae import ModelSource, SAEConfig, make_sae, train
from modscope.sae.contexts import top_contexts
from modscope.sae.features import feature_logit_weights, feature_logits
from modscope.sae.logit_map import frozen_scale, logit_map
from modscope.sae.splice import spliced_loss

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 12, "Sparse autoencoders find features. " * 15,
         "def f(x):\n    return x + 1\n" * 14, "In 1999 the court held that the contract was void. " * 10]


def ids(model, n=4, ctx=32):
    return torch.tensor([seq[:ctx] for seq in model.tokenize(TEXTS[:n])])


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_logit_update_of_last_residual_reproduces_the_logits(fixture, request):
    """The last resid_post through its own frozen norm and W_U is the logits (minus the norm bias's image)."""
    model = request.getfixturevalue(fixture)
    x = ids(model)
    last = f"resid_post.{model.n_layers - 1}"
    values = model.run_with_sites(x, [last, "logits"], stop_early=False)
    update = logit_map(model, last).site_logits_from_model(model, x)
    bias = getattr(model.adapter.final_norm, "bias", None)
    offset = 0.0 if bias is None else bias.detach() @ model.W_U
    assert torch.allclose(update + offset, values["logits"], atol=1e-4)


def test_feature_logit_weights_equal_decoder_row_through_frozen_norm_and_unembedding_by_hand(tiny_gpt2):
    model = tiny_gpt2
    sae = make_sae(SAEConfig(d_in=model.d_mlp, expansion=1, architecture="topk", k=4), {"site": "mlp_act.1"})
    lmap = logit_map(model, "mlp_act.1")
    weights = feature_logit_weights(sae, lmap, scale=2.5, features=[3, 7])
    down = model.adapter.layers[1].mlp_down.weight.detach()  # GPT-2 Conv1D: [d_mlp, d_model]
    gamma, w_u = model.adapter.final_norm.weight.detach(), model.W_U.detach()
    for row, feature in zip(weights, [3, 7]):
        resid = sae.W_dec[feature].detach() @ down
        by_hand = ((resid - resid.mean()) / 2.5 * gamma) @ w_u  # LayerNorm: centre, frozen scale, gain
        assert torch.allclose(row, by_hand, atol=1e-5)


def test_rmsnorm_frozen_scale_is_the_root_mean_square():
    r = torch.tensor([[3.0, 4.0]])
    assert torch.allclose(frozen_scale(r, centre=False, eps=0.0), torch.tensor([[12.5**0.5]]))
    assert torch.allclose(frozen_scale(r, centre=True, eps=0.0), torch.tensor([[0.5]]))


def test_feature_logits_table_lists_top_tokens_in_order(tiny_llama):
    sae = make_sae(SAEConfig(d_in=tiny_llama.d_model, expansion=1, architecture="topk", k=4), {"site": "mlp_out.0"})
    result = feature_logits(tiny_llama, sae, features=[0, 5], top=3)
    assert result.promoted.shape == (2, 3) and np.all(np.diff(result.promoted, axis=1) <= 0)
    assert np.all(result.suppressed[:, 0] <= result.promoted[:, -1])
    assert len(result.to_frame()) == 2 and "promoted" in result.to_json()


def test_feature_logits_in_latent_blocks_equal_the_full_table(tiny_llama):
    sae = make_sae(SAEConfig(d_in=tiny_llama.d_model, expansion=1, architecture="topk", k=4), {"site": "mlp_out.0"})
    full = feature_logits(tiny_llama, sae, top=4, block=None)
    blocked = feature_logits(tiny_llama, sae, top=4, block=5)
    weights = feature_logit_weights(sae, logit_map(tiny_llama, "mlp_out.0")).float().numpy()
    assert full.promoted.shape == (sae.n_latents, 4)
    np.testing.assert_allclose(full.promoted[:, 0], weights.max(axis=1), rtol=1e-6)
    for name in ("promoted_ids", "suppressed_ids"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(full, name))
    np.testing.assert_allclose(blocked.promoted, full.promoted, rtol=1e-6)


class _Identity(torch.nn.Module):
    """A stand-in 'SAE' that reconstructs perfectly."""

    def __init__(self, site, logit_space=False):
        super().__init__()
        self.meta = {"site": site, "logit_space": logit_space}

    def forward(self, x):
        return x


@pytest.mark.parametrize("site", ["resid_post.0", "mlp_out.1", "mlp_act.0"])
def test_perfect_reconstruction_splices_to_the_clean_loss(tiny_llama, site):
    result = spliced_loss(tiny_llama, _Identity(site), ids(tiny_llama))
    assert result.spliced == pytest.approx(result.clean, abs=1e-5)
    assert result.loss_recovered == pytest.approx(1.0, abs=1e-4)
    assert result.zero_ablated != pytest.approx(result.clean, abs=1e-5)  # the hook does act


def test_logit_space_splice_of_perfect_reconstruction_gives_clean_loss(tiny_gpt2):
    result = spliced_loss(tiny_gpt2, _Identity("mlp_out.1", logit_space=True), ids(tiny_gpt2))
    assert result.spliced == pytest.approx(result.clean, abs=1e-5)


def test_splicing_an_unspliceable_site_is_a_modscope_error(tiny_llama):
    with pytest.raises(ModscopeError, match="splice"):
        spliced_loss(tiny_llama, _Identity("head_out.0"), ids(tiny_llama))


def test_streamed_model_source_trains_and_records_provenance(tiny_llama):
    source = ModelSource(tiny_llama, "mlp_out.1", TEXTS, ctx=16, heldout_tokens=64)
    cfg = SAEConfig(expansion=2, architecture="topk", k=4, batch_size=64, tokens=640, heldout_tokens=64,
                    checkpoints=2)
    sae = train(source, cfg)
    assert sae.meta["site"] == "mlp_out.1" and sae.meta["model"] == "tiny-llama"
    assert sae.d_in == tiny_llama.d_model and len(sae.log.checkpoint_counts) == 2
    held = source.heldout()
    direct = tiny_llama.run_with_sites(source.heldout_windows, ["mlp_out.1"])["mlp_out.1"]
    assert torch.allclose(held, direct.reshape(-1, tiny_llama.d_model))


def test_logit_space_source_yields_vocab_wide_activations(tiny_gpt2):
    source = ModelSource(tiny_gpt2, "resid_post.0", TEXTS, ctx=16, heldout_tokens=32, logit_space=True)
    assert source.d_in == tiny_gpt2.vocab_size and source.heldout().shape[1] == tiny_gpt2.vocab_size


def test_top_contexts_mark_the_top_token_and_are_sorted(tiny_llama):
    sae = make_sae(SAEConfig(d_in=tiny_llama.d_model, expansion=1, architecture="topk", k=8), {"site": "resid_post.1"})
    result = top_contexts(tiny_llama, sae, ids(tiny_llama), features=[0, 1, 2], n_top=3)
    for examples in result.examples:
        acts = [e["activation"] for e in examples]
        assert acts == sorted(acts, reverse=True)
        assert all("[[" in e["context"] for e in examples)


def test_mean_ablation_lies_between_clean_and_zero_and_scores_follow_saelens_units(tiny_llama):
    """Replacing a site by its mean over the tokens can only be compared to the other nulls, so check the identities:
    an identity splice recovers 1 against both nulls, and each score is (ablated - spliced) / (ablated - clean)."""
    result = spliced_loss(tiny_llama, _Identity("mlp_out.1"), ids(tiny_llama))
    assert result.mean_ablated != pytest.approx(result.clean, abs=1e-5)
    assert result.loss_recovered_mean == pytest.approx(1.0, abs=1e-4)

    class _Mean(torch.nn.Module):  # an 'SAE' that always outputs zero: spliced == zero-ablated
        meta = {"site": "mlp_out.1", "logit_space": False}

        def forward(self, x):
            return torch.zeros_like(x)

    zero = spliced_loss(tiny_llama, _Mean(), ids(tiny_llama))
    assert zero.loss_recovered == pytest.approx(0.0, abs=1e-6)
    assert zero.loss_recovered_mean == pytest.approx(
        (zero.mean_ablated - zero.zero_ablated) / (zero.mean_ablated - zero.clean), rel=1e-9)
