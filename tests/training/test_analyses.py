"""Sampling study, held-out residual, projected replay, time profiles, logit PCA and the random-walk null."""

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.training import train_mnist
from modscope.training.gram import compute_gram
from modscope.training.profiles import logit_pca, time_profiles
from modscope.training.randomwalk import PC1_RANDOM_WALK, random_walk_null, trajectory_pc_fractions
from modscope.training.replay import replay_projected
from modscope.training.residual import heldout_residual
from modscope.training.sampling import sample_rows, sampling_study
from modscope.training.spectrum import gradient_spectrum
from modscope.training.store import as_store


def low_rank(steps=120, params=300, rank=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, rank)) @ rng.standard_normal((rank, params)) * 3 \
        + 1e-4 * rng.standard_normal((steps, params))


def test_sampling_a_planted_rank_matrix_recovers_the_rank_with_zero_spread():
    study = sampling_study(low_rank(), size=40, repeats=5)
    assert study.all_steps_count[0.10] == 6
    assert study.mean[0.10] == 6 and study.sd[0.10] == 0
    even = sampling_study(low_rank(), size=40, repeats=3, scheme="even", skip_first=20)
    assert even.n_steps == 100 and even.mean[0.05] == 6


def test_sample_rows_even_scheme_is_evenly_spaced_and_random_is_without_replacement():
    rng = np.random.default_rng(0)
    even = sample_rows(1000, 100, "even", rng)
    assert set(np.diff(even)) <= {9, 10, 11}
    assert len(set(sample_rows(50, 50, "random", rng))) == 50
    with pytest.raises(ModscopeError):
        sampling_study(low_rank(), size=500)


def test_heldout_residual_explains_everything_at_the_planted_rank_and_is_brute_force_correct():
    matrix = low_rank()
    res = heldout_residual(matrix, fit_size=30, ks=(1, 6))
    assert res.heldout_explained[-1] > 0.999999 and res.heldout_explained[0] < res.heldout_explained[1]
    fit = np.random.default_rng(0).choice(120, size=30, replace=False)
    held = np.setdiff1d(np.arange(120), fit)
    _, _, vt = np.linalg.svd(matrix[np.sort(fit)], full_matrices=False)
    brute = np.sum((matrix[held] @ vt[:1].T) ** 2) / np.sum(matrix[held] ** 2)
    assert np.isclose(res.heldout_explained[0], brute, rtol=1e-8)


@pytest.fixture(scope="module")
def small_run():
    return train_mnist(max_steps=20, n_train=1500, recorder=True, null="width:16", seed=1)


def test_replay_with_full_rank_reproduces_the_original_losses_and_k0_freezes_the_weights(small_run):
    run = small_run
    replay = replay_projected(run, ks=(0, 3))
    assert replay.ks[-1] == replay.rank == 20
    assert replay.max_abs_loss_diff[-1] == 0.0  # identical float32 losses at every step
    assert np.array_equal(replay.losses[-1], run.losses)
    assert replay.max_abs_loss_diff[0] > 0  # k = 0: nothing moves, so the loss does not fall


def test_time_profiles_are_unit_vectors_and_a_planted_early_direction_is_early():
    rng = np.random.default_rng(0)
    matrix = 1e-3 * rng.standard_normal((100, 50))
    matrix[:10] += 5 * rng.standard_normal(50)  # a strong direction acting only in the first 10 steps
    prof = time_profiles(gradient_spectrum(matrix), k=3)
    assert np.allclose(np.sum(prof.profiles**2, axis=1), 1.0)
    assert prof.early_mass[0] > 0.99 and prof.centroid_step[0] < 10


def test_logit_pca_of_a_straight_line_trajectory_has_one_component():
    base, direction = np.random.default_rng(0).standard_normal((2, 8, 10))
    logits = np.stack([base + t * direction for t in range(6)])
    pca = logit_pca(logits, np.arange(6) * 10)
    assert pca.explained[0] > 0.999999
    with pytest.raises(ModscopeError, match="checkpoint"):
        logit_pca(logits[:2], [0, 1])


def test_random_walk_trajectory_pc1_is_near_six_over_pi_squared_and_counts_are_full():
    null = random_walk_null(200, dim=1000)
    assert abs(null.trajectory_pc[0] - PC1_RANDOM_WALK) < 0.05
    assert null.counts[0.15] == 200
    straight = np.ones((50, 50))  # every step the same gradient: the trajectory is a line
    assert trajectory_pc_fractions(straight)[0] > 0.999999


def test_real_run_gram_reuse_gives_same_counts_as_the_store(small_run):
    store = as_store(small_run)
    gg = compute_gram(store)
    assert sampling_study(gg, size=20, repeats=2).all_steps_count == gradient_spectrum(store).counts
