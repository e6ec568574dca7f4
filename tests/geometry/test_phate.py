"""PHATE (seed 001): an optional extra. The error without it, the embedding of planted clusters with it, and the
category score that compares the PHATE picture with the PCA one."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.geometry.phate_embed import category_knn_accuracy, parse_embed, top2_pca

HAS_PHATE = importlib.util.find_spec("phate") is not None
needs_phate = pytest.mark.skipif(
    not HAS_PHATE, reason="the optional extra 'phate' is not installed (pip install 'modscope[phate]', or run "
                          "this file with benchmarks/.venv-phate/bin/python after benchmarks/make_peer_venv.sh phate)")


def planted(n=300, d=32, k=3, seed=0):
    """k Gaussian clusters (sd 0.5) around centres of sd 2, on a shared offset."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2
    labels = rng.integers(0, k, n)
    return rng.normal(size=d) * 3 + centres[labels] + rng.normal(size=(n, d)) * 0.5, labels


def brute_force_knn_accuracy(x, labels, k=5):
    """Leave-one-out k-NN by loops: commonest label among the k nearest; a tie goes to the nearest tied label."""
    right = 0
    for i in range(len(x)):
        order = [j for j in np.argsort(np.linalg.norm(x - x[i], axis=1), kind="stable") if j != i][:k]
        votes = [labels[j] for j in order]
        best = max(votes.count(v) for v in votes)
        right += next(v for v in votes if votes.count(v) == best) == labels[i]
    return right / len(x)


def test_embed_phate_without_the_package_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_phate(name, *args, **kwargs):
        if name == "phate":
            raise ImportError("no phate")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_phate)
    with pytest.raises(ModscopeError, match="pip install 'modscope\\[phate\\]'"):
        parse_embed("pca,phate")
    assert parse_embed("pca") == ["pca"]
    with pytest.raises(ModscopeError):
        parse_embed("tsne")


def test_category_knn_accuracy_equals_brute_force_with_ties():
    rng = np.random.default_rng(3)
    x, labels = rng.normal(size=(60, 2)), rng.integers(0, 3, 60)  # 3 labels, 5 votes: 2-2-1 ties happen
    accuracy, null = category_knn_accuracy(x, labels, permutations=50)
    assert accuracy == pytest.approx(brute_force_knn_accuracy(x, list(labels)))
    assert null.shape == (50,) and 0.15 < null.mean() < 0.5  # chance for 3 balanced labels ~ 1/3


def test_planted_clusters_score_one_and_permuted_labels_score_chance():
    states, labels = planted()
    accuracy, null = category_knn_accuracy(top2_pca(states), labels, permutations=200)
    assert accuracy == 1.0
    chance = sum((np.bincount(labels) / len(labels)) ** 2)
    assert abs(null.mean() - chance) < 0.05 and null.max() < 0.6
    with pytest.raises(ModscopeError, match="more rows than k"):
        category_knn_accuracy(states[:4], labels[:4])


@needs_phate
def test_phate_separates_planted_clusters_and_scores_them_against_chance():
    from modscope.geometry.phate_embed import phate_embedding

    states, labels = planted()
    result = phate_embedding(states, labels.tolist(), site="s", model="m")
    centres = np.stack([result.coordinates[labels == c].mean(0) for c in range(3)])
    spread = max(result.coordinates[labels == c].std(0).max() for c in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread
    assert result.accuracy == 1.0 and result.pca_accuracy == 1.0
    assert abs(result.null_mean - 1 / 3) < 0.05 and result.null_sd > 0
    assert result.to_json()["accuracy"] == 1.0 and "coordinates" not in result.to_json()


def test_rows_of_one_document_cannot_vouch_for_each_other():
    # each "document" is a tight blob of 10 rows; categories are random across documents: all neighbours from the
    # own document give accuracy 1, neighbours from other documents only give chance
    rng = np.random.default_rng(5)
    documents = np.repeat(np.arange(30), 10)
    categories = rng.integers(0, 3, 30)[documents]
    x = rng.normal(size=(30, 2))[documents] * 10 + rng.normal(size=(300, 2)) * 0.01
    assert category_knn_accuracy(x, categories)[0] == 1.0
    across, null = category_knn_accuracy(x, categories, groups=documents, permutations=100)
    assert abs(across - null.mean()) < 2 * null.std() and across < 0.6
    rowwise = category_knn_accuracy(x, categories, permutations=100)[1]  # documents, not rows, are the units:
    assert null.std() > 2 * rowwise.std()  # the group-level null is the wider one
    with pytest.raises(ModscopeError, match="outside the largest group"):
        category_knn_accuracy(x[:12], categories[:12], groups=documents[:12])


@needs_phate
def test_similarity_report_draws_phate_of_the_same_rows_with_its_scores(tmp_path):
    from modscope.commands.common import cached_model
    from modscope.corpus import load
    from modscope.geometry.reports import similarity_report

    report = similarity_report([cached_model("tiny-gpt2")], load("bundled"), sites="resid_post.*", kinds=["cosine"],
                               per_category=2, positions="last:5", ctx=64, n_permutations=20, out=tmp_path,
                               embed=("phate",))
    phates = report["result"]["phate"]
    assert sorted(phates) == ["tiny-gpt2:resid_post.0", "tiny-gpt2:resid_post.1"]
    assert all(0 <= p["accuracy"] <= 1 and p["other_documents"] for p in phates.values())
    line = next(h for h in report["headline"] if h.startswith("PHATE"))
    mean = np.mean([p["accuracy"] for p in phates.values()])
    assert f"accuracy on PHATE {mean:.2f}" in line
    assert (tmp_path / "figures" / "phate.png").exists() or list(tmp_path.rglob("phate*.png"))


def test_phate_installed_says_whether_the_demo_can_draw_it():
    from modscope.geometry.phate_embed import phate_installed

    assert phate_installed() is HAS_PHATE
