"""Shared statistics: streaming covariance, Gaussian MI with exact nulls, spectra and block structure.

Public API (pure arrays in, frozen dataclasses out; float64 throughout):

- ``Covariance``: streaming mean/covariance accumulator (``update``, exact ``merge``, ``from_batch``).
- ``covariance(*sources)``: stream one source (numpy, Zarr, ``(store, site)``) or the joint of several.
- ``gaussian_mi(X, Y)`` -> ``MIResult``: plug-in, bias-corrected, exact null, z, permutation null.
- ``mi_null(n, dx, dy)``, ``logdet_bias(n, d)``: closed-form finite-sample maths behind them.
- ``mi_curve(X, Y)`` -> ``MICurve``: MI vs n with the null band, extrapolation to n → ∞ and a verdict.
- ``spectrum(X_or_cov)`` -> ``SpectrumResult``: eigenvalues, participation ratio, effective rank, tail
  exponent, Marchenko–Pastur and column-shuffle nulls.
- ``blocks(cov_or_corr)`` -> ``BlockResult``: block-revealing permutation, eigengap block count,
  modularity with a shuffle null.
- ``subspace(cov)``: numerical rank and whitening on the non-null subspace.
- ``find_massive(x)`` -> ``MassiveActivations``: coordinates and rows far above the median |x| (Sun et al. 2024).

The calibration of every verdict rule (it uses other probes' cores, so it sits above them) is
``modscope.calibration.calibrate``.
"""

from modscope.stats.block_structure import BlockResult, blocks
from modscope.stats.covariance import Covariance, covariance
from modscope.stats.curve import MICurve, mi_curve
from modscope.stats.massive import MassiveActivations, find_massive
from modscope.stats.mi import MIResult, gaussian_mi, mi_from_covariance
from modscope.stats.null import logdet_bias, mi_null
from modscope.stats.spectra import SpectrumResult, spectrum
from modscope.stats.subspace import Subspace, subspace

__all__ = ["BlockResult", "Covariance", "MICurve", "MIResult", "MassiveActivations", "SpectrumResult", "Subspace",
           "blocks", "covariance", "find_massive", "gaussian_mi", "logdet_bias", "mi_curve",
           "mi_from_covariance", "mi_null", "spectrum", "subspace"]


def __getattr__(name: str):
    if name == "calibrate":  # moved: stats is below the probes that calibration runs
        raise AttributeError("modscope.stats.calibrate moved to modscope.calibration.calibrate (same arguments)")
    raise AttributeError(f"module 'modscope.stats' has no attribute {name!r}")
