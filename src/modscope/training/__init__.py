"""Training dynamics: record per-step gradients, take their spectrum, test it against nulls and replays."""

from modscope.lazy import lazy_exports
from modscope.training.mnist import TrainRun, load_mnist, make_cnn, make_mlp, train_mnist
from modscope.training.nulls import NullCondition, parse_null
from modscope.training.recorder import GradientRecorder
from modscope.training.store import GradientStore

# the analyses, imported on first use
__getattr__ = lazy_exports(__name__, {
    "gradient_spectrum": "modscope.training.spectrum", "count_above": "modscope.training.spectrum",
    "gradient_svd": "modscope.training.spectrum", "GradSpectrum": "modscope.training.spectrum",
    "OutOfCoreSVD": "modscope.training.spectrum", "compute_gram": "modscope.training.gram",
    "GradGram": "modscope.training.gram", "sampling_study": "modscope.training.sampling",
    "replay_projected": "modscope.training.replay", "analyse_gradients": "modscope.training.analysis",
    "run_sweep": "modscope.training.sweep", "train_modadd": "modscope.training.modadd",
    "grokking_study": "modscope.training.grokking", "counterfactual_memorization": "modscope.training.memorization",
})

__all__ = ["GradGram", "GradSpectrum", "GradientRecorder", "GradientStore", "NullCondition", "OutOfCoreSVD",
           "TrainRun", "analyse_gradients", "compute_gram", "count_above", "counterfactual_memorization",
           "gradient_spectrum", "gradient_svd", "grokking_study", "load_mnist", "make_cnn", "make_mlp", "parse_null",
           "replay_projected", "run_sweep", "sampling_study", "train_mnist", "train_modadd"]
