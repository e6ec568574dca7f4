"""Capture: stream sites of a model over texts into an ActivationStore (RAM or a resumable Zarr directory)."""

from modscope.capture.run import capture
from modscope.capture.store import ActivationStore

__all__ = ["ActivationStore", "capture"]
