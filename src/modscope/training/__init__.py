"""Training dynamics: record per-step gradients, take their spectrum, test it against nulls and replays."""

from modscope.lazy import lazy_exports
from modscope.training.mnist import TrainRun, load_mnist, make_cnn, make_mlp, train_mnist
from modscope.training.nulls import NullCondition, parse_null
from modscope.training.recorder import GradientRecorder
from modscope.training.store import GradientStore

# the analyses, imported on first use
__getattr__ = lazy_exports(__name__, """
    spectrum: gradient_spectrum count_above gradient_svd GradSpectrum OutOfCoreSVD
    gram: compute_gram GradGram
    sampling: sampling_study
    replay: replay_projected
    analysis: analyse_gradients
    sweep: run_sweep
    modadd: train_modadd
    grokking: grokking_study
    memorization: counterfactual_memorization
""")

__all__ = ["GradGram", "GradSpectrum", "GradientRecorder", "GradientStore", "NullCondition", "OutOfCoreSVD",
           "TrainRun", "analyse_gradients", "compute_gram", "count_above", "counterfactual_memorization",
           "gradient_spectrum", "gradient_svd", "grokking_study", "load_mnist", "make_cnn", "make_mlp", "parse_null",
           "replay_projected", "run_sweep", "sampling_study", "train_mnist", "train_modadd"]
