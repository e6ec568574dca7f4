"""``Corpus``: categorised documents, loaded from the bundled offline sources or from the user's files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modscope.errors import ModscopeError
from modscope.paths import write_text_atomic


@dataclass(frozen=True)
class Document:
    """One text with a stable id (``category/name``) and its category."""

    id: str
    category: str
    text: str


@dataclass(frozen=True)
class Corpus:
    """An ordered, immutable collection of documents."""

    docs: tuple[Document, ...]
    name: str = ""

    def __post_init__(self):
        if not self.docs:
            raise ModscopeError(f"corpus '{self.name}' has no documents: give a non-empty directory or .jsonl file")

    def __len__(self) -> int:
        return len(self.docs)

    def __iter__(self):
        return iter(self.docs)

    @property
    def categories(self) -> list[str]:
        """Categories in order of first appearance."""
        return list(dict.fromkeys(d.category for d in self.docs))

    @property
    def texts(self) -> list[str]:
        return [d.text for d in self.docs]

    def counts(self) -> dict[str, int]:
        return {c: sum(d.category == c for d in self.docs) for c in self.categories}

    def sample(self, per_category: int = 3, *, seed: int = 0, categories: Sequence[str] | None = None) -> Corpus:
        """``per_category`` documents drawn without replacement from each category (all if fewer), seeded."""
        chosen_cats = list(categories) if categories else self.categories
        unknown = set(chosen_cats) - set(self.categories)
        if unknown:
            raise ModscopeError(f"unknown categories {sorted(unknown)}; this corpus has {self.categories}")
        rng = np.random.default_rng(seed)
        picked: list[Document] = []
        for cat in chosen_cats:
            pool = [d for d in self.docs if d.category == cat]
            idx = sorted(rng.choice(len(pool), size=min(per_category, len(pool)), replace=False))
            picked += [pool[i] for i in idx]
        return Corpus(tuple(picked), name=f"{self.name}[{per_category}/category]")

    def to_jsonl(self, path: str | Path) -> None:
        """Write one JSON object per document (the format ``from_jsonl`` reads), atomically."""
        lines = (json.dumps({"id": d.id, "category": d.category, "text": d.text}) for d in self.docs)
        write_text_atomic(path, "\n".join(lines) + "\n")


def from_jsonl(path: str | Path, *, name: str | None = None) -> Corpus:
    """Read a .jsonl file (UTF-8) with a string ``text`` field and optional ``category`` and ``id`` per line."""
    path = Path(path)
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ModscopeError(f"{path}:{line} is not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    docs = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = row["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ModscopeError(f"{path}:{i + 1} is not a JSON object with a 'text' field") from None
        if not isinstance(text, str):
            raise ModscopeError(f"{path}:{i + 1}: 'text' must be a string, got {json.dumps(text)[:40]}")
        category = str(row.get("category", "default"))
        docs.append(Document(str(row.get("id", f"{category}/{i}")), category, text))
    return Corpus(tuple(docs), name=name or path.stem)


def from_directory(path: str | Path) -> Corpus:
    """Read every ``.txt`` under ``path``; a file's category is its sub-folder (``default`` at the top level)."""
    path = Path(path)
    docs = []
    for file in sorted(path.rglob("*.txt")):
        rel = file.relative_to(path)
        category = rel.parts[0] if len(rel.parts) > 1 else "default"
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ModscopeError(f"{file} is not valid UTF-8 (byte {exc.start}); save it as UTF-8") from None
        docs.append(Document(rel.with_suffix("").as_posix(), category, text))
    return Corpus(tuple(docs), name=path.name)


def from_texts(texts: Iterable[str], categories: Iterable[str] | None = None, *, name: str = "texts") -> Corpus:
    texts = list(texts)
    cats = list(categories) if categories is not None else ["default"] * len(texts)
    return Corpus(tuple(Document(f"{c}/{i}", c, t) for i, (t, c) in enumerate(zip(texts, cats))), name=name)
