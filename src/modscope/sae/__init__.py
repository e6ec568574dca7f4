"""Sparse autoencoders on any site of any model: training, logit-space features, density over training."""

from modscope.lazy import lazy_exports
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

# the evaluations, imported on first use
__getattr__ = lazy_exports(__name__, """
    features: feature_logits FeatureLogits
    splice: spliced_loss SplicedLoss
    evaluate: evaluate_reconstruction Reconstruction
""")

__all__ = [
    "SAE", "ActivationSource", "ArraySource", "DensityHistory", "FeatureLogits", "ModelSource", "Reconstruction",
    "ReluSAE", "SAEConfig", "SplicedLoss", "StoreSource", "TopKSAE", "TrainingLog", "density_history",
    "evaluate_reconstruction", "feature_firing_counts", "feature_logits", "load", "load_sae", "make_sae",
    "spliced_loss", "train",
]
