"""Lazy package faces: names a package exports without importing their (heavier) modules until first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``package``.

    Args:
        package: the package's ``__name__``.
        table: one line per submodule, ``"submodule: name name ..."``: the names it defines that the package
            exports. A name must not be a submodule's own name (the import system would bind the module there).

    The first access imports the submodule and caches the name on the package, so later lookups are plain.
    """
    where = {}
    for line in table.strip().splitlines():
        module, _, names = line.partition(":")
        where.update({name: f"{package}.{module.strip()}" for name in names.split()})

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
