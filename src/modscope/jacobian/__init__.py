"""Jacobian spectra: matrix-free operators, singular values with a stated noise floor, and sublayer/path maps."""

from modscope.jacobian.operator import jacobian_matrix, operator, tokenwise_jacobians
from modscope.jacobian.rank import RankComparison, compare_ranks, rank_text
from modscope.jacobian.slq import SpectralDensity, slq_density
from modscope.jacobian.spectrum import (
    JacobianSpectrum,
    TokenwiseSpectrum,
    noise_floor,
    singular_values,
    tokenwise_singular_values,
)

__all__ = [
    "JacobianSpectrum", "RankComparison", "SpectralDensity", "TokenwiseSpectrum", "compare_ranks", "jacobian_matrix",
    "noise_floor", "operator", "rank_text", "singular_values", "slq_density", "tokenwise_jacobians",
    "tokenwise_singular_values",
]
