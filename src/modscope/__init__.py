"""modscope: find modules and information channels inside neural networks with linear algebra.

The first calls: ``load_model``, ``corpus.load``, ``capture(model, texts, sites)``; each probe package's
``__init__`` exports its own (``modscope.stats.gaussian_mi``, ``modscope.jacobian.block_spectrum``, ...).
"""

import importlib

from modscope.errors import ModscopeError
from modscope.models import Model, load_model

__version__ = "0.1.0"

__all__ = ["Model", "ModscopeError", "__version__", "capture", "corpus", "load_model"]


def __getattr__(name: str):
    if name in ("capture", "corpus"):  # ``modscope.capture(...)``, ``modscope.corpus.load(...)`` without an import
        return importlib.import_module(f"modscope.{name}")
    raise AttributeError(f"module 'modscope' has no attribute {name!r}")
