"""Modules in the weights: spectral clusterability of neuron graphs against a shuffled-weights null."""

from modscope.lazy import lazy_exports
from modscope.weights.clusterability import ClusterResult, clusterability
from modscope.weights.graph import layered_adjacency, ncut
from modscope.weights.null import compare_lower, shuffle_within_layers
from modscope.weights.spectral import SpectralPartition, kmeans, spectral_clusters, spectral_embedding

# the model-facing calls, imported on first use
__getattr__ = lazy_exports(__name__, """
    summary: network_clusterability NetworkClusterability
    models: model_mlp_blocks mlp_weights
""")

__all__ = [
    "ClusterResult", "NetworkClusterability", "SpectralPartition", "clusterability", "compare_lower", "kmeans",
    "layered_adjacency", "mlp_weights", "model_mlp_blocks", "ncut", "network_clusterability",
    "shuffle_within_layers", "spectral_clusters", "spectral_embedding",
]
