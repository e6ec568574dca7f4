"""Verdict wording: counts agree with their nouns, and a headline names the subset it measured."""

import re

import pytest

from modscope.commands.common import cached_model
from modscope.corpus import load as load_corpus
from modscope.geometry.anisotropy import anisotropy_study, model_weights, weight_rows
from modscope.geometry.figures import histogram_grid
from modscope.geometry.reports import anisotropy_report, streams_report
from modscope.report.numbers import plural


@pytest.mark.parametrize("count, noun, form, expected", [
    (1, "direction", None, "1 direction"),
    (0, "direction", None, "0 directions"),
    (2, "single dimension", None, "2 single dimensions"),
    (1, "single dimension", None, "1 single dimension"),
    (49152, "row", None, "49,152 rows"),
    (3, "pass", None, "3 passes"),
    (2, "matrix", "matrices", "2 matrices"),
    (1.0, "site", None, "1 site"),
])
def test_plural_agrees_count_and_noun(count, noun, form, expected):
    assert plural(count, noun, form) == expected


def test_plural_keeps_fractional_counts():
    assert plural(2.5, "token", digits=2) == "2.5 tokens"


@pytest.fixture(scope="module")
def tiny():
    return cached_model("tiny-gpt2")


def study_of(model, rows):
    return anisotropy_study(model_weights(model, vocab_rows=rows), None, model=model.name,
                            tied=model.tied_embeddings, bins=20, total_rows=weight_rows(model))


def test_anisotropy_headline_names_the_sampled_subset_of_rows(tiny):
    total = weight_rows(tiny)["W_E"]
    sampled = anisotropy_report([tiny], None, sites="", vocab_rows=40)
    we = sampled["headline"][0]
    assert f"all pairs of a seeded sample of 40 of {total:,} rows (a subset)" in we
    assert f"({40 * 39 // 2:,} pairs)" in we
    titles = [ax.get_title() for ax in histogram_grid([study_of(tiny, 40)]).axes]
    assert f"W_E (sample of 40 of {total:,} rows)" in titles[0]
    whole = anisotropy_report([tiny], None, sites="")["headline"][0]
    assert f"all pairs of all {total:,} rows" in whole and "subset" not in whole


def test_anisotropy_study_records_total_rows_next_to_the_sample(tiny):
    weights = model_weights(tiny, vocab_rows=25)
    study = anisotropy_study(weights, None, model=tiny.name, tied=tiny.tied_embeddings, bins=20,
                             total_rows=weight_rows(tiny))
    row = study.rows[0]
    assert row["n_rows"] == 25 and row["n_rows_total"] == tiny.W_E.shape[0]
    assert study.to_json()["total_rows"]["W_E"] == tiny.W_E.shape[0]


def test_streams_verdict_states_its_null_and_never_says_1_dimensions(tiny):
    corpus = load_corpus("bundled")
    result = streams_report(tiny, corpus, per_category=2, positions="last:3", ctx=64, n_permutations=20)
    verdict = result["verdict"]
    assert "1 single dimensions" not in verdict and "label permutations" in verdict
    assert "samples" in verdict and "site" in verdict
    n_sig = int(re.match(r"(\d+) of ", result["headline"][1]).group(1))
    assert verdict.startswith({0: "No single dimension", 1: "1 single dimension carries"}.get(
        n_sig, f"{n_sig} single dimensions carry"))
