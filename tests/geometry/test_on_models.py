"""The model-facing layer and the CLI, on tiny models."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError
from modscope.geometry.anisotropy import anisotropy_study, model_weights
from modscope.geometry.gather import from_arrays, gather, site_depth
from modscope.geometry.study import cka_between, similarity_study

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny():
    from modscope.commands.common import cached_model

    return cached_model("tiny-gpt2")


@pytest.fixture(scope="module")
def corpus():
    from modscope import corpus

    return corpus.load("bundled")


def test_gather_splits_heads_orders_by_category_and_keeps_documents(tiny, corpus):
    gathered = gather(tiny, corpus, "head_out.0,resid_post.1", per_category=2, positions="last:3", ctx=64)
    assert gathered.sites == ["head_out.0.0", "head_out.0.1", "head_out.0.2", "head_out.0.3", "resid_post.1"]
    assert gathered.arrays["head_out.0.2"].shape == (30, 64)
    assert gathered.categories == corpus.categories
    starts = [gathered.labels.index(c) for c in gathered.categories]
    assert starts == sorted(starts)
    assert len(set(gathered.groups)) == 10


def test_site_depth_reads_layers_and_heads():
    assert site_depth("resid_post.3") == ("resid_post", 3.0)
    assert site_depth("head_out.2.5") == ("head_out.h5", 2.0)
    assert site_depth("embed") == ("embed", -1.0)


def test_similarity_study_finds_planted_categories_at_the_planted_site():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 12)
    centres = {"a": rng.normal(size=16), "b": rng.normal(size=16), "c": rng.normal(size=16)}
    planted = np.stack([centres[x] for x in labels]) + 0.3 * rng.normal(size=(36, 16))
    gathered = from_arrays({"resid_post.0": rng.normal(size=(36, 16)), "resid_post.1": planted}, labels)
    study = similarity_study(gathered, kinds=["cosine", "centred"], n_permutations=200)
    assert study.best("cosine")["site"] == "resid_post.1"
    assert study.best("centred")["z"] > 5
    noise = [r for r in study.rows if r["site"] == "resid_post.0"]
    assert all(abs(r["z"]) < 3 for r in noise)


def test_anisotropy_of_tiny_model_matches_brute_force_mean(tiny):
    weights = model_weights(tiny)
    study = anisotropy_study(weights, None, model=tiny.name, tied=tiny.tied_embeddings, bins=50)
    E = weights["W_E"].astype(np.float64)
    E = E[np.linalg.norm(E, axis=1) > 0]
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    cosines = (unit @ unit.T)[np.triu_indices(len(E), 1)]
    assert study.rows[0]["mean_raw"] == pytest.approx(cosines.mean(), abs=1e-10)
    assert study.weights["W_E"]["raw"].counts.sum() == len(cosines)
    assert ("W_U" in study.weights) != tiny.tied_embeddings


def test_cka_between_models_requires_aligned_rows():
    a = from_arrays({"resid_post.0": np.ones((6, 3)) * np.arange(6)[:, None]}, list("aabbcc"), model="m1")
    b = from_arrays({"resid_post.0": np.ones((6, 3))}, list("aabbcc"), groups=list("xxyyzz"), model="m2")
    with pytest.raises(ModscopeError, match="row-aligned"):
        cka_between(a, b)


def test_similarity_command_writes_page_with_twin(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(app, ["similarity", "--model", "tiny-gpt2", "--per-category", "2", "--positions",
                                 "last:3", "--ctx", "64", "--sites", "resid_post.*", "--kind", "cosine,scaled",
                                 "--permutations", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    # one study per model, plus the trained model's study without its massive coordinates and what was dropped
    assert set(payload["result"]) == {"tiny-gpt2", "random:tiny-gpt2", "without_massive", "massive"}
    assert set(payload["result"]["massive"]) == {"resid_post.0", "resid_post.1"}
    rows = payload["result"]["tiny-gpt2"]["rows"]
    assert {r["kind"] for r in rows} == {"cosine", "scaled"} and len(rows) == 4
    assert (out / "separation_vs_depth_cosine.png").exists() and (out / "index.html").exists()


def test_streams_and_cka_commands_print_json(tmp_path):
    result = runner.invoke(app, ["streams", "--model", "tiny-gpt2", "--per-category", "2", "--positions", "last:3",
                                 "--ctx", "64", "--dims", "3,7", "--permutations", "20", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["result"]["streams"]["shown"] == [3, 7]
    result = runner.invoke(app, ["cka", "--model", "tiny-gpt2", "--twin", "random", "--per-category", "2",
                                 "--positions", "last:3", "--ctx", "64", "--json"])
    assert result.exit_code == 0, result.output
    across = json.loads(result.stdout)["result"]["across"]
    assert len(across["diagonal"]) == 2


def test_bad_kind_is_a_modscope_error():
    result = runner.invoke(app, ["similarity", "--model", "tiny-gpt2", "--kind", "manhattan", "--twin", "none",
                                 "--per-category", "1", "--positions", "last:2", "--ctx", "32"])
    assert isinstance(result.exception, ModscopeError)


def test_anisotropy_with_the_dask_engine_equals_local():
    args = ["anisotropy", "--model", "tiny-gpt2", "--twin", "none", "--sites", "", "--json"]
    local, dask = runner.invoke(app, args), runner.invoke(app, [*args, "--engine", "dask"])
    assert local.exit_code == 0 and dask.exit_code == 0, dask.output
    rows_local, rows_dask = json.loads(local.stdout), json.loads(dask.stdout)
    assert json.dumps(rows_dask.get("result", rows_dask), sort_keys=True) == json.dumps(
        rows_local.get("result", rows_local), sort_keys=True)


def test_scheduler_without_dask_engine_is_an_error():
    result = runner.invoke(app, ["anisotropy", "--model", "tiny-gpt2", "--scheduler", "tcp://127.0.0.1:1"])
    assert isinstance(result.exception, ModscopeError) and "--engine dask" in str(result.exception)
