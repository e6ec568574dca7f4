"""Representation geometry: similarity matrices, category separation, CKA, PCA, anisotropy, stream diagrams."""

from modscope.geometry.cka import CKAMap, cka, cka_map
from modscope.geometry.histogram import HistogramResult, cosine_histogram
from modscope.geometry.lowrank import LowRankSplit, low_rank_split
from modscope.geometry.pca import PCAResult, pca
from modscope.geometry.separation import SeparationResult, separation
from modscope.geometry.similarity import KINDS, similarity
from modscope.geometry.streams import StreamRanking, rank_stream_dimensions

__all__ = [
    "KINDS", "CKAMap", "HistogramResult", "LowRankSplit", "PCAResult", "SeparationResult", "StreamRanking", "cka",
    "cka_map", "cosine_histogram", "low_rank_split", "pca", "rank_stream_dimensions", "separation", "similarity",
]
