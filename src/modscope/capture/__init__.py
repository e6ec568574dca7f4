"""Capture: stream sites of a model over texts into an ActivationStore (RAM or a resumable Zarr directory).

``from modscope import capture`` gives this package, which is also callable: ``capture(model, texts, sites)`` is
``modscope.capture.run.capture`` (the package keeps its attributes: ``capture.ActivationStore``, ...).
"""

import sys
import types

from modscope.capture.run import capture
from modscope.capture.store import ActivationStore

__all__ = ["ActivationStore", "capture", "capture_sharded"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return capture(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage


def __getattr__(name: str):
    if name == "capture_sharded":  # imported on use: it starts process pools / Dask
        from modscope.capture.sharded import capture_sharded

        return capture_sharded
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
