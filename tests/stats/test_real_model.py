"""The seed's experiment on the real embedded model, small: trained vs random twin MI against the exact null."""

import pytest


@pytest.mark.slow
def test_smollm2_trained_vs_twin_mi_is_reported_against_its_null():
    from modscope.commands.common import cached_model
    from modscope.corpus import load
    from modscope.stats.model_mi import model_mi

    trained, twin = cached_model("smollm2-135m"), cached_model("random:smollm2-135m")
    result = model_mi(trained, twin, load("bundled"), "resid_post.0,resid_post.3", max_tokens=1200, curve_points=3)
    for r in result.results:
        assert r.n == 1200 and r.dx == 576
        # with 576 + 576 dimensions and 1200 tokens the null alone is worth well over 100 nats
        assert r.null_mean > 100
        assert r.mi_corrected == pytest.approx(r.mi - r.null_mean, rel=1e-9)
    assert len(result.curves[0].n) == 3
