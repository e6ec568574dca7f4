"""Grokking in the Fourier basis: planted sparse directions are sparse, random ones dense; ablation and loss PCA."""

from __future__ import annotations

import numpy as np
import pytest

from modscope.training.fourier import (
    ablate_direction,
    fourier_directions,
    fourier_energy,
    fourier_null,
    loss_pca,
    per_example_loss,
    sparsity,
    top_directions,
    turning_points,
)

P = 31


def planted_direction(freqs, width=16, seed=0):
    """[width, 2, p] whose rows are random mixtures of cos/sin at ``freqs`` only."""
    rng = np.random.default_rng(seed)
    t = np.arange(P)
    basis = np.concatenate([[np.cos(2 * np.pi * f * t / P), np.sin(2 * np.pi * f * t / P)] for f in freqs])
    direction = (rng.normal(size=(width * 2, len(basis))) @ basis).reshape(width, 2, P)
    return direction / np.linalg.norm(direction)


def test_pure_frequency_has_all_energy_there_and_parseval_holds():
    energy = fourier_energy(planted_direction([7]), P)
    assert energy[7] == pytest.approx(1.0)
    x = np.random.default_rng(0).normal(size=(3, P))
    raw = (np.abs(np.fft.rfft(x, axis=1)) ** 2 * np.r_[1, np.full(P // 2, 2.0)]).sum() / P
    assert raw == pytest.approx((x ** 2).sum())


def test_planted_sparse_direction_is_sparse_and_random_one_dense():
    null = fourier_null((16, 2, P), P, n=200)
    sparse_dir = planted_direction([3, 11])
    dense_dir = np.random.default_rng(5).normal(size=(16, 2, P))
    records = fourier_directions(np.stack([sparse_dir.ravel(), dense_dir.ravel()]), np.array([2.0, 1.0]), p=P,
                                 shape=(16, 2, P), null=null, total=5.0, source="test")
    assert records[0]["sparse"] and not records[1]["sparse"]
    assert records[0]["top_share"] == pytest.approx(1.0)
    assert {f for f, _ in records[0]["dominant"][:2]} == {3, 11}
    assert records[0]["n_effective"] == pytest.approx(2.0, abs=0.3)
    assert records[1]["n_effective"] > 0.8 * null.n_effective_mean
    assert records[0]["variance_share"] == pytest.approx(0.8)


def test_sparsity_of_flat_spectrum_counts_every_frequency():
    share, ipr, _ = sparsity(np.full(10, 0.1), top_k=5)
    assert share == pytest.approx(0.5) and 1 / ipr == pytest.approx(10)


def test_top_directions_recover_planted_rank_two_matrix():
    rng = np.random.default_rng(0)
    v = np.linalg.qr(rng.normal(size=(200, 2)))[0].T
    u = np.linalg.qr(rng.normal(size=(50, 2)))[0]
    matrix = 5 * np.outer(u[:, 0], v[0]) + np.outer(u[:, 1], v[1])
    values, vecs, total = top_directions(matrix, 2)
    assert abs(vecs[0] @ v[0]) == pytest.approx(1.0, abs=1e-8)
    assert abs(vecs[1] @ v[1]) == pytest.approx(1.0, abs=1e-8)
    assert (values ** 2).sum() == pytest.approx(total)


def test_ablation_removes_exactly_the_component():
    rng = np.random.default_rng(1)
    weight, direction = rng.normal(size=(4, 6)), rng.normal(size=24)
    ablated = ablate_direction(weight, direction)
    assert np.sum(ablated.ravel() * direction) == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(ablate_direction(ablated, direction), ablated)


def test_loss_pca_finds_the_planted_turn():
    steps = np.arange(30)
    # losses move along one direction until step 10, then along an orthogonal one
    a, b = np.eye(8)[0], np.eye(8)[1]
    path = np.array([min(s, 10) * a + max(s - 10, 0) * b for s in steps], dtype=float)
    result = loss_pca(path, steps)
    assert 10 in result.turning_steps
    assert sum(result.explained) == pytest.approx(1.0)
    assert turning_points(np.array([[0, 0], [1, 0], [2, 0]])) in ([], [1])


def test_per_example_loss_is_cross_entropy():
    logits = np.array([[[2.0, 0.0], [0.0, 0.0]]])
    assert per_example_loss(logits, np.array([0, 1]))[0] == pytest.approx([np.log1p(np.exp(-2)), np.log(2)])


def test_grokking_report_on_a_tiny_modadd_run(tmp_path):
    from modscope.training.grokking import grokking_report
    from modscope.training.modadd import train_modadd

    train_modadd(p=7, steps=60, width=16, lr=1e-2, recorder=tmp_path / "run" / "grads", checkpoints=6,
                 probe_size=20)
    payload = grokking_report(tmp_path / "run", components=3, out=tmp_path / "page")
    result = payload["result"]
    assert len(result["components"]) == 6 and len(result["ablations"]) == 6
    assert result["loss_pca"]["steps"][0] == 0 and result["loss_pca"]["steps"][-1] == 60
    assert (tmp_path / "page" / "fourier_sparsity.png").exists() and payload["verdict"]
    # 60 steps at p = 7 never grok: the verdict must not claim that removing a component helps generalization
    assert result["grok_step"] is None and "did not grok" in payload["verdict"]
    assert "helps generalization" not in payload["verdict"]
