"""Sparse autoencoders on any site of any model: training, logit-space features, density over training."""

from modscope.sae import relu as _relu  # noqa: F401 - registers the architecture
from modscope.sae import topk as _topk  # noqa: F401
from modscope.sae.base import SAE, load_sae, make_sae
from modscope.sae.config import SAEConfig
from modscope.sae.density import DensityHistory, density_history, feature_firing_counts
from modscope.sae.log import TrainingLog
from modscope.sae.relu import ReluSAE
from modscope.sae.sources import ActivationSource, ArraySource, ModelSource, StoreSource
from modscope.sae.topk import TopKSAE
from modscope.sae.trainer import train

load = load_sae  # ``modscope.sae.load(dir)``: either modscope's format or an SAE saved by SAELens

__all__ = [
    "SAE", "ActivationSource", "ArraySource", "DensityHistory", "ModelSource", "ReluSAE", "SAEConfig", "StoreSource",
    "TopKSAE", "TrainingLog", "density_history", "feature_firing_counts", "load", "load_sae", "make_sae", "train",
]
