"""Gaussian MI: analytic planted channels, exact null against Monte-Carlo, bias correction, ranks, permutations."""

import math

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.stats import covariance, gaussian_mi, logdet_bias, mi_null


def planted_channel(n, dx=6, dy=5, noise=0.7, seed=0):
    """Y = A X + noise with X ~ N(0, I): I(X;Y) = ½ log det(A Aᵀ + σ² I) − dy log σ."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dy, dx)) / math.sqrt(dx)
    X = rng.standard_normal((n, dx))
    Y = X @ A.T + noise * rng.standard_normal((n, dy))
    truth = 0.5 * np.linalg.slogdet(A @ A.T + noise**2 * np.eye(dy))[1] - dy * math.log(noise)
    return X, Y, truth


def test_planted_channel_mi_matches_analytic_value():
    X, Y, truth = planted_channel(40_000)
    res = gaussian_mi(X, Y)
    assert res.mi_bits == pytest.approx(res.mi / math.log(2))
    assert abs(res.mi_corrected - truth) < 0.02 * truth
    assert res.z > 100


def test_one_dimensional_correlation_gives_minus_half_log_one_minus_rho_squared():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5000)
    y = 0.6 * x + 0.8 * rng.standard_normal(5000)
    r = np.corrcoef(x, y)[0, 1]
    assert gaussian_mi(x, y).mi == pytest.approx(-0.5 * math.log(1 - r**2), rel=1e-10)


def test_plug_in_equals_log_det_formula():
    X, Y, _ = planted_channel(500, seed=2)
    ld = lambda M: np.linalg.slogdet(np.cov(M, rowvar=False))[1]  # noqa: E731
    expected = 0.5 * (ld(X) + ld(Y) - ld(np.hstack([X, Y])))
    assert gaussian_mi(X, Y).mi == pytest.approx(expected, rel=1e-10)


def test_exact_null_matches_monte_carlo_mean_and_sd():
    n, dx, dy, sims = 40, 3, 4, 6000
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((sims, n, dx + dy))
    Z -= Z.mean(axis=1, keepdims=True)
    S = np.einsum("sni,snj->sij", Z, Z)
    mi = 0.5 * (np.linalg.slogdet(S[:, :dx, :dx])[1] + np.linalg.slogdet(S[:, dx:, dx:])[1]
                - np.linalg.slogdet(S)[1])
    null = mi_null(n, dx, dy)
    mean, sd = null.mean, null.sd
    assert abs(mi.mean() - mean) < 3 * mi.std() / math.sqrt(sims)
    assert mi.std() == pytest.approx(sd, rel=0.05)
    swapped = mi_null(n, dy, dx)
    assert (swapped.mean, swapped.sd) == pytest.approx((mean, sd), rel=1e-12)
    assert tuple(swapped) == (swapped.mean, swapped.sd)  # unpacks like the (mean, sd) it used to return


def test_null_mean_approaches_dx_dy_over_2n():
    mean, _ = mi_null(1_000_000, 20, 30)
    assert mean == pytest.approx(20 * 30 / 2e6, rel=1e-3)


def test_logdet_bias_matches_wishart_monte_carlo():
    n, d, sims = 15, 4, 20000
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((sims, n, d))
    Z -= Z.mean(axis=1, keepdims=True)
    logdets = np.linalg.slogdet(np.einsum("sni,snj->sij", Z, Z) / (n - 1))[1]
    assert logdets.mean() == pytest.approx(logdet_bias(n, d), abs=3 * logdets.std() / math.sqrt(sims))


def test_independent_data_corrected_mi_within_three_null_sd_of_zero():
    rng = np.random.default_rng(5)
    res = gaussian_mi(rng.standard_normal((3000, 20)), rng.standard_normal((3000, 15)))
    assert abs(res.mi_corrected) < 3 * res.null_sd
    assert abs(res.z) < 3
    assert res.mi_corrected == pytest.approx(res.mi - res.null_mean, abs=1e-12)


def test_permutation_null_agrees_with_exact_null_on_gaussians():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((1500, 8)), rng.standard_normal((1500, 6))
    res = gaussian_mi(X, Y, permutations=200, seed=1)
    assert res.perm_null.shape == (200,)
    assert res.perm_null.mean() == pytest.approx(res.null_mean, rel=0.1)
    assert res.perm_null.std() == pytest.approx(res.null_sd, rel=0.25)
    assert 0 < res.perm_p <= 1


def test_accumulator_input_gives_same_result_as_arrays():
    X, Y, _ = planted_channel(2000, seed=7)
    a, b = gaussian_mi(X, Y), gaussian_mi(covariance(X, Y), dx=X.shape[1])
    assert b.mi == pytest.approx(a.mi, rel=1e-12)


def test_rank_deficient_side_uses_non_null_subspace():
    X, Y, truth = planted_channel(20_000, seed=8)
    centred = X - X.mean(axis=1, keepdims=True)  # like a LayerNorm: removes the all-ones direction
    res = gaussian_mi(centred, Y)
    assert (res.dx, res.rank_x, res.rank_y) == (6, 5, 5)
    assert np.isfinite(res.mi) and res.mi < truth
    null = mi_null(res.n, 5, 5)
    assert (null.mean, null.sd) == (res.null_mean, res.null_sd)


def test_too_few_rows_is_a_clear_error():
    rng = np.random.default_rng(9)
    with pytest.raises(ModscopeError, match="at least 16 rows"):
        gaussian_mi(rng.standard_normal((15, 10)), rng.standard_normal((15, 5)))


def test_mi_curve_of_a_real_channel_stays_above_null_and_extrapolates_to_truth():
    from modscope.stats import mi_curve

    X, Y, truth = planted_channel(20_000, seed=10)
    curve = mi_curve(X, Y, points=6)
    assert curve.n[-1] == 20_000 and len(curve.n) == 6
    assert np.all(np.diff(curve.null_mean) < 0)  # the plug-in bias shrinks with n
    assert curve.mi_inf == pytest.approx(truth, rel=0.03)
    # the fit is kept, but the verdict does not state it: calibration found its error bar too narrow
    assert np.all(curve.z > 10) and curve.verdict.startswith("MI is above the exact Gaussian null")
    assert not curve.extrapolated and "No n→∞ extrapolation" in curve.verdict
    assert curve.mi[-1] == pytest.approx(gaussian_mi(X, Y).mi, rel=1e-10)


def test_mi_curve_of_independent_data_says_no_evidence():
    from modscope.stats import mi_curve

    rng = np.random.default_rng(11)
    curve = mi_curve(rng.standard_normal((5000, 10)), rng.standard_normal((5000, 10)), points=5)
    assert curve.verdict.startswith("No evidence of dependence")
    assert abs(curve.mi_inf) < 0.02
