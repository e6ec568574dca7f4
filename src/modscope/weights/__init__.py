"""Modules in the weights: spectral clusterability of neuron graphs against a shuffled-weights null."""

from modscope.weights.clusterability import ClusterResult, clusterability
from modscope.weights.graph import layered_adjacency, ncut
from modscope.weights.null import compare_lower, shuffle_within_layers
from modscope.weights.spectral import kmeans, spectral_clusters, spectral_embedding

__all__ = [
    "ClusterResult", "clusterability", "compare_lower", "kmeans", "layered_adjacency", "ncut",
    "shuffle_within_layers", "spectral_clusters", "spectral_embedding",
]
