"""The embedded SmolLM2: isolated sublayers and paths are the model's own computation, RMSNorm MLPs full rank."""

import pytest

from modscope import load_model
from modscope.jacobian.probes import block_spectrum, path_spectrum

TEXT = "The committee approved the budget after a long debate about schools, roads and the new hospital. " * 2


@pytest.mark.slow
def test_smollm2_layer1_parts_and_path_reproduce_the_model():
    model = load_model("smollm2-135m")
    mlp = block_spectrum(model, TEXT, layer=1, part="mlp", tokens=2)
    assert mlp.reproduction_error < 1e-5
    # RMSNorm has no exact null direction, but its radial one has gain ~eps/mean(x²) and can reach the float64 floor
    assert 2 * (model.d_model - 1) <= mlp.spectrum.rank <= 2 * model.d_model
    attn = block_spectrum(model, TEXT, layer=1, part="attn", tokens=2, k=4, method="lanczos")
    assert attn.reproduction_error < 1e-5 and attn.spectrum.rank_kind == "lower bound"
    assert attn.spectrum.rank_text == "≥ 4" and attn.spectrum.to_json()["rank_lower_bound"] == 4
    path = path_spectrum(model, TEXT, src="resid_pre.0", dst="resid_post.3", src_pos=4, dst_pos=6)
    assert path.reproduction_error < 1e-5
    assert 0 < path.spectrum.rank <= model.d_model
