"""NaN or inf reaching the statistics is one clear error, not a LinAlgError from deep inside numpy."""

import numpy as np
import pytest

from modscope import ModscopeError
from modscope.stats import gaussian_mi, spectrum
from modscope.stats.checks import require_finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_refused_by_gaussian_mi_and_spectrum(bad):
    X = np.random.default_rng(0).normal(size=(64, 5))
    X[17, 2] = bad
    with np.errstate(all="ignore"), pytest.raises(ModscopeError, match="X and Y contain NaN or inf"):
        gaussian_mi(X[:, :3], X[:, 3:])
    with np.errstate(all="ignore"), pytest.raises(ModscopeError, match="NaN or inf"):
        spectrum(X)


def test_require_finite_counts_the_bad_values():
    with pytest.raises(ModscopeError, match=r"H contains NaN or inf \(2 of 6 values\)"):
        require_finite(np.array([[1.0, np.nan, 3.0], [np.inf, 5.0, 6.0]]), "H")
    require_finite(np.arange(6).reshape(2, 3), "H")  # integers are always finite


@pytest.mark.parametrize("bad", [None, 3.0])
def test_a_scalar_instead_of_rows_is_one_clear_error(bad):
    from modscope.stats import covariance

    for call in (spectrum, covariance):
        with pytest.raises(ModscopeError, match=r"expected rows \[rows, features\].*got a scalar"):
            call(bad)
