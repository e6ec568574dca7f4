"""Sublayer and path maps on the tiny models: they are the model's own computation, and their spectra behave."""

import numpy as np
import pytest
import torch
from torch.func import jacrev, vjp

from modscope import load_model
from modscope.errors import ModscopeError
from modscope.jacobian import jacobian_matrix, tokenwise_jacobians
from modscope.jacobian.parts import float64_copy, part_map, path_map
from modscope.jacobian.probes import block_spectrum, layer_ranks, path_spectrum

TEXT = "The quick brown fox jumps over the lazy dog; then it naps. " * 3
ARCHS = ["tiny-gpt2", "tiny-llama", "tiny-opt", "tiny-neo", "tiny-neox"]


@pytest.fixture(scope="module")
def models():
    return {name: load_model(name) for name in ARCHS}


def ids_of(model, tokens):
    return torch.tensor([model.tokenize([TEXT])[0][:tokens]])


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("part", ["attn", "mlp", "block"])
def test_part_map_reproduces_the_models_own_sublayer_output(models, name, part):
    result = block_spectrum(models[name], TEXT, layer=1, part=part, tokens=4, k=3)
    assert result.reproduction_error < 2e-6  # float64 part vs the float32 model's own hooked site
    pm = part_map(models[name], ids_of(models[name], 4), layer=1, part=part)
    with torch.no_grad():
        torch.testing.assert_close(pm.fn(pm.x), pm.target, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("name", "parallel"), [("tiny-gpt2", False), ("tiny-neox", True)])
def test_mlp_reads_the_stream_between_attention_and_mlp(models, name, parallel):
    model = models[name]
    assert model.adapter.parallel_residual == parallel
    pm = part_map(model, ids_of(model, 5), layer=0, part="mlp")
    seen = float64_copy(model).run_with_sites(ids_of(model, 5), ["resid_pre.0", "attn_out.0"])
    expected = seen["resid_pre.0"][0] + (0 if parallel else seen["attn_out.0"][0])
    torch.testing.assert_close(pm.x, expected, rtol=0, atol=1e-12)


def test_layernorm_mlp_part_has_one_null_direction_per_token_along_ones(models):
    model = models["tiny-gpt2"]
    result = block_spectrum(model, TEXT, layer=0, part="mlp", tokens=5)
    d = model.d_model
    assert result.spectrum.method == "tokenwise"
    assert result.spectrum.token_ranks.tolist() == [d - 1] * 5
    assert result.spectrum.rank == 5 * (d - 1)
    pm = part_map(model, ids_of(model, 5), layer=0, part="mlp")
    blocks = tokenwise_jacobians(pm.token_fn, pm.x)
    gain_along_ones = (blocks @ torch.ones(d, dtype=torch.float64)).norm(dim=1)
    assert float(gain_along_ones.max()) < result.spectrum.noise_floor


def test_rmsnorm_mlp_part_is_full_rank(models):
    result = block_spectrum(models["tiny-llama"], TEXT, layer=0, part="mlp", tokens=3)
    assert result.spectrum.rank == 3 * models["tiny-llama"].d_model


def test_mlp_tokenwise_spectrum_equals_dense_and_attention_lanczos_equals_exact(models):
    model = models["tiny-llama"]
    tokenwise = block_spectrum(model, TEXT, layer=1, part="mlp", tokens=3)
    dense = block_spectrum(model, TEXT, layer=1, part="mlp", tokens=3, method="exact")
    np.testing.assert_allclose(tokenwise.spectrum.singular_values, dense.spectrum.singular_values,
                               rtol=1e-10, atol=1e-14)
    assert tokenwise.spectrum.rank == dense.spectrum.rank == int(tokenwise.spectrum.token_ranks.sum())
    exact = block_spectrum(model, TEXT, layer=1, part="attn", tokens=3, method="exact")
    top = block_spectrum(model, TEXT, layer=1, part="attn", tokens=3, method="lanczos", k=8)
    np.testing.assert_allclose(top.spectrum.singular_values, exact.spectrum.singular_values[:8], rtol=1e-8)


def test_attention_jacobian_is_block_lower_triangular(models):
    model = models["tiny-gpt2"]
    pm = part_map(model, ids_of(model, 4), layer=0, part="attn")
    jac = jacobian_matrix(pm.fn, pm.x).reshape(4, model.d_model, 4, model.d_model)
    above = [jac[t, :, s].abs().max() for t in range(4) for s in range(t + 1, 4)]
    assert float(max(above)) == 0.0  # causal mask: output token t never depends on a later token s
    assert float(jac[3, :, 0].abs().max()) > 0


def test_residual_part_is_identity_plus_sublayer(models):
    model = models["tiny-llama"]
    plain = part_map(model, ids_of(model, 3), layer=0, part="mlp")
    with_identity = part_map(model, ids_of(model, 3), layer=0, part="mlp", residual=True)
    blocks = tokenwise_jacobians(plain.token_fn, plain.x)
    blocks_residual = tokenwise_jacobians(with_identity.token_fn, with_identity.x)
    torch.testing.assert_close(blocks_residual, blocks + torch.eye(model.d_model, dtype=torch.float64))


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gpt2", "tiny-neox"])
def test_path_map_with_frozen_prefix_matches_brute_force_jacobian(models, name):
    model = models[name]
    m64 = float64_copy(model)
    ids = ids_of(model, 9)
    src_pos, dst_pos = 4, 6
    pm = path_map(model, ids, src="resid_pre.0", dst="resid_post.1", src_pos=src_pos, dst_pos=dst_pos)
    layers = m64.adapter.layers

    def brute(v):  # the whole model on all tokens, with resid_pre.0[src_pos] swapped for v by a hook
        seen = {}

        def swap(_m, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            h = torch.cat([h[:, :src_pos], v[None, None], h[:, src_pos + 1:]], dim=1)
            return ((h, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": h})

        def keep(_m, _args, out):
            seen["h"] = out[0] if isinstance(out, tuple) else out

        handles = [layers[0].block.register_forward_pre_hook(swap, with_kwargs=True),
                   layers[1].block.register_forward_hook(keep)]
        try:
            m64.hf(input_ids=ids[:, : dst_pos + 1], use_cache=False)
        finally:
            for h in handles:
                h.remove()
        return seen["h"][0, dst_pos]

    torch.testing.assert_close(jacrev(pm.fn)(pm.x), jacrev(brute)(pm.x), rtol=1e-10, atol=1e-12)


def test_path_spectrum_reproduces_destination_and_counts_rank(models):
    result = path_spectrum(models["tiny-neox"], TEXT, src="embed", dst="final", src_pos=3, dst_pos=5)
    assert result.reproduction_error < 2e-6
    assert result.spectrum.n_in == result.spectrum.n_out == 64
    assert result.spectrum.method == "exact" and 0 < result.spectrum.rank <= 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"src_pos": 5, "dst_pos": 3}, "causal"), ({"src": "mlp_out.0"}, "not a residual-stream site"),
     ({"src": "resid_post.1", "dst": "resid_pre.1"}, "must come after"), ({"dst_pos": 999}, "longer text")],
)
def test_bad_paths_raise_modscope_error(models, kwargs, message):
    with pytest.raises(ModscopeError, match=message):
        path_spectrum(models["tiny-gpt2"], TEXT, **kwargs)


def test_layer_ranks_cover_every_layer_and_match_single_spectra(models):
    model = models["tiny-gpt2"]
    ranks = layer_ranks(model, TEXT, part="mlp", tokens=4)
    assert ranks.layers.tolist() == [0, 1] and ranks.ranks.tolist() == [4 * 63, 4 * 63]
    assert ranks.size == 4 * 64 and ranks.rank_kind == "exact"
    assert np.all((ranks.effective_rank > 1) & (ranks.effective_rank <= ranks.size))
    assert ranks.plot().get_ylabel() == "fraction of full rank"


def test_bad_parts_raise_modscope_error(models):
    with pytest.raises(ModscopeError, match="unknown part"):
        block_spectrum(models["tiny-gpt2"], TEXT, layer=0, part="head")
    with pytest.raises(ModscopeError, match="does not exist"):
        block_spectrum(models["tiny-gpt2"], TEXT, layer=7)
    with pytest.raises(ModscopeError, match="tokens"):
        block_spectrum(models["tiny-gpt2"], "hi", layer=0, tokens=50)
    with pytest.raises(ModscopeError, match="tokenwise"):
        block_spectrum(models["tiny-gpt2"], TEXT, layer=0, part="attn", method="tokenwise", tokens=2)


@pytest.mark.parametrize("name", ARCHS)
def test_part_and_path_maps_compute_in_float64_throughout(models, name):
    # a hidden float32 cast rounds cotangents, so the pullback stops being linear at the 1e-8 level
    model = models[name]
    pm = part_map(model, ids_of(model, 3), layer=1, part="block")
    path = path_map(model, ids_of(model, 5), src="resid_pre.0", dst="final", src_pos=1, dst_pos=3)
    g = torch.Generator().manual_seed(0)
    for fn, x in ((pm.fn, pm.x), (path.fn, path.x)):
        y, pullback = torch.func.vjp(fn, x)
        u1, u2 = (torch.randn(y.shape, generator=g, dtype=torch.float64) for _ in range(2))
        combined = pullback(0.3 * u1 + u2)[0]
        separate = 0.3 * pullback(u1)[0] + pullback(u2)[0]
        assert float((combined - separate).abs().max() / separate.abs().max()) < 1e-13


def test_float64_copy_is_frozen_so_path_jacobian_rows_carry_no_graph(models):
    model = models["tiny-llama"]
    assert not any(p.requires_grad for p in float64_copy(model).hf.parameters())
    pm = path_map(model, ids_of(model, 7), src="embed", dst="final", src_pos=3, dst_pos=5)
    y, pullback = vjp(pm.fn, pm.x)
    assert not pullback(torch.ones_like(y))[0].requires_grad  # no graph of the backward pass per product
    for chunk in (None, 1, 5):  # the same numbers as jacrev's, row for row
        assert torch.equal(jacobian_matrix(pm.fn, pm.x, chunk_size=chunk), jacrev(pm.fn, chunk_size=chunk)(pm.x))
