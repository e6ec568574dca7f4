"""Density counts equal a brute-force count; trends fall for features heading to dead."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.sae import SAEConfig, density_history, feature_firing_counts, train
from modscope.sae.contexts import top_activations


def test_firing_counts_equal_a_python_loop_count():
    rng = np.random.default_rng(0)
    codes = np.maximum(rng.standard_normal((200, 7)) - 1.0, 0)
    brute = [sum(1 for t in range(200) if codes[t, i] > 0) for i in range(7)]
    assert feature_firing_counts(codes).tolist() == brute


def test_training_checkpoint_counts_equal_brute_force_count_on_heldout(planted):
    x, _ = planted
    cfg = SAEConfig(expansion=2, architecture="topk", k=2, batch_size=256, tokens=20_000, lr=3e-3,
                    heldout_tokens=1000, checkpoints=4)
    sae = train(x, cfg)
    held = torch.from_numpy(x[-1000:])
    with torch.no_grad():
        z = sae.encode(held).numpy()
    brute = np.array([(z[:, i] > 0).sum() for i in range(sae.n_latents)])
    # the last checkpoint was measured before the input scale was folded in; firing is scale-invariant
    assert np.array_equal(np.array(sae.log.checkpoint_counts[-1]), brute)
    assert sae.log.n_heldout == 1000 and len(sae.log.checkpoint_tokens) == 4
    assert sae.log.checkpoint_tokens[-1] == cfg.steps * cfg.batch_size


def test_density_history_counts_dead_and_ultra_rare_and_bins_live_features():
    n_heldout = 1000
    counts = np.array([[0, 1, 5, 500], [0, 0, 5, 600], [3, 2, 5, 700]])
    hist = density_history(counts, n_heldout, np.array([100, 200, 300]), threshold=4e-3)
    assert hist.dead.tolist() == [1, 2, 0]
    assert hist.ultra_rare.tolist() == [1, 0, 2]  # densities 1e-3 (ckpt 0); 3e-3 and 2e-3 (ckpt 2)
    assert hist.histogram.sum(axis=1).tolist() == [3, 2, 4]
    assert hist.ultra_rare_features.tolist() == [0, 1]


def test_trend_slope_is_negative_for_a_feature_dying_and_zero_for_a_stationary_one():
    tokens = np.arange(1, 7) * 1_000_000
    dying = np.array([400, 100, 25, 6, 2, 1])  # log10 density falls ~0.5 decade per million tokens
    steady = np.array([5, 5, 5, 5, 5, 5])
    hist = density_history(np.stack([dying, steady], axis=1), 100_000, tokens, threshold=1e-3, window=6)
    slopes = dict(zip(hist.ultra_rare_features.tolist(), hist.ultra_rare_slopes))
    assert slopes[0] == pytest.approx(np.polyfit(tokens / 1e6, np.log10(dying / 1e5), 1)[0])
    assert slopes[0] < -0.4 and slopes[1] == pytest.approx(0.0)
    assert hist.n_falling == 1 and hist.n_rising == 0


def test_density_history_rejects_mismatched_shapes():
    with pytest.raises(ModscopeError, match="n_checkpoints"):
        density_history(np.zeros((3, 4)), 10, np.arange(2))


def test_streamed_top_activations_equal_a_full_sort():
    rng = np.random.default_rng(1)
    codes = rng.random((300, 5)).astype(np.float32)
    values, rows = top_activations((codes[i:i + 64] for i in range(0, 300, 64)), n_top=4)
    order = np.argsort(-codes, axis=0)[:4]
    assert np.array_equal(rows, order)
    assert np.allclose(values, np.take_along_axis(codes, order, axis=0))


def test_density_plots_draw(planted):
    hist = density_history(np.array([[0, 1, 50], [0, 2, 40]]), 1000, np.array([1000, 2000]), threshold=5e-3)
    assert hist.plot() is not None and hist.plot_trends() is not None
    assert "densities" not in hist.to_json()
