"""Rank honesty: top-k ranks are printed as lower bounds, token floors are per token, gaps and float32 counts are
reported, and a tight pass needs the trained rank below the twin's float32 band."""

import numpy as np
import pytest
import torch

from modscope.commands.jacobian import block_headline, path_headline, twin_comparisons
from modscope.jacobian import compare_ranks, singular_values, tokenwise_singular_values
from modscope.jacobian.figures import block_figures
from modscope.jacobian.probes import block_spectrum
from modscope.jacobian.rank import EPS32, count_above, gap_at, rank_text
from modscope.jacobian.results import BlockSpectrum, PathSpectrum
from modscope.jacobian.spectrum import spectrum_from_values

TEXT = "The quick brown fox jumps over the lazy dog. " * 4


def matrix_with_values(values, seed=0):
    """A square float64 matrix U diag(values) Vᵀ with random orthogonal U, V."""
    rng = np.random.default_rng(seed)
    n = len(values)
    u, _ = np.linalg.qr(rng.standard_normal((n, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return torch.from_numpy(u @ np.diag(values) @ v.T)


def full_rank_block(tokens=3, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, d, generator=g, dtype=torch.float64)
    mix = torch.tril(torch.rand(tokens, tokens, generator=g, dtype=torch.float64)) + torch.eye(tokens)
    return (lambda x: mix @ torch.tanh(x @ w)), torch.randn(tokens, d, generator=g, dtype=torch.float64) / 3


def test_top_k_rank_is_a_lower_bound_in_json_headline_legend_and_verdict():
    fn, x = full_rank_block()
    top = singular_values(fn, x, method="lanczos", k=5)
    assert top.rank == 5 and top.rank_is_lower_bound and top.rank_text == "≥ 5"
    payload = top.to_json()
    assert payload["rank_is_lower_bound"] is True and payload["rank_lower_bound"] == 5
    assert payload["rank_text"] == "≥ 5" and payload["rank_kind"] == "lower bound"
    assert payload["rank_gap"] is None  # σ_6 was never computed
    found = {"spectra": [BlockSpectrum("m", 1, "attn", False, 3, top, 0.0)], "ranks": [], "comparisons": []}
    nested = found["spectra"][0].to_json()["spectrum"]
    assert nested["rank_is_lower_bound"] is True and nested["rank_text"] == "≥ 5"
    lines, verdict = block_headline(found)
    assert "rank ≥ 5 of 18" in lines[0] and "lower bound" in lines[0]
    assert "loses" not in verdict and "lower bound" in verdict and "No rank deficiency" not in verdict
    legend = [t.get_text() for t in block_figures(found)["singular_values"].axes[0].get_legend().get_texts()]
    assert any("≥ 5/18" in text and "lower bound" in text for text in legend)
    path = PathSpectrum("m", "resid_pre.0", "resid_post.1", 0, 0, top, 0.0)
    _, path_verdict = path_headline({"paths": [path], "alignments": []})
    assert "at least 5 of 18" in path_verdict and "lower bound" in path_verdict


def test_exact_deficient_rank_states_lost_directions_with_gap_and_float32_count():
    weight = matrix_with_values([4.0, 2.0, 1.0, 1e-7, 0.0])
    exact = singular_values(lambda t: t @ weight.T, torch.ones(1, 5, dtype=torch.float64), method="exact")
    assert exact.rank == 4 and not exact.rank_is_lower_bound and exact.rank_text == "4"
    assert exact.float32_rank == 3  # 1e-7 is above the float64 floor 5·eps64·4 but below √5·eps32·4 ≈ 1.1e-6
    found = {"spectra": [BlockSpectrum("m", 0, "mlp", False, 1, exact, 0.0)], "ranks": [], "comparisons": []}
    lines, verdict = block_headline(found)
    assert "loses 1 direction;" in verdict and "1 directions" not in verdict
    assert "no twin measured, so not called a tight pass" in verdict
    assert "gap σ_r/σ_r+1" in lines[0] and "√d·eps32·σ₁, d = 5" in lines[0]


def test_float32_threshold_is_sqrt_d_eps32_of_sigma_max():
    spec = spectrum_from_values(np.array([1.0, 1e-5, 1e-8, 0.0]), "exact", 4, 4, width=4)
    assert spec.float32_floor == pytest.approx(2 * EPS32)
    assert (spec.rank, spec.float32_rank) == (3, 2)
    assert spec.float32_floor_rule == "√d·eps32·σ₁, d = 4"


def test_gap_at_rank_is_ratio_of_last_counted_to_first_uncounted():
    assert gap_at(np.array([3.0, 2.0, 1.0, 0.5]), 2) == pytest.approx(2.0)
    assert gap_at(np.array([3.0, 2.0, 0.0]), 2) == np.inf
    assert np.isnan(gap_at(np.array([3.0, 2.0]), 2)) and np.isnan(gap_at(np.array([3.0]), 0))
    weight = matrix_with_values([4.0, 2.0, 1.0, 0.01])
    spec = singular_values(lambda t: t @ weight.T, torch.ones(1, 4, dtype=torch.float64), method="exact", floor=0.1)
    assert spec.rank == 3 and spec.rank_gap == pytest.approx(100.0, rel=1e-10)
    assert count_above(np.array([3.0, 2.0]), 1.0, complete=False) == (2, "lower bound")
    assert count_above(np.array([3.0, 0.5]), 1.0, complete=False) == (1, "exact")
    assert rank_text(64, "lower bound") == "≥ 64" and rank_text(7, "estimate") == "≈ 7" and rank_text(7, "exact") == "7"


def test_token_rank_alone_equals_its_rank_inside_a_multi_token_run():
    # g(v) = M (v ⊙ v) / 2 has J_t = M diag(x_t): with x_t = s_t·1 the block is s_t·M, σ(M) = 1 … 1e-13, 0.
    # Under one floor over all tokens (16·eps·σ₁ with σ₁ = 1e4) the 1e-13 direction of the small token would drop.
    d = 8
    m = matrix_with_values([1.0] * (d - 2) + [1e-13, 0.0], seed=3)

    def g(v):
        return m @ (v * v) / 2

    x = torch.stack([torch.ones(d, dtype=torch.float64), 1e4 * torch.ones(d, dtype=torch.float64)])
    alone = tokenwise_singular_values(g, x[:1])
    together = tokenwise_singular_values(g, x)
    assert alone.rank == together.token_ranks[0] == d - 1
    assert together.token_ranks.tolist() == [d - 1, d - 1] and together.rank == 2 * (d - 1)
    assert together.token_floors[1] == pytest.approx(1e4 * together.token_floors[0])
    assert together.token_float32_ranks.tolist() == [d - 2, d - 2] and together.float32_rank == 2 * (d - 2)
    assert together.rank_gap > 100 and together.floor_rule.startswith("per token")


def test_tiny_model_mlp_token_rank_does_not_depend_on_the_other_tokens(tiny_gpt2):
    one = block_spectrum(tiny_gpt2, TEXT, layer=0, part="mlp", tokens=1)
    six = block_spectrum(tiny_gpt2, TEXT, layer=0, part="mlp", tokens=6)
    assert six.spectrum.token_ranks[0] == one.spectrum.rank == tiny_gpt2.d_model - 1  # LayerNorm: one null each
    assert one.spectrum.token_floors[0] == pytest.approx(six.spectrum.token_floors[0], rel=1e-9)


def bands(rank, float32_rank, n=10, kind="exact"):
    values = np.array([1.0] * float32_rank + [1e-9] * (rank - float32_rank) + [0.0] * (n - rank))
    return spectrum_from_values(values, "exact", n, n, complete=kind == "exact", width=n)


def test_tight_pass_only_when_trained_band_lies_below_the_twins():
    assert compare_ranks("x", bands(5, 5), bands(10, 10)).tight_pass
    structural = compare_ranks("x", bands(5, 4), bands(6, 5))
    assert not structural.tight_pass and "overlap" in structural.reason
    assert not compare_ranks("x", bands(10, 10), bands(10, 10)).tight_pass
    top = spectrum_from_values(np.ones(4), "lanczos", 10, 10, complete=False)
    bound = compare_ranks("x", top, bands(10, 10))
    assert not bound.tight_pass and not bound.exact


def test_block_verdict_calls_a_tight_pass_only_against_the_twin():
    spectra = [BlockSpectrum("trained", 1, "attn", False, 2, bands(5, 5), 0.0),
               BlockSpectrum("twin", 1, "attn", False, 2, bands(10, 10), 0.0)]
    found = {"spectra": spectra, "ranks": [], "comparisons": twin_comparisons(spectra)}
    assert len(found["comparisons"]) == 1
    _, verdict = block_headline(found)
    assert verdict.startswith("Tight pass at trained attn L1, 2 tok")
    spectra[1] = BlockSpectrum("twin", 1, "attn", False, 2, bands(6, 4), 0.0)
    found = {"spectra": spectra, "ranks": [], "comparisons": twin_comparisons(spectra)}
    _, verdict = block_headline(found)
    assert "not a tight pass" in verdict and "overlap within the float32 band" in verdict
    spectra[1] = BlockSpectrum("twin", 1, "attn", False, 2, bands(5, 5), 0.0)
    _, verdict = block_headline({"spectra": spectra, "ranks": [], "comparisons": twin_comparisons(spectra)})
    assert "same rank (5–5)" in verdict and "structural" in verdict and "loses 5 directions" in verdict
