"""The pure Jacobian core: operator products, exact/lanczos/slq agreement, floors and ranks."""

import numpy as np
import pytest
import torch
from torch.func import jacrev
from torch.profiler import ProfilerActivity, profile

from modscope.errors import ModscopeError
from modscope.jacobian import (
    jacobian_matrix,
    operator,
    singular_values,
    tokenwise_singular_values,
)


def random_block(seed=0, tokens=4, d=12, hidden=20):
    """A small nonlinear map that mixes tokens causally (attention-like) and channels (MLP-like)."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(d, hidden, generator=g, dtype=torch.float64) / d**0.5
    w2 = torch.randn(hidden, d, generator=g, dtype=torch.float64) / hidden**0.5
    mix = torch.tril(torch.rand(tokens, tokens, generator=g, dtype=torch.float64))

    def fn(x):
        return mix @ torch.tanh(x @ w1) @ w2

    return fn, torch.randn(tokens, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("forward", ["transpose", "jvp"])
def test_operator_products_match_dense_jacobian_and_are_adjoint(forward):
    fn, x = random_block()
    jac = jacobian_matrix(fn, x).numpy()
    op = operator(fn, x, forward=forward)
    rng = np.random.default_rng(0)
    v, u = rng.standard_normal(op.shape[1]), rng.standard_normal(op.shape[0])
    np.testing.assert_allclose(op.matvec(v), jac @ v, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(u), jac.T @ u, atol=1e-12)
    block = rng.standard_normal((op.shape[1], 3))
    np.testing.assert_allclose(op.matmat(block), jac @ block, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(rng.standard_normal((op.shape[0], 2))).shape, (op.shape[1], 2))


def test_linear_map_spectrum_equals_weight_svd():
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(7, 5, generator=g, dtype=torch.float64)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    expected = np.sort(np.tile(np.linalg.svd(weight.numpy(), compute_uv=False), 3))[::-1]
    exact = singular_values(lambda t: t @ weight.T, x, method="exact")
    assert (exact.n_out, exact.n_in) == (21, 15)
    np.testing.assert_allclose(exact.singular_values, expected, rtol=1e-12)
    assert exact.rank == 15 and exact.rank_kind == "exact"
    top = singular_values(lambda t: t @ weight.T, x, method="lanczos", k=4)
    np.testing.assert_allclose(top.singular_values, expected[:4], rtol=1e-10)


def test_exact_and_lanczos_top_k_agree_to_1e8_on_random_block():
    fn, x = random_block(seed=2, tokens=6, d=16)
    exact = singular_values(fn, x, method="exact")
    top = singular_values(fn, x, method="lanczos", k=10)
    np.testing.assert_allclose(top.singular_values, exact.singular_values[:10], rtol=1e-8)
    assert top.rank == 10 and top.rank_kind == "lower bound"


def test_slq_density_matches_exact_distribution_and_trace():
    fn, x = random_block(seed=3, tokens=5, d=16)
    exact = singular_values(fn, x, method="exact")
    slq = singular_values(fn, x, method="slq", probes=24, steps=40, seed=0)
    grid = np.quantile(exact.singular_values, np.linspace(0.05, 0.95, 19))
    exact_cdf = np.array([(exact.singular_values <= g).mean() for g in grid])
    slq_cdf = np.array([slq.density.weights[slq.density.nodes <= g].sum() for g in grid])
    assert np.abs(exact_cdf - slq_cdf).max() < 0.12  # Kolmogorov distance on the bulk
    mean_square = (slq.density.weights * slq.density.nodes**2).sum()
    assert mean_square == pytest.approx((exact.singular_values**2).mean(), rel=0.1)  # tr(JᵀJ)/n is unbiased
    # extreme Ritz values converge first
    assert slq.singular_values[0] == pytest.approx(exact.singular_values[0], rel=1e-8)
    assert slq.rank == exact.rank


def test_mlp_rank_at_t_tokens_equals_sum_of_token_ranks():
    g = torch.Generator().manual_seed(4)
    w_in = torch.randn(16, 5, generator=g, dtype=torch.float64)  # a 5-wide bottleneck: per-token rank 5
    w_out = torch.randn(5, 16, generator=g, dtype=torch.float64)

    def mlp(t):
        return torch.nn.functional.gelu(t @ w_in) @ w_out

    x = torch.randn(6, 16, generator=g, dtype=torch.float64)
    blockwise = tokenwise_singular_values(mlp, x)
    dense = singular_values(mlp, x, method="exact")
    np.testing.assert_allclose(blockwise.singular_values, dense.singular_values[: len(blockwise.singular_values)],
                               rtol=1e-10, atol=1e-13)
    assert blockwise.token_ranks.tolist() == [5] * 6
    assert blockwise.rank == dense.rank == int(blockwise.token_ranks.sum()) == 30


def test_layernorm_map_has_one_null_direction_per_token_and_rmsnorm_none():
    g = torch.Generator().manual_seed(5)
    d, tokens = 10, 4
    weight = torch.randn(d, d, generator=g, dtype=torch.float64)
    x = torch.randn(tokens, d, generator=g, dtype=torch.float64)

    def layernorm_map(t):
        return torch.nn.functional.layer_norm(t, (d,), eps=1e-5) @ weight

    ln = singular_values(layernorm_map, x, method="exact")
    assert ln.rank == tokens * (d - 1)
    # the floor separates them
    assert ln.singular_values[-tokens:].max() < ln.noise_floor < ln.singular_values[-tokens - 1]
    assert tokenwise_singular_values(layernorm_map, x).token_ranks.tolist() == [d - 1] * tokens
    rms = singular_values(lambda t: torch.nn.functional.rms_norm(t, (d,), eps=1e-6) @ weight, x, method="exact")
    assert rms.rank == tokens * d


def test_rmsnorm_radial_direction_has_gain_eps_over_r_cubed():
    # J = (I − x xᵀ/(d r²))/r with r² = mean(x²) + eps: gain 1/r across x, eps/r³ along x (not a null)
    eps, d = 1e-6, 8
    x = torch.linspace(-1.0, 2.0, 3 * d, dtype=torch.float64).reshape(3, d)
    spec = tokenwise_singular_values(lambda t: torch.nn.functional.rms_norm(t, (d,), eps=eps), x)
    r = (x.pow(2).mean(-1) + eps).sqrt().numpy()
    expected = np.sort(np.concatenate([np.repeat(1 / r, d - 1), eps / r**3]))[::-1]
    np.testing.assert_allclose(spec.singular_values, expected, rtol=1e-9)
    assert spec.rank == 3 * d


def test_user_floor_replaces_default_and_counts_against_it():
    x = torch.ones(1, 4, dtype=torch.float64)
    scale = torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    spec = singular_values(lambda t: t * scale, x, method="exact", floor=2.5)
    assert spec.noise_floor == 2.5 and spec.floor_rule == "user floor" and spec.rank == 2
    default = singular_values(lambda t: t * scale, x, method="exact")
    assert default.noise_floor == pytest.approx(4 * np.finfo(np.float64).eps * 4.0)


def test_auto_picks_exact_for_small_and_vectors_are_right_singular_vectors():
    fn, x = random_block(seed=6)
    spec = singular_values(fn, x, k=3, vectors=True)
    assert spec.method == "exact" and len(spec.singular_values) == 3
    jac = jacobian_matrix(fn, x).numpy()
    np.testing.assert_allclose(np.linalg.norm(jac @ spec.right_vectors.T, axis=0), spec.singular_values, rtol=1e-10)
    top = singular_values(fn, x, k=3, method="lanczos", vectors=True)
    overlap = np.abs(top.right_vectors @ spec.right_vectors.T).diagonal()
    np.testing.assert_allclose(overlap, 1.0, rtol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "svd"}, "unknown method"), ({"k": 0}, "k must be"), ({"method": "lanczos"}, "pass k")],
)
def test_bad_requests_raise_modscope_error(kwargs, message):
    fn, x = random_block()
    with pytest.raises(ModscopeError, match=message):
        singular_values(fn, x, **kwargs)


def test_spectrum_json_and_plot():
    fn, x = random_block()
    spec = singular_values(fn, x, method="slq", probes=4, steps=10)
    payload = spec.to_json()
    assert payload["method"] == "slq" and "right_vectors" not in payload
    assert spec.plot().get_yscale() == "log"


def test_subspace_alignment_of_same_and_orthogonal_subspaces():
    from modscope.jacobian.compare import subspace_alignment

    covariance = np.diag([5.0, 4.0, 3.0, 0.2, 0.1, 0.05])
    same = subspace_alignment(np.eye(6)[:2], np.array([2.0, 1.0]), covariance)
    np.testing.assert_allclose(same.cosines, [1.0, 1.0])
    assert same.mean_cos2 == pytest.approx(1.0) and same.null_mean_cos2 == pytest.approx(2 / 6)
    orthogonal = subspace_alignment(np.eye(6)[3:5], np.array([2.0, 1.0]), covariance)
    np.testing.assert_allclose(orthogonal.angles_deg, [90.0, 90.0])
    assert orthogonal.z < 0 < same.z
    with pytest.raises(ModscopeError, match="covariance"):
        subspace_alignment(np.eye(6)[:2], np.ones(2), np.eye(5))


def peak_live_bytes(run):
    """The peak of CPU memory allocated and not yet freed while ``run()`` runs (torch profiler's allocations)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("chunk_size", [1, 4, None])
def test_dense_jacobian_of_trainable_module_equals_jacrev_and_keeps_no_graph_per_row(chunk_size):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4096), torch.nn.Tanh(), torch.nn.Linear(4096, 64)).double()
    x = torch.randn(8, dtype=torch.float64)
    peaks = []
    for n_out in (8, 64):
        def fn(v, n_out=n_out):
            return net(v)[:n_out]  # weights require grad: every vjp records its own backward as a graph

        jac = jacobian_matrix(fn, x, chunk_size=chunk_size)
        assert torch.equal(jac, jacrev(fn, chunk_size=chunk_size)(x)) and not jac.requires_grad
        peaks.append(peak_live_bytes(lambda fn=fn: jacobian_matrix(fn, x, chunk_size=chunk_size)))
    if chunk_size is not None:  # jacrev keeps each chunk's backward graph to the end: ~8x the peak here
        assert peaks[1] < 1.5 * peaks[0]
