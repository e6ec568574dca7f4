"""Jacobian spectra: matrix-free operators, singular values with a stated noise floor, and sublayer/path maps."""

from modscope.jacobian.operator import jacobian_matrix, operator, tokenwise_jacobians
from modscope.jacobian.slq import SpectralDensity, slq_density
from modscope.jacobian.spectrum import (
    JacobianSpectrum,
    TokenwiseSpectrum,
    noise_floor,
    singular_values,
    tokenwise_singular_values,
)

__all__ = [
    "JacobianSpectrum", "SpectralDensity", "TokenwiseSpectrum", "jacobian_matrix", "noise_floor", "operator",
    "singular_values", "slq_density", "tokenwise_jacobians", "tokenwise_singular_values",
]
