"""Token-position selectors: which positions of each document become rows of a capture."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from modscope.errors import ModscopeError

PositionSpec = str | int | Sequence[int] | None

HELP = "positions must be 'all', 'last:K', 'first:K', 'range:A:B', an integer, or a list of integers"


def normalise(spec: PositionSpec) -> str:
    """A canonical string for a position spec (stored in manifests so a resumed capture can be checked)."""
    if spec is None:
        return "all"
    if isinstance(spec, (int, np.integer)):
        return str(int(spec))
    if isinstance(spec, str):
        spec = spec.strip()
        if spec == "all" or re.fullmatch(r"(last|first):\d+|range:\d+:\d+|-?\d+(,-?\d+)*", spec):
            return spec
        raise ModscopeError(f"{HELP}; got '{spec}'")
    return ",".join(str(int(p)) for p in spec)


def select(spec: str, length: int) -> np.ndarray:
    """Positions (sorted, unique, within [0, length)) that ``spec`` picks from a document of ``length`` tokens.

    Positions that fall outside the document are dropped, e.g. ``range:475:512`` on a 300-token text gives none.
    """
    if spec == "all":
        return np.arange(length)
    kind, _, rest = spec.partition(":")
    if kind == "last":
        return np.arange(max(0, length - int(rest)), length)
    if kind == "first":
        return np.arange(min(length, int(rest)))
    if kind == "range":
        start, stop = (int(v) for v in rest.split(":"))
        return np.arange(min(start, length), min(stop, length))
    wanted = np.array([int(p) for p in spec.split(",")])
    wanted = np.where(wanted < 0, wanted + length, wanted)
    return np.unique(wanted[(wanted >= 0) & (wanted < length)])
