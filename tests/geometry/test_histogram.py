"""The exact all-pairs cosine histogram."""

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.geometry import cosine_histogram


def brute_force_pairs(E):
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    return (unit @ unit.T)[np.triu_indices(len(E), 1)]


@pytest.mark.parametrize("block", [7, 64, 1000])
def test_histogram_equals_brute_force_over_all_pairs(block):
    rng = np.random.default_rng(0)
    E = rng.normal(size=(150, 12)) + 0.3
    result = cosine_histogram(E, bins=40, block=block)
    cosines = brute_force_pairs(E)
    expected, edges = np.histogram(cosines, bins=40, range=(-1, 1))
    np.testing.assert_array_equal(result.counts, expected)
    np.testing.assert_allclose(result.edges, edges)
    assert result.n_pairs == 150 * 149 // 2 == result.counts.sum()
    assert result.mean == pytest.approx(cosines.mean(), abs=1e-12)
    assert result.sd == pytest.approx(cosines.std(), abs=1e-12)
    assert result.min == pytest.approx(cosines.min(), abs=1e-6)
    assert result.max == pytest.approx(cosines.max(), abs=1e-6)


def test_planted_common_offset_is_anisotropic_raw_and_isotropic_centred():
    # seed 003: a big shared vector makes every cosine ~1; centring removes it
    rng = np.random.default_rng(1)
    E = rng.normal(size=(400, 32)) + 20.0 * rng.normal(size=32)
    raw = cosine_histogram(E)
    centred = cosine_histogram(E, centre=True)
    assert raw.mean > 0.95
    assert abs(centred.mean) < 0.01
    assert centred.centred and not raw.centred
    assert centred.sd == pytest.approx(1 / np.sqrt(32), rel=0.15)


def test_parallel_and_antiparallel_rows_land_in_the_edge_bins():
    E = np.array([[1.0, 2.0], [2.0, 4.0], [-1.0, -2.0]])
    result = cosine_histogram(E, bins=10)
    assert result.counts[-1] == 1 and result.counts[0] == 2
    assert result.n_outside == 0


def test_zero_rows_are_left_out_and_torch_input_is_accepted():
    E = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    result = cosine_histogram(E, bins=4)
    assert result.n_zero_rows == 1 and result.n_pairs == 1
    assert result.mean == pytest.approx(np.sqrt(0.5))


def test_histogram_rejects_fewer_than_two_rows():
    with pytest.raises(ModscopeError, match="at least 2"):
        cosine_histogram(np.zeros((3, 4)))


def test_skipping_extremes_gives_the_same_counts_and_moments():
    E = np.random.default_rng(2).normal(size=(90, 6))
    with_extremes = cosine_histogram(E, bins=30, block=16)
    without = cosine_histogram(E, bins=30, block=16, extremes=False)
    np.testing.assert_array_equal(with_extremes.counts, without.counts)
    assert without.mean == with_extremes.mean and np.isnan(without.max)


def test_large_blocks_counted_on_two_threads_equal_brute_force_and_leave_the_input_unchanged():
    # blocks of 512 x 512 cosines take the two-thread count; the diagonal blocks drop their lower triangle
    rng = np.random.default_rng(3)
    E = rng.normal(size=(700, 8)) + 0.5
    before = E.copy()
    result = cosine_histogram(E, bins=50, block=512)
    cosines = brute_force_pairs(E)
    expected, edges = np.histogram(cosines, bins=50, range=(-1, 1))
    # float32 GEMM: only pairs within ~1e-6 of a bin edge may fall on the other side (a handful of 244,650)
    near_edge = int(np.sum(np.min(np.abs(cosines[:, None] - edges[None, 1:-1]), axis=1) < 1e-6))
    assert near_edge < 20
    assert result.counts.sum() == len(cosines)
    assert np.abs(result.counts - expected).sum() <= 2 * near_edge
    np.testing.assert_array_equal(E, before)


def test_a_narrow_range_counts_the_pairs_outside_it():
    # documented: values up to one bin width past either end are counted in the edge bins; the rest are outside
    rng = np.random.default_rng(4)
    E = rng.normal(size=(120, 10))
    result = cosine_histogram(E, bins=20, value_range=(-0.2, 0.3), block=50)
    cosines = brute_force_pairs(E)
    width = 0.5 / 20
    padded, _ = np.histogram(cosines, bins=22, range=(-0.2 - width, 0.3 + width))
    expected = padded[1:-1].copy()
    expected[0] += padded[0]
    expected[-1] += padded[-1]
    np.testing.assert_array_equal(result.counts, expected)
    assert result.n_outside == int(np.sum((cosines < -0.2 - width) | (cosines > 0.3 + width))) > 1000
