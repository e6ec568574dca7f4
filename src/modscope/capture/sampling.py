"""Which rows a capture keeps when fewer are asked for than the corpus holds: a seeded sample that spans the corpus.

Taking the first ``max_tokens`` rows in document order describes the first few documents only (on the bundled corpus:
news). ``balanced_rows`` instead spreads the rows over documents drawn round-robin across categories, and over
positions within each document, so that every prefix of the returned order is itself close to balanced.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

SAMPLES = ("balanced", "first")
ROWS_PER_DOC = 100  # target rows per document: 4,000 rows come from 40 documents


def balanced_rows(categories: Sequence[str], available: Sequence[np.ndarray], max_tokens: int, *, seed: int = 0,
                  rows_per_doc: int = ROWS_PER_DOC, spread: bool = True) -> list[tuple[int, np.ndarray]]:
    """Choose ``max_tokens`` rows spread across documents and categories.

    Documents are visited round-robin over the categories (sorted by name), each category's documents in a seeded
    random order, until there are about ``max_tokens / rows_per_doc`` of them (at least one per category where the
    corpus has it) and together they hold enough rows. The rows are then shared out as evenly as each document's
    length allows (water-filling), and inside a document they are evenly spaced over its available positions
    (``spread``) or the first ones.

    Args:
        categories: the category of each document.
        available: for each document, the positions it could contribute (ascending).
        max_tokens: the number of rows wanted.
        seed: seeds the order of documents inside each category.
        rows_per_doc: the target number of rows per document; it sets how many documents are used.
        spread: evenly spaced positions inside a document (True) or its first positions (False).

    Returns:
        ``(document index, positions)`` pairs in the visiting order (so a prefix of the rows stays balanced).
        If the documents hold no more than ``max_tokens`` rows in all, every row of every document is returned.
    """
    sizes = np.array([len(a) for a in available], dtype=np.int64)
    if sizes.sum() <= max_tokens:
        return [(i, np.asarray(available[i])) for i in range(len(available)) if sizes[i]]
    order = _round_robin(categories, sizes, seed)
    n_cats = len({categories[i] for i in order})
    wanted_docs = min(len(order), max(n_cats, math.ceil(max_tokens / rows_per_doc)))
    chosen = order[:wanted_docs]
    while sizes[chosen].sum() < max_tokens:  # short documents: add more until they hold enough rows
        chosen = order[: len(chosen) + 1]
    quota = _water_fill(sizes[chosen], max_tokens)
    picked = []
    for doc, k in zip(chosen, quota):
        if k:
            rows = np.asarray(available[doc])
            idx = _spaced(len(rows), int(k)) if spread else np.arange(int(k))
            picked.append((int(doc), rows[idx]))
    return picked


def describe_rows(categories: Sequence[str], n_rows: int) -> str:
    """One line saying what the rows are: ``"4,000 tokens from 40 documents (code 8, legal 8, news 8, ...)"``.

    Args:
        categories: the category of each document that contributed rows (one entry per document).
        n_rows: the number of rows (tokens).
    """
    counts = Counter(categories)
    per = ", ".join(f"{cat} {n}" for cat, n in sorted(counts.items()))
    docs = len(categories)
    return f"{n_rows:,} token{'s' * (n_rows != 1)} from {docs:,} document{'s' * (docs != 1)} ({per})"


def rows_summary(categories: Sequence[str], n_rows: int, *, sample: str | None = None, seed: int | None = None
                 ) -> dict:
    """What a set of rows is, for ``result.json`` and pages: counts, the sample that chose them and one sentence.

    Args:
        categories: the category of each document that contributed rows (one entry per document).
        n_rows: the number of rows. sample, seed: how they were chosen (``'balanced'``/``'first'``), if known.

    Returns:
        ``{"n_rows", "n_documents", "per_category": {category: documents}, "sample", "seed", "sentence"}``.
    """
    return {"n_rows": int(n_rows), "n_documents": len(categories),
            "per_category": dict(sorted(Counter(categories).items())), "sample": sample, "seed": seed,
            "sentence": describe_rows(categories, n_rows)}


def rows_note(rows: dict | None) -> str:
    """The sentence a verdict ends with: ``"Rows: 4,000 tokens from 40 documents (code 8, ...)."`` ('' if unknown)."""
    if not rows or not rows.get("sentence"):
        return ""
    how = {"balanced": f", a balanced sample (seed {rows.get('seed')})", "first": ", the first documents"}
    return f"Rows: {rows['sentence']}{how.get(rows.get('sample'), '')}."


def _round_robin(categories: Sequence[str], sizes: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pools = []
    for cat in sorted(set(categories)):
        members = np.array([i for i, c in enumerate(categories) if c == cat and sizes[i] > 0], dtype=np.int64)
        pools.append(rng.permutation(members))
    order = [int(i) for turn in itertools.zip_longest(*pools) for i in turn if i is not None]  # one of each, in turn
    return np.array(order, dtype=np.int64)


def _water_fill(capacity: np.ndarray, total: int) -> np.ndarray:
    """Integers q_i <= capacity_i summing to ``total``, as equal as possible (the earliest documents get the rest)."""
    quota = np.zeros(len(capacity), dtype=np.int64)
    left = total
    while left > 0:
        open_ = np.flatnonzero(quota < capacity)
        share = max(1, left // len(open_))
        for i in open_:
            add = min(share, capacity[i] - quota[i], left)
            quota[i] += add
            left -= add
    return quota


def _spaced(n: int, k: int) -> np.ndarray:
    """``k`` distinct indices evenly spread over ``range(n)``: the centre of each of k equal strata."""
    return ((np.arange(k) + 0.5) * n / k).astype(np.int64)
