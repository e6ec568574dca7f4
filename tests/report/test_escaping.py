"""User text reaches the HTML pages escaped: document text (SAE contexts) and category (folder) names."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modscope.corpus import from_directory
from modscope.report import Number, build_index, write_probe
from modscope.results import Result
from modscope.sae.page import SAEReport, write_report

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FOLDER_SCRIPT = "<script>alert(1)"  # a folder name cannot hold '/', so the closing tag is left out


def _corpus(root):
    for folder in (IMG, FOLDER_SCRIPT):
        (root / "corpus" / folder).mkdir(parents=True)
        (root / "corpus" / folder / "doc.txt").write_text(f"before {SCRIPT} and {IMG} after")
    return from_directory(root / "corpus")


def test_document_text_and_category_names_are_escaped_in_every_page(tmp_path):
    corpus = _corpus(tmp_path)
    assert set(corpus.categories) == {IMG, FOLDER_SCRIPT}
    run = tmp_path / "run"
    categories = pd.DataFrame({"category": corpus.categories, "n": [1, 1]})
    write_probe(run / "similarity", probe="similarity", title=f"Similarity of {corpus.categories[0]}",
                question=f"Are {FOLDER_SCRIPT} documents alike?", result=_result(),
                headline=[f"category {c} stands apart" for c in corpus.categories]
                + [Number(label=f"separation of {IMG}", value=1.0, unit=SCRIPT, null=0.0, null_sd=1.0,
                          null_name=FOLDER_SCRIPT)],
                verdict=f"{IMG} is separated", tables={f"by {FOLDER_SCRIPT}": categories},
                settings={"categories": corpus.categories, "corpus": corpus.texts[0]})
    examples = [{"activation": 2.0, "context": d.text} for d in corpus.docs]
    report = SAEReport(config={}, meta={"model": IMG, "site": FOLDER_SCRIPT}, reconstruction={}, spliced=None,
                       density={}, features=[], contexts=[{"feature": 0, "examples": examples}],
                       tokens_per_second=1.0)
    write_report(run / "sae", report, settings={"corpus": corpus.texts})
    build_index(run, title=f"run on {IMG}")
    pages = sorted(run.rglob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        for payload in (SCRIPT, IMG, FOLDER_SCRIPT, "<img", "<script"):
            assert payload not in text, f"{payload!r} unescaped in {page}"
    sae_page = (run / "sae" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sae_page  # the context is shown, escaped
    assert "&lt;img src=x onerror=alert(1)&gt;" in (run / "similarity" / "index.html").read_text()


def _result():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Value(Result):
        values: np.ndarray

        def plot(self, ax=None):
            from modscope.figures import axes

            ax = axes(ax)
            ax.plot(self.values)
            return ax

    return Value(np.arange(3.0))
