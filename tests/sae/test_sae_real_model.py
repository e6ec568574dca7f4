"""On the real embedded SmolLM2-135M: the logit-space map reproduces the logits; splicing is exact."""

from __future__ import annotations

import pytest
import torch

from modscope import load_model
from modscope.sae.logit_map import logit_map
from modscope.sae.splice import spliced_loss

TEXT = ("Sparse autoencoders decompose a model's activations into features. Each feature has a direction in the "
        "residual stream, and its effect on the logits can be read through the unembedding.")


@pytest.mark.slow
def test_smollm2_logit_space_map_and_identity_splice():
    model = load_model("smollm2-135m")
    ids = torch.tensor([model.tokenize([TEXT])[0][:32]])
    last = f"resid_post.{model.n_layers - 1}"
    logits = model.run_with_sites(ids, ["logits"], stop_early=False)["logits"]
    update = logit_map(model, last).site_logits_from_model(model, ids)
    assert torch.allclose(update, logits, atol=1e-3)  # RMSNorm, no bias: the direct path of the last layer is all

    class Identity(torch.nn.Module):
        meta = {"site": "mlp_act.3"}

        def forward(self, x):
            return x

    result = spliced_loss(model, Identity(), ids)
    assert result.spliced == pytest.approx(result.clean, abs=1e-5)
    assert result.zero_ablated > result.clean  # deleting a trained MLP's activations hurts
