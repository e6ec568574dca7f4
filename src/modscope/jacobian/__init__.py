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
from modscope.lazy import lazy_exports

# the model-facing probes, imported on first use
__getattr__ = lazy_exports(__name__, """
    probes: block_spectrum path_spectrum layer_ranks
    results: BlockSpectrum PathSpectrum LayerRanks
    compare: path_vs_covariance subspace_alignment SubspaceAlignment
    exact: exact_spectrum
""")

__all__ = [
    "BlockSpectrum", "JacobianSpectrum", "LayerRanks", "PathSpectrum", "RankComparison", "SpectralDensity",
    "SubspaceAlignment", "TokenwiseSpectrum", "block_spectrum", "compare_ranks", "exact_spectrum", "jacobian_matrix",
    "layer_ranks", "noise_floor", "operator", "path_spectrum", "path_vs_covariance", "rank_text", "singular_values",
    "slq_density", "subspace_alignment", "tokenwise_jacobians", "tokenwise_singular_values",
]
