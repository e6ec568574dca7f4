"""Shared statistics: streaming covariance, Gaussian MI with exact nulls, spectra and block structure."""

from modscope.stats.covariance import Covariance, covariance
from modscope.stats.mi import MIResult, gaussian_mi, mi_from_covariance
from modscope.stats.null import logdet_bias, mi_null
from modscope.stats.subspace import Subspace, subspace

__all__ = ["Covariance", "MIResult", "Subspace", "covariance", "gaussian_mi", "logdet_bias", "mi_from_covariance",
           "mi_null", "subspace"]
