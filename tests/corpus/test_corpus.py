"""Corpora: the bundled categories, user directories and .jsonl files, and clear errors."""

import json

import pytest

from modscope import ModscopeError, corpus
from modscope.corpus.bundled import MIN_CHARS


def test_bundled_corpus_has_five_categories_of_long_documents():
    c = corpus.load("bundled")
    counts = c.counts()
    assert set(counts) >= {"news", "science", "code", "legal", "documentation"}
    assert all(n >= 8 for n in counts.values()), counts
    assert all(len(d.text) >= MIN_CHARS for d in c.docs)
    assert len({d.id for d in c.docs}) == len(c)


def test_sample_draws_per_category_reproducibly():
    c = corpus.load("bundled")
    a, b = c.sample(3, seed=1), c.sample(3, seed=1)
    assert [d.id for d in a] == [d.id for d in b]
    assert a.counts() == {cat: 3 for cat in c.categories}
    assert [d.id for d in c.sample(3, seed=2)] != [d.id for d in a]


def test_directory_categories_come_from_subfolders(tmp_path):
    for cat, text in [("poems", "roses are red"), ("recipes", "add two eggs")]:
        (tmp_path / cat).mkdir()
        (tmp_path / cat / "one.txt").write_text(text)
    c = corpus.load(tmp_path)
    assert c.counts() == {"poems": 1, "recipes": 1}
    assert c.docs[1].text == "add two eggs"


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "category": k}) for t, k in [("a b", "x"), ("c d", "y")]))
    c = corpus.load(path)
    assert c.texts == ["a b", "c d"] and c.categories == ["x", "y"]
    c.to_jsonl(tmp_path / "copy.jsonl")
    assert corpus.load(tmp_path / "copy.jsonl").docs == c.docs


def test_bad_corpora_are_clear_errors(tmp_path):
    with pytest.raises(ModscopeError, match="no documents"):
        corpus.load(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"category": "x"}\n')
    with pytest.raises(ModscopeError, match="'text' field"):
        corpus.load(tmp_path / "bad.jsonl")
    with pytest.raises(ModscopeError, match="not found"):
        corpus.load(tmp_path / "missing")


@pytest.mark.parametrize("content, message", [
    (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', r"c.jsonl:2 is not valid UTF-8"),
    (b'{"text": null}\n', r"c.jsonl:1: 'text' must be a string, got null"),
    (b'{"text": 42}\n', r"c.jsonl:1: 'text' must be a string, got 42"),
    (b'{"text": ["a"]}\n', r"c.jsonl:1: 'text' must be a string"),
])
def test_jsonl_that_is_not_utf8_or_has_non_string_text_is_refused_naming_the_line(tmp_path, content, message):
    (tmp_path / "c.jsonl").write_bytes(content)
    with pytest.raises(ModscopeError, match=message):
        corpus.load(tmp_path / "c.jsonl")


def test_a_directory_file_that_is_not_utf8_is_refused_not_garbled(tmp_path):
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "a.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ModscopeError, match=r"a.txt is not valid UTF-8"):
        corpus.load(tmp_path)
