"""capture(max_tokens=...) draws a balanced sample of the corpus, records it, and every probe page says what the rows
are; stores from before sampling keep opening and resuming."""

import json

import pytest

from modscope.capture import ActivationStore, capture
from modscope.corpus import from_texts
from modscope.errors import ModscopeError

CATEGORIES = ("code", "legal", "news", "poetry", "science")


def _corpus(per_category=6):
    cats = [c for c in CATEGORIES for _ in range(per_category)]
    texts = [f"{c} document {i}: " + " ".join(f"{c}{i}word{j}" for j in range(40)) for i, c in enumerate(cats)]
    return from_texts(texts, cats, name="tiny-categorised")


def test_balanced_capture_draws_rows_from_every_category(tiny_gpt2):
    corpus = _corpus()
    store = capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=300, ctx=48, progress=False)
    meta = store.meta
    assert store.n_rows == 300
    assert set(meta["category"]) == set(CATEGORIES)  # news is the 3rd category: 'first' would never reach it
    counts = meta["category"].value_counts()
    assert counts.max() - counts.min() <= 48  # each category within one document's worth of rows
    assert store.settings["sample"] == "balanced" and store.settings["seed"] == 0
    # positions spread over each document (positions='all'), not only its first tokens
    assert meta.groupby("doc")["position"].max().min() > 20
    rows = store.rows_description()
    assert rows["n_rows"] == 300 and set(rows["per_category"]) == set(CATEGORIES)
    assert rows["sentence"].startswith("300 tokens from ") and rows["sample"] == "balanced"


def test_first_sample_is_the_old_document_order(tiny_gpt2):
    store = capture(tiny_gpt2, _corpus(), "resid_post.0", max_tokens=300, ctx=48, progress=False, sample="first")
    assert set(store.meta["category"]) == {"code", "legal"}  # 300 rows from the first 48-token documents
    assert store.rows_description()["sample"] == "first"


def test_explicit_positions_are_kept_and_documents_still_balanced(tiny_gpt2):
    store = capture(tiny_gpt2, _corpus(), "resid_post.0", positions="last:4", max_tokens=40, ctx=48, progress=False)
    meta = store.meta
    assert set(meta["category"]) == set(CATEGORIES)
    assert (meta.groupby("doc")["position"].max() == 47).all()
    assert (meta.groupby("doc")["position"].min() >= 44).all()


def test_resume_cannot_change_the_sample(tiny_gpt2, tmp_path):
    corpus, out = _corpus(), tmp_path / "store"
    capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=200, ctx=48, out=out, progress=False)
    with pytest.raises(ModscopeError, match="other sites or settings"):
        capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=200, ctx=48, out=out, progress=False, seed=1)
    with pytest.raises(ModscopeError, match="sample must be one of"):
        capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=200, ctx=48, progress=False, sample="random")


def test_store_from_before_sampling_opens_and_resumes(tiny_gpt2, tmp_path):
    corpus, out = _corpus(), tmp_path / "old"
    capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=200, ctx=48, out=out, progress=False, sample="first")
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("sample", "seed"):
        del manifest["settings"][key]  # what an earlier modscope wrote
    (out / "manifest.json").write_text(json.dumps(manifest))
    old = ActivationStore.open(out)
    assert old.n_rows == 200 and old.rows_description()["sample"] == "first"
    with pytest.raises(ModscopeError, match="--sample first"):  # balanced rows differ from the old ones
        capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=200, ctx=48, out=out, progress=False)
    again = capture(tiny_gpt2, corpus, "resid_post.0", max_tokens=200, ctx=48, out=out, progress=False,
                    sample="first")
    assert again.n_rows == 200


def test_probe_result_json_and_verdict_say_what_the_rows_are(tiny_gpt2, tmp_path):
    from modscope.geometry.reports import cka_report

    cka_report(tiny_gpt2, None, _corpus(), sites="resid_post.*", per_category=2, positions="last:5", ctx=48,
               out=tmp_path / "cka")
    payload = json.loads((tmp_path / "cka" / "result.json").read_text())
    rows = payload["settings"]["rows"]
    assert rows["n_rows"] == 50 and rows["n_documents"] == 10
    assert rows["per_category"] == {c: 2 for c in CATEGORIES}
    assert rows["sentence"] == "50 tokens from 10 documents (code 2, legal 2, news 2, poetry 2, science 2)"
    assert rows["sentence"] in payload["verdict"]
    assert rows["sentence"] in (tmp_path / "cka" / "index.html").read_text()
