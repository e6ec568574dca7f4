"""Spectrum summaries on known spectra, MP/shuffle nulls on noise, planted blocks recovered against a shuffle null."""

import numpy as np
import pytest

from modscope.stats import blocks, covariance, spectrum
from modscope.stats.spectra import spectrum_of_eigenvalues


def test_flat_spectrum_has_participation_ratio_and_effective_rank_d():
    res = spectrum_of_eigenvalues(np.full(50, 2.0))
    assert res.participation_ratio == pytest.approx(50)
    assert res.effective_rank == pytest.approx(50)
    assert res.top1_share == pytest.approx(1 / 50)


def test_power_law_spectrum_recovers_its_exponent():
    res = spectrum_of_eigenvalues(np.arange(1, 501, dtype=float) ** -1.3)
    assert res.tail_exponent == pytest.approx(1.3, rel=1e-9)


def test_one_big_channel_dominates_top1_share():
    rng = np.random.default_rng(0)
    X = 10 * rng.standard_normal((4000, 1)) @ np.ones((1, 30)) / np.sqrt(30) + rng.standard_normal((4000, 30))
    res = spectrum(X)
    assert res.top1_share > 0.7
    assert res.n_above_mp == 1 and res.n_above_shuffle == 1


def test_white_noise_correlation_spectrum_stays_inside_marchenko_pastur_bulk():
    rng = np.random.default_rng(1)
    res = spectrum(rng.standard_normal((2000, 100)), standardize=True)
    assert res.eigenvalues[0] < res.mp_upper * 1.05
    assert res.eigenvalues[-1] > res.mp_lower * 0.9
    assert res.n_above_shuffle <= 2


def test_spectrum_from_accumulator_matches_rows_without_shuffle_null():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))
    a, b = spectrum(X), spectrum(covariance(X))
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-10)
    assert b.shuffle_eigenvalues is None and a.shuffle_eigenvalues is not None


def planted_blocks(sizes=(20, 15, 25), rho=0.5, n=2000, seed=3):
    rng = np.random.default_rng(seed)
    cols = []
    for size in sizes:
        shared = rng.standard_normal((n, 1))
        cols.append(np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal((n, size)))
    X = np.hstack(cols)
    perm = rng.permutation(X.shape[1])
    truth = np.repeat(np.arange(len(sizes)), sizes)[perm]
    return X[:, perm], truth


def test_planted_block_diagonal_covariance_is_recovered_with_large_z():
    X, truth = planted_blocks()
    res = blocks(np.cov(X, rowvar=False), n_shuffles=10)
    assert res.n_blocks == 3
    assert sorted(res.block_sizes) == [15, 20, 25]
    for b in range(3):  # every found block is exactly one planted block
        assert len(set(truth[res.labels == b])) == 1
    assert res.z > 3
    ordered = truth[res.order]
    assert np.sum(ordered[1:] != ordered[:-1]) == 2  # blocks are contiguous after permutation


def test_no_structure_control_has_modularity_within_null():
    rng = np.random.default_rng(4)
    res = blocks(np.corrcoef(rng.standard_normal((2000, 60)), rowvar=False), n_shuffles=10)
    assert abs(res.z) < 3
