"""Weight matrices of transformer MLP blocks and the analysis units of a network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.weights.models import block_mlp_weights, mlp_units, mlp_weights, model_mlp_blocks


def test_gated_block_in_edges_are_sum_of_absolute_gate_and_up(tiny_llama):
    mlp = tiny_llama.hf.model.layers[1].mlp
    w_in, w_out = block_mlp_weights(tiny_llama, 1, gate="sum")
    expected = mlp.gate_proj.weight.detach().abs().T + mlp.up_proj.weight.detach().abs().T
    np.testing.assert_allclose(w_in, expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(w_out, mlp.down_proj.weight.detach().T.numpy())
    up_only, _ = block_mlp_weights(tiny_llama, 1, gate="up")
    np.testing.assert_allclose(up_only, mlp.up_proj.weight.detach().T.numpy())


def test_gpt2_block_reads_conv1d_weights_as_in_out(tiny_gpt2):
    w_in, w_out = block_mlp_weights(tiny_gpt2, 0)
    mlp = tiny_gpt2.hf.transformer.h[0].mlp
    assert w_in.shape == (tiny_gpt2.d_model, tiny_gpt2.d_mlp) and w_out.shape == (tiny_gpt2.d_mlp, tiny_gpt2.d_model)
    np.testing.assert_allclose(w_in, mlp.c_fc.weight.detach().numpy())


def test_fold_norm_scales_rows_of_w_in_by_the_norm_gain(tiny_llama):
    norm = tiny_llama.hf.model.layers[0].post_attention_layernorm
    with torch.no_grad():
        original = norm.weight.clone()
        norm.weight.copy_(torch.linspace(0.5, 2.0, len(original)))
        try:
            plain, _ = block_mlp_weights(tiny_llama, 0)
            folded, _ = block_mlp_weights(tiny_llama, 0, fold_norm=True)
        finally:
            norm.weight.copy_(original)
    np.testing.assert_allclose(folded, plain * np.linspace(0.5, 2.0, len(original))[:, None], rtol=1e-5)


def test_every_block_is_a_unit_and_bad_requests_are_errors(tiny_gpt2):
    assert list(model_mlp_blocks(tiny_gpt2)) == ["mlp.0", "mlp.1"]
    with pytest.raises(ModscopeError, match="out of range"):
        block_mlp_weights(tiny_gpt2, 5)
    with pytest.raises(ModscopeError, match="gate combination"):
        block_mlp_weights(tiny_gpt2, 0, gate="product")


def test_mlp_units_are_whole_network_then_each_layer():
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    weights = mlp_weights(net)
    assert [w.shape for w in weights] == [(8, 6), (6, 3)]
    assert list(mlp_units(weights)) == ["all", "layer.0", "layer.1"]
    with pytest.raises(ModscopeError, match="convolutions"):
        mlp_weights(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2)))


@pytest.mark.slow
def test_smollm2_mlp_blocks_are_576_1536_576_graphs_with_finite_clusterability():
    from modscope import load_model
    from modscope.weights import clusterability

    model = load_model("smollm2-135m")
    weights = block_mlp_weights(model, 0)
    result = clusterability(weights, k=4, n_shuffles=3, seed=0)
    assert result.layer_sizes == (576, 1536, 576)
    assert 0 < result.ncut < 4 and np.isfinite(result.z) and result.null_sd > 0
    assert sum(result.cluster_sizes) + result.n_isolated == 576 + 1536 + 576
