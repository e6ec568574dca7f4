"""Dead latents: the window tracker, the auxiliary-K loss (Gao et al. 2024) and ReLU resampling (Bricken 2023)."""

from __future__ import annotations

import pytest
import torch

from modscope.sae import SAEConfig, make_sae
from modscope.sae.dead import DeadLatentTracker, resample_dead_latents
from modscope.sae.planted import planted_dictionary


def _sae_and_batch(architecture: str = "topk", seed: int = 0):
    sae = make_sae(SAEConfig(d_in=8, d_sae=24, architecture=architecture, k=2, aux_k=4, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_enc.copy_(0.2 * torch.randn(24, generator=gen))
        sae.b_dec.copy_(torch.randn(8, generator=gen))
    return sae, torch.randn(64, 8, generator=gen)


def test_aux_k_loss_equals_the_dense_formula():
    sae, x = _sae_and_batch()
    dead = torch.arange(24) % 3 == 0
    out = sae.training_step(x, dead)
    with torch.no_grad():
        x_hat = sae(x)
        e = x - x_hat
        pre = sae.pre_acts(x).masked_fill(~dead, float("-inf"))
        values, idx = pre.topk(4, dim=-1)
        codes = torch.zeros(64, 24).scatter_(-1, idx, torch.relu(values))
        e_hat = codes @ sae.W_dec
        expected = 1 - (e * e_hat).sum() / (e.norm() * e_hat.norm())  # 1 - cos over the flattened batch
        variance = (x - x.mean(0)).pow(2).sum(-1).mean()
    assert torch.allclose(out.aux, expected, rtol=1e-5)
    assert torch.allclose(out.loss, out.mse + variance * out.aux / 32, rtol=1e-5)


def test_aux_k_gradient_reaches_only_dead_latents():
    sae, x = _sae_and_batch()
    dead = torch.arange(24) >= 12
    sae.training_step(x, dead).aux.backward()
    row_grad = sae.W_dec.grad.abs().sum(dim=1) + sae.W_enc.grad.abs().sum(dim=1)
    assert (row_grad[~dead] == 0).all()
    assert (row_grad[dead] > 0).sum() >= 4


def _paper_aux_k_loss(sae, x, dead, k_aux):
    """Gao et al.'s form, without the fitted scale: ``||e - e_hat||^2 / ||e - mean e||^2`` (dense)."""
    with torch.no_grad():
        e = x - sae(x)
    pre = sae.pre_acts(x)
    with torch.no_grad():
        idx = pre.masked_fill(~dead, float("-inf")).topk(k_aux, dim=-1).indices
    codes = torch.zeros_like(pre).scatter(-1, idx, torch.relu(pre.gather(-1, idx)))
    return (e - codes @ sae.W_dec).pow(2).sum() / (e - e.mean(0)).pow(2).sum()


@pytest.fixture
def one_thread():
    """Tiny matrices: intra-op threads only spin (27 s instead of 0.6 s on the shared 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_aux_k_keeps_the_codes_of_dead_latents_on_a_planted_dictionary_where_the_paper_form_shrinks_them(one_thread):
    """Planted dictionary smaller than the SAE, its atoms already learnt: the residual is the encoder's
    interference, which the surplus (dead) latents cannot explain. The paper's aux loss is then minimised by
    e_hat = 0, and Adam drives the dead latents' codes towards 0 (below the TopK threshold for good); ours asks
    only for the residual's direction, so their codes keep their size."""
    x_np, atoms = planted_dictionary(d=16, atoms=24, n=512, active=2, seed=0)
    x = torch.from_numpy(x_np)
    sae = make_sae(SAEConfig(d_in=16, d_sae=48, k=3, seed=0))
    with torch.no_grad():
        sae.W_dec[:24] = torch.from_numpy(atoms).float()  # the live latents: the atoms, tied encoder
        sae.W_enc[:24] = sae.W_dec[:24]
        sae.b_dec.copy_(x.mean(0))
    dead = torch.arange(48) >= 24
    state = {name: p.detach().clone() for name, p in sae.named_parameters()}

    def dead_codes(paper: bool | None) -> float:
        sae.load_state_dict(state)
        optimiser = torch.optim.Adam([sae.W_enc, sae.b_enc, sae.W_dec], lr=1e-2)
        for _ in range(0 if paper is None else 60):
            optimiser.zero_grad()
            (_paper_aux_k_loss(sae, x, dead, 8) if paper else sae.training_step(x, dead).aux).backward()
            optimiser.step()
        with torch.no_grad():
            return float(torch.relu(sae.pre_acts(x)[:, dead]).mean())

    before = dead_codes(None)
    assert dead_codes(paper=True) < 0.5 * before  # measured 0.28 x
    assert dead_codes(paper=False) > 0.9 * before  # measured 1.9 x


def test_aux_k_loss_does_not_depend_on_the_size_of_the_dead_codes():
    sae, x = _sae_and_batch()
    dead = torch.arange(24) % 3 == 0
    residual = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))

    def aux() -> torch.Tensor:
        with torch.no_grad():
            centred = x - sae.b_dec
            return sae._aux_k_loss(centred, centred @ sae.W_enc.T + sae.b_enc, dead, 4, residual)

    before = aux()
    with torch.no_grad():
        sae.W_enc[dead] *= 3.0  # every dead code x 3, the same dead latents selected
        sae.b_enc[dead] *= 3.0
    assert 0 < float(before) < 2
    assert torch.allclose(aux(), before, rtol=1e-5)


def test_no_dead_latent_means_no_aux_term():
    sae, x = _sae_and_batch()
    out = sae.training_step(x, torch.zeros(24, dtype=torch.bool))
    assert out.aux is None and torch.equal(out.loss, out.mse)
    assert out.fired.sum() >= 2


def test_tracker_marks_latents_silent_for_a_whole_window():
    tracker = DeadLatentTracker(3, window_tokens=100)
    for _ in range(3):
        tracker.update(torch.tensor([True, False, False]), 40)
    assert tracker.dead().tolist() == [False, True, True]  # 120 tokens silent >= 100
    tracker.update(torch.tensor([False, True, False]), 40)
    assert tracker.dead().tolist() == [False, False, True]
    tracker.reset(torch.tensor([False, False, True]))
    assert not tracker.dead().any()


def test_resampling_points_dead_relu_latents_at_badly_reconstructed_inputs():
    sae, x = _sae_and_batch("relu")
    dead = torch.zeros(24, dtype=torch.bool)
    dead[:5] = True
    optimiser = torch.optim.Adam(sae.parameters(), lr=1e-3)
    sae.training_step(x).loss.backward()
    optimiser.step()
    assert resample_dead_latents(sae, x, dead, optimiser, torch.Generator().manual_seed(0)) == 5
    with torch.no_grad():
        directions = (x - sae.b_dec) / (x - sae.b_dec).norm(dim=1, keepdim=True)
        best = (sae.W_dec[:5] @ directions.T).max(dim=1).values
    assert torch.allclose(best, torch.ones(5), atol=1e-5)  # each new row is one of the inputs' directions
    assert (sae.b_enc[:5] == 0).all()
    assert (optimiser.state[sae.W_dec]["exp_avg_sq"][:5] == 0).all()
    assert (optimiser.state[sae.W_dec]["exp_avg_sq"][5:] > 0).any()


def test_default_dead_window_is_at_most_the_heldout_tokens():
    """What training treats as dead (silent for a window) must be what the held-out evaluation counts as dead."""
    assert SAEConfig(tokens=2_400_000, batch_size=512, heldout_tokens=20_000).dead_window_tokens == 20_000
    assert SAEConfig(tokens=100_000, batch_size=512, heldout_tokens=20_000).dead_window_tokens == 10_000
    assert SAEConfig(tokens=10**10, batch_size=512, heldout_tokens=10**8).dead_window_tokens == 10_000_000
    assert SAEConfig(tokens=4096, batch_size=4096, heldout_tokens=100).dead_window_tokens == 4096
    assert SAEConfig(dead_after_tokens=777).dead_window_tokens == 777
