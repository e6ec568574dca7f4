"""Corpus: categorised texts from offline packages (``load("bundled")``) or from the user's files."""

from __future__ import annotations

from pathlib import Path

from modscope.corpus.bundled import VERSION, build_bundled
from modscope.corpus.corpus import Corpus, Document, from_directory, from_jsonl, from_texts
from modscope.errors import ModscopeError
from modscope.paths import cache_dir

__all__ = ["Corpus", "Document", "from_texts", "load"]


def load(name_or_path: str | Path = "bundled") -> Corpus:
    """Load a corpus.

    Args:
        name_or_path: ``"bundled"`` (news, science, code, legal, documentation; built from installed packages at
            first use and cached), a directory of ``.txt`` files (category = sub-folder), or a ``.jsonl`` file with
            ``text`` and ``category`` fields.

    Returns:
        A ``Corpus``.
    """
    if str(name_or_path) == "bundled":
        cached = cache_dir("corpus") / f"bundled-v{VERSION}.jsonl"
        if cached.exists():
            return from_jsonl(cached, name="bundled")
        corpus = build_bundled()
        corpus.to_jsonl(cached)
        return corpus
    path = Path(name_or_path)
    if path.is_dir():
        return from_directory(path)
    if path.is_file() and path.suffix == ".jsonl":
        return from_jsonl(path)
    raise ModscopeError(
        f"corpus '{name_or_path}' not found: use 'bundled', a directory of .txt files (category = sub-folder) "
        "or a .jsonl file"
    )
