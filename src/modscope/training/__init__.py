"""Training dynamics: record per-step gradients, take their spectrum, test it against nulls and replays."""

from modscope.training.mnist import TrainRun, load_mnist, make_cnn, make_mlp, train_mnist
from modscope.training.nulls import NullCondition, parse_null
from modscope.training.recorder import GradientRecorder
from modscope.training.store import GradientStore

__all__ = ["GradientRecorder", "GradientStore", "NullCondition", "TrainRun", "load_mnist", "make_cnn",
           "make_mlp", "parse_null", "train_mnist"]
