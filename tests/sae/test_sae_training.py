"""Training recovers a planted sparse dictionary; the SAE's parametrisation and save/load behave as specified."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.sae import SAEConfig, load_sae, make_sae, train
from modscope.sae.trainer import heldout_stats, lr_factor


def best_cosines(atoms: np.ndarray, decoder: torch.Tensor) -> np.ndarray:
    """For each planted atom, the largest cosine with any learned decoder row (rows are unit-norm)."""
    return (atoms @ decoder.detach().numpy().T).max(axis=1)


@pytest.fixture(scope="module")
def topk_sae(planted):
    x, _ = planted
    cfg = SAEConfig(expansion=4, architecture="topk", k=3, batch_size=256, tokens=150_000, lr=3e-3,
                    heldout_tokens=1000, checkpoints=5)
    return train(x, cfg)


def test_topk_recovers_planted_atoms_with_cosine_above_0_9(planted, topk_sae):
    _, atoms = planted
    assert (best_cosines(atoms, topk_sae.W_dec) > 0.9).mean() >= 0.9


def test_relu_l1_recovers_planted_atoms_with_cosine_above_0_9(planted):
    x, atoms = planted
    cfg = SAEConfig(expansion=2, architecture="relu", l1_coefficient=1.0, batch_size=256, tokens=300_000, lr=1e-2,
                    heldout_tokens=1000, checkpoints=3)
    sae = train(x, cfg)
    assert (best_cosines(atoms, sae.W_dec) > 0.9).mean() >= 0.85
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(sae.n_latents), atol=1e-5)


def test_free_decoder_norm_fold_keeps_the_function_and_gives_unit_rows(planted):
    x, _ = planted
    cfg = SAEConfig(expansion=2, architecture="relu", decoder_norm="free", batch_size=256, tokens=5_000, lr=1e-2,
                    heldout_tokens=1000, checkpoints=1)
    sae = train(x, cfg)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(sae.n_latents), atol=1e-5)
    sae2 = make_sae(sae.cfg)
    sae2.load_state_dict(sae.state_dict())
    with torch.no_grad():
        sae2.W_dec.mul_(3.0)
        before = sae2(torch.from_numpy(x[:50]))
        sae2.fold_decoder_norms()
        after = sae2(torch.from_numpy(x[:50]))
    assert torch.allclose(before, after, atol=1e-4)


def test_saved_sae_works_in_the_sources_units(planted, topk_sae):
    """Training normalises the input; the fold makes the saved SAE reconstruct raw activations."""
    x, _ = planted
    held = torch.from_numpy(x[-1000:] * 1.0)
    _, fve = heldout_stats(topk_sae, held)
    assert fve > 0.85
    assert topk_sae.meta["input_scale"] > 0


def test_topk_training_step_gradient_matches_dense_autograd():
    cfg = SAEConfig(d_in=6, expansion=3, architecture="topk", k=2, seed=1)
    sae = make_sae(cfg)
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    sae.training_step(x).loss.backward()
    sparse_grads = [p.grad.clone() for p in sae.parameters()]
    sae.zero_grad()
    dense_loss = (sae(x) - x).pow(2).sum(-1).mean()
    dense_loss.backward()
    for sparse, p in zip(sparse_grads, sae.parameters()):
        assert torch.allclose(sparse, p.grad, atol=1e-5)


def test_topk_codes_have_exactly_k_nonzeros_and_decode_reconstructs():
    sae = make_sae(SAEConfig(d_in=8, expansion=4, architecture="topk", k=5))
    x = torch.randn(30, 8)
    z = sae.encode(x)
    assert ((z > 0).sum(-1) <= 5).all()
    assert torch.allclose(sae.decode(z), z @ sae.W_dec + sae.b_dec)


def test_save_load_round_trip_keeps_weights_config_meta_and_log(tmp_path, topk_sae):
    topk_sae.save(tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert loaded.cfg == topk_sae.cfg
    assert loaded.meta == topk_sae.meta
    for name, p in topk_sae.named_parameters():
        assert torch.equal(p.detach(), getattr(loaded, name).detach())
    assert loaded.log.checkpoint_counts == topk_sae.log.checkpoint_counts


def test_lr_schedule_warms_up_and_decays_to_zero():
    cfg = SAEConfig(tokens=100 * 4096, batch_size=4096, lr_warmup_fraction=0.1, lr_decay_fraction=0.2)
    factors = [lr_factor(s, cfg) for s in range(cfg.steps)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0 and factors[50] == 1.0
    assert factors[-1] == pytest.approx(1 / 20) and all(np.diff(factors[80:]) < 0)


def test_bad_configs_and_sources_raise_modscope_errors():
    with pytest.raises(ModscopeError, match="architecture"):
        SAEConfig(architecture="gated")
    with pytest.raises(ModscopeError, match="decoder_norm"):
        SAEConfig(architecture="topk", decoder_norm="free")
    with pytest.raises(ModscopeError, match="width"):
        train(np.zeros((100, 4), np.float32), SAEConfig(d_in=5))
    with pytest.raises(ModscopeError, match="n_rows, d_in"):
        train(np.zeros((10, 4, 2), np.float32), SAEConfig())
    with pytest.raises(ModscopeError, match="no SAE"):
        load_sae("/nonexistent-dir")


def test_streamed_evaluation_equals_the_array_formula(planted, topk_sae):
    from modscope.sae.evaluate import evaluate_reconstruction, reconstruction_metrics

    x = planted[0][-700:]
    with torch.no_grad():
        z = topk_sae.encode(torch.from_numpy(x))
        x_hat = topk_sae.decode(z)
    by_array = reconstruction_metrics(x, x_hat.numpy(), z.numpy())
    streamed = evaluate_reconstruction(topk_sae, x, chunk=128)
    for name in ("mse", "fve", "cosine", "l0", "dead_fraction"):
        assert getattr(streamed, name) == pytest.approx(getattr(by_array, name), rel=1e-5, abs=1e-7)
    assert by_array.fve == pytest.approx(1 - ((x - x_hat.numpy()) ** 2).sum() / ((x - x.mean(0)) ** 2).sum(), rel=1e-4)
