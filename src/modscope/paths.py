"""Where modscope caches converted models and built corpora (``MODSCOPE_CACHE`` overrides the default)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import platformdirs


def cache_dir(*parts: str) -> Path:
    """Return ``$MODSCOPE_CACHE/<parts>`` (default ``~/.cache/modscope``), creating it."""
    root = Path(os.environ.get("MODSCOPE_CACHE") or platformdirs.user_cache_dir("modscope"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file so that a reader sees either the old file or the whole new one, never a torn write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (see ``write_text_atomic``)."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default))


def replace_dir_atomic(tmp: Path, final: Path) -> None:
    """Move a fully written temporary directory into place (the final path never holds half a result)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.integer, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
