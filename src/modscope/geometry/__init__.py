"""Representation geometry: similarity matrices, category separation, CKA, PCA, anisotropy, stream diagrams."""

from modscope.geometry.cka import CKAMap, cka, cka_map
from modscope.geometry.gather import Gathered, gather
from modscope.geometry.histogram import HistogramResult, cosine_histogram
from modscope.geometry.lowrank import LowRankSplit, low_rank_split
from modscope.geometry.pca import PCAResult, pca
from modscope.geometry.separation import SeparationResult, separation
from modscope.geometry.similarity import KINDS, similarity
from modscope.geometry.streams import StreamRanking, rank_stream_dimensions
from modscope.lazy import lazy_exports

# the model-facing studies, imported on first use
__getattr__ = lazy_exports(__name__, """
    study: similarity_study SimilarityStudy
    clusters: site_clusters SiteClusters
    anisotropy: anisotropy_study
""")

__all__ = [
    "KINDS", "CKAMap", "Gathered", "HistogramResult", "LowRankSplit", "PCAResult", "SeparationResult",
    "SimilarityStudy", "SiteClusters", "StreamRanking", "anisotropy_study", "cka", "cka_map", "cosine_histogram",
    "gather", "low_rank_split", "pca", "rank_stream_dimensions", "separation", "similarity", "similarity_study",
    "site_clusters",
]
