"""The shared shape of every probe result: a frozen dataclass with ``to_json()`` and ``plot(ax=None)``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, tuples and non-finite floats into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class Result:
    """Mixin for probe results (frozen dataclasses). Subclasses implement ``plot``; ``to_json`` is generic.

    Fields listed in ``_json_exclude`` (large matrices kept for plotting) are left out of the JSON.
    """

    _json_exclude: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name not in self._json_exclude:
                out[f.name] = jsonable(getattr(self, f.name))
        return out

    def plot(self, ax=None):  # pragma: no cover - every subclass overrides
        raise NotImplementedError
