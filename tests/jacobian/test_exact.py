"""The whole exact spectrum of a causal map through its row space equals jacrev + a dense SVD, rank included."""

import numpy as np
import pytest
import torch

from modscope import load_model
from modscope.errors import ModscopeError
from modscope.jacobian import jacobian_matrix
from modscope.jacobian.exact import causal_jacobian, exact_spectrum, prefix_part_fn
from modscope.jacobian.parts import part_map
from modscope.jacobian.rank import EPS64


def planted(rank=3, tokens=6, d=10, hidden=14, seed=0):
    """Causal token mixing after a per-token map whose output weight has rank ``rank``: rank(J) = tokens·rank."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(d, hidden, generator=g, dtype=torch.float64) / d**0.5
    w2 = (torch.randn(hidden, rank, generator=g, dtype=torch.float64)
          @ torch.randn(rank, d, generator=g, dtype=torch.float64)) / hidden**0.5
    mix = torch.tril(torch.rand(tokens, tokens, generator=g, dtype=torch.float64)) + torch.eye(tokens)

    def fn(x):
        n = x.shape[0]
        return mix[:n, :n] @ torch.tanh(x @ w1) @ w2

    return fn, torch.randn(tokens, d, generator=g, dtype=torch.float64), mix


def dense(fn, x):
    jac = jacobian_matrix(fn, x).numpy()
    return jac, np.linalg.svd(jac, compute_uv=False)


def test_planted_rank_and_every_value_match_the_dense_svd():
    fn, x, _ = planted(rank=3, tokens=6)
    jac, want = dense(fn, x)
    np.testing.assert_allclose(causal_jacobian(fn, x), jac, atol=1e-14)
    got = exact_spectrum(fn, x)
    assert got.rank == 6 * 3 and got.rank_kind == "exact" and len(got.values) == 60
    floor = 60 * EPS64 * want[0]
    assert int((want > floor).sum()) == 18
    np.testing.assert_allclose(got.values[:18], want[:18], rtol=1e-12)
    assert np.all(got.values[18:] <= floor)
    assert np.isnan(got.rank_gap)  # σ_19 was never computed (outside the row space): no gap is claimed


def test_tiny_llama_attention_matches_jacrev_and_dense_svd():
    model = load_model("tiny-llama")
    ids = torch.tensor([model.tokenize(["the cat sat on the mat and the dog ran off"])[0][:7]])
    pm = part_map(model, ids, layer=1, part="attn")
    _, want = dense(pm.fn, pm.x)
    got = exact_spectrum(prefix_part_fn(model, ids, layer=1, part="attn"), pm.x)
    floor = len(want) * EPS64 * want[0]
    rank = int((want > floor).sum())
    assert got.rank == rank < len(want)  # a real rank deficit (value path narrower than the stream)
    np.testing.assert_allclose(got.values[:rank], want[:rank], rtol=1e-9)
    assert got.noise_floor == pytest.approx(floor, rel=1e-9)


def test_a_map_that_reads_later_tokens_is_refused():
    fn, x, mix = planted()

    def leaky(v):  # token t reads token t+1: not causal
        return torch.roll(fn(v), shifts=-1, dims=0)

    with pytest.raises(ModscopeError, match="not causal"):
        exact_spectrum(leaky, x)
    full = exact_spectrum(leaky, x, causal=False)  # jacrev + dense SVD still answers
    assert full.rank == 18


def test_new_directions_drops_what_the_basis_already_spans():
    """A candidate that lies in span(old) up to rounding (the 34-token failure: one old direction came back 19 times)
    is dropped; a genuinely new one is kept, orthonormal and orthogonal to the basis."""
    from modscope.jacobian.exact import new_directions

    rng = np.random.default_rng(0)
    old = np.linalg.qr(rng.standard_normal((50, 20)))[0]
    echo = old @ rng.standard_normal(20) + 1e-13 * rng.standard_normal(50)
    fresh = rng.standard_normal(50)
    candidates = np.linalg.qr(np.stack([echo, fresh], axis=1))[0].T  # orthonormal rows, as from an SVD
    got = new_directions(candidates, old)
    assert got.shape == (1, 50)
    np.testing.assert_allclose(got @ got.T, np.eye(1), atol=1e-14)
    assert np.abs(got @ old).max() < 1e-14
    residual = fresh - old @ (old.T @ fresh)
    assert abs(abs(got[0] @ residual) / np.linalg.norm(residual) - 1) < 1e-12  # the new part of `fresh`
    assert new_directions(candidates[:0], old).shape == (0, 50)


def test_a_basis_that_is_not_orthonormal_is_refused():
    from modscope.jacobian.exact import check_orthonormal

    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((40, 10)))[0]
    assert check_orthonormal(basis) == pytest.approx(1.0, abs=1e-12)
    repeated = np.hstack([basis, np.repeat(basis[:, :1], 18, axis=1)])  # one direction 19 times: ‖Q‖₂ = √19
    with pytest.raises(ModscopeError, match="not orthonormal"):
        check_orthonormal(repeated)
