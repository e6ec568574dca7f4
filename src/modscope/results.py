"""The shared shape of every probe result: a frozen dataclass with to_json/from_json, to_frame and plot."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from typing import Any, ClassVar

import numpy as np


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, tuples and non-finite floats into plain JSON values.

    A nested result is written by its own ``to_json`` (so its ``_json_exclude`` holds there too)."""
    if isinstance(value, Result):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that arrays survive: arrays by shape and values (NaN equals NaN), containers element-wise."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        numeric = a.dtype.kind in "biufc" and b.dtype.kind in "biufc"
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=numeric and a.dtype.kind in "fc"))
    if dataclasses.is_dataclass(a) and not isinstance(a, type) and type(a) is type(b):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.compare)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _float(value: Any) -> Any:
    """A JSON number back to a float: None was NaN, "inf"/"-inf" were infinities."""
    if value is None:
        return float("nan")
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    return value


def _array(value: Any) -> np.ndarray:
    if isinstance(value, list):
        value = [_array(v) if isinstance(v, list) else _float(v) for v in value]
    return np.asarray(value)


def from_jsonable(kind: Any, value: Any) -> Any:
    """Rebuild a value of type ``kind`` (a resolved annotation) from its ``jsonable`` form."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return from_jsonable(options[0], value) if len(options) == 1 else value
    if value is None and kind is not float:
        return None
    if kind is np.ndarray:
        return _array(value)
    if kind is float:
        return _float(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return kind.from_json(value) if issubclass(kind, Result) else _build(kind, value)
    if origin in (list, tuple) and isinstance(value, list):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        items = [from_jsonable(a, v) for a, v in zip(args, value)] if origin is tuple and args else \
            [from_jsonable(args[0], v) for v in value] if args else list(value)
        return tuple(items) if origin is tuple else items
    if origin is dict and args and isinstance(value, dict):
        return {from_jsonable(args[0], k): from_jsonable(args[1], v) for k, v in value.items()}
    if kind is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    aliases = getattr(cls, "_json_aliases", {})
    data = {aliases.get(k, k): v for k, v in data.items()}
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue  # derived in __post_init__
        if f.name in data:
            kwargs[f.name] = from_jsonable(hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = None  # left out of the JSON (``_json_exclude``): not recoverable
    return cls(**kwargs)


class Result:
    """Mixin for probe results (frozen dataclasses). Subclasses implement ``plot``; the rest is generic.

    - ``to_json()`` / ``from_json(data)``: plain JSON and back to the same type. Fields listed in
      ``_json_exclude`` (large matrices kept for plotting) are left out of the JSON and come back as None.
    - ``to_frame()``: a pandas DataFrame, for results that are a table: by default one row per element of the
      equal-length fields named in ``_frame_columns``; richer tables override it.
    - ``==`` compares arrays by value (``numpy.array_equal``, NaN equal to NaN) instead of raising.
    """

    _json_exclude: ClassVar[tuple[str, ...]] = ()
    _frame_columns: ClassVar[tuple[str, ...]] = ()
    _json_aliases: ClassVar[dict[str, str]] = {}  # old JSON key -> field, so older result.json files still load

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # @dataclass runs after this and keeps an __eq__/__hash__ the class already defines, so every result gets
        # the array-safe ones without repeating eq=False on each decorator.
        for name in ("__eq__", "__hash__"):
            if name not in cls.__dict__:
                setattr(cls, name, getattr(Result, name))

    def __eq__(self, other: object) -> bool:
        return same(self, other) if other.__class__ is self.__class__ else NotImplemented

    def __hash__(self) -> int:
        # only plain scalars: equal results have equal scalars (NaNs, whose hash is per object, are skipped)
        values = (getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return hash((type(self), *(v for v in values if isinstance(v, (str, int, float)) and v == v)))

    def to_json(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.name not in self._json_exclude}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str | os.PathLike):
        """The result saved by ``to_json``: a dict, JSON text, or a path to a probe's ``result.json``.

        Arrays come back as ``np.ndarray``, nested results as their types, ``None``/``"inf"`` as NaN/±inf in
        float fields. Fields left out of the JSON (``_json_exclude``) come back as None or their default.
        """
        if isinstance(data, os.PathLike) or (isinstance(data, str) and not data.lstrip().startswith("{")):
            with open(data, encoding="utf-8") as handle:
                data = json.load(handle)
        elif isinstance(data, str):
            data = json.loads(data)
        if "result" in data and "probe" in data:  # a whole result.json written by ``report.write_probe``
            data = data["result"]
        return _build(cls, data)

    def to_frame(self):
        """One row per element of the ``_frame_columns`` fields (None fields are left out)."""
        import pandas as pd

        if not self._frame_columns:
            raise TypeError(f"{type(self).__name__} is not a table; read its fields or to_json() instead")
        columns = {name: getattr(self, name) for name in self._frame_columns}
        return pd.DataFrame({name: list(v) for name, v in columns.items() if v is not None})

    def table(self, *args: Any, **kwargs: Any):
        """Old name of ``to_frame`` (kept for one release)."""
        return self.to_frame(*args, **kwargs)

    def plot(self, ax=None):  # pragma: no cover - every subclass overrides
        raise NotImplementedError
