"""The row sampler spans the corpus: balanced across categories, spread inside documents, exact in count."""

from collections import Counter

import numpy as np

from modscope.capture.sampling import balanced_rows, describe_rows


def _corpus(per_cat=(30, 10, 10, 5, 5), length=512):
    cats = [c for c, n in zip("abcde", per_cat) for _ in range(n)]
    return cats, [np.arange(length) for _ in cats]


def test_sample_is_balanced_across_categories_and_exact_in_count():
    cats, avail = _corpus()
    picked = balanced_rows(cats, avail, 4000, seed=0)
    assert sum(len(r) for _, r in picked) == 4000
    assert len(picked) == 40
    per_cat = Counter(cats[d] for d, _ in picked)
    # 40 documents round-robin over 5 categories, but d and e only have 5 each: the others take up the rest
    assert per_cat["d"] == 5 and per_cat["e"] == 5
    assert per_cat["b"] == per_cat["c"] == 10 and per_cat["a"] == 10


def test_every_prefix_is_close_to_balanced():
    cats, avail = _corpus((20, 20, 20, 20, 20))
    picked = balanced_rows(cats, avail, 500, seed=1)
    first_five = [cats[d] for d, _ in picked[:5]]
    assert sorted(first_five) == list("abcde")


def test_positions_are_spread_over_the_document():
    cats, avail = _corpus((2, 2, 2, 2, 2))
    picked = balanced_rows(cats, avail, 100, seed=0, rows_per_doc=10)
    for _, rows in picked:
        assert len(rows) == 10 and len(set(rows)) == 10
        assert rows.min() < 52 and rows.max() > 460  # centres of 10 strata of 512: 25 ... 486
    first = balanced_rows(cats, avail, 100, seed=0, rows_per_doc=10, spread=False)
    assert all((r == np.arange(10)).all() for _, r in first)


def test_short_documents_pull_in_more_documents():
    cats = ["a"] * 50 + ["b"] * 50
    avail = [np.arange(3) for _ in cats]
    picked = balanced_rows(cats, avail, 120, seed=0, rows_per_doc=100)
    assert sum(len(r) for _, r in picked) == 120
    assert len(picked) == 40 and Counter(cats[d] for d, _ in picked) == {"a": 20, "b": 20}


def test_everything_when_the_corpus_is_small_and_seed_changes_the_documents():
    cats, avail = _corpus((2, 1, 1, 1, 1), length=5)
    assert sum(len(r) for _, r in balanced_rows(cats, avail, 1000)) == 30
    cats, avail = _corpus()
    a = [d for d, _ in balanced_rows(cats, avail, 1000, seed=0)]
    b = [d for d, _ in balanced_rows(cats, avail, 1000, seed=1)]
    assert a != b and a == [d for d, _ in balanced_rows(cats, avail, 1000, seed=0)]


def test_describe_rows_says_what_the_rows_are():
    assert describe_rows(["news"] * 8 + ["code"] * 8, 4000) == "4,000 tokens from 16 documents (code 8, news 8)"
    assert describe_rows(["x"], 1) == "1 token from 1 document (x 1)"
