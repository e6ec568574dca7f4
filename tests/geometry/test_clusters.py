"""Clusters in the residual stream: planted clusters are recovered and cluster-wise centring removes the cosine."""

from __future__ import annotations

import json
from itertools import permutations

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.geometry.clusters import pairwise_mean_cosine, silhouette, site_clusters, type_cosines


def planted(n=400, d=32, k=3, seed=0):
    rng = np.random.default_rng(seed)
    offset = rng.normal(size=d) * 3
    centres = rng.normal(size=(k, d)) * 2
    labels = rng.integers(0, k, n)
    return offset + centres[labels] + rng.normal(size=(n, d)) * 0.5, labels


def test_planted_clusters_recovered_and_clusterwise_centring_gives_zero_cosine():
    states, labels = planted()
    result = site_clusters(states, positions=np.where(labels == 0, 0, 5))
    assert result.k == 3
    agreement = max((result.assignment == np.array(p)[labels]).mean() for p in permutations(range(3)))
    assert agreement == 1.0
    assert result.mean_cosine_raw > 0.5  # the shared offset
    assert result.within_cosine_global > 0.5  # global centring leaves each cluster's own offset
    assert abs(result.within_cosine_clusterwise) < 0.02
    assert abs(result.mean_cosine_clusterwise) < 0.02
    first = [c for c in result.clusters if c["first_token_share"] == 1.0]
    assert len(first) == 1 and first[0]["size"] == int((labels == 0).sum())


def test_one_gaussian_blob_gives_k_1_even_when_elongated():
    rng = np.random.default_rng(1)
    scales = np.geomspace(10, 0.1, 32)
    result = site_clusters(rng.normal(size=(400, 32)) * scales + 5.0)
    assert result.k == 1
    assert result.mean_cosine_raw > 0.2 and abs(result.mean_cosine_global) < 0.02


def test_pairwise_mean_cosine_equals_brute_force():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 5)) + 1.0
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    assert pairwise_mean_cosine(x) == pytest.approx(sims[~np.eye(30, dtype=bool)].mean())
    groups = np.arange(30) % 2
    same = (groups[:, None] == groups[None]) & ~np.eye(30, dtype=bool)
    assert pairwise_mean_cosine(x, groups) == pytest.approx(sims[same].mean())


def test_silhouette_of_two_far_points_pairs_is_near_one():
    points = np.array([[0.0, 0], [0, 0.01], [10, 0], [10, 0.01]])
    assert silhouette(points, np.array([0, 0, 1, 1])) == pytest.approx(0.999, abs=1e-3)


def test_type_cosines_follow_cai_definitions():
    # token 7 has the same vector in both inputs (intra-type 1); different tokens are orthogonal (inter-type 0)
    vectors = np.array([[1.0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    inter, intra = type_cosines(vectors, tokens=np.array([7, 8, 7, 9]), docs=np.array([0, 0, 1, 1]))
    assert inter == pytest.approx(0.0) and intra == pytest.approx(1.0)


def test_too_few_rows_or_nan_is_an_error():
    with pytest.raises(ModscopeError):
        site_clusters(np.zeros((3, 4)))
    with pytest.raises(ModscopeError):
        site_clusters(np.full((10, 4), np.nan))


def test_clusters_report_on_tiny_model_writes_a_page(tiny_gpt2, tmp_path):
    from modscope import corpus
    from modscope.geometry.cluster_report import clusters_report

    payload = clusters_report([tiny_gpt2], corpus.load("bundled"), sites="resid_post.-1", per_category=1, ctx=32,
                              out=tmp_path)
    site = payload["result"]["tiny-gpt2"]["sites"]["resid_post.1"]
    assert site["k"] >= 1 and sum(c["size"] for c in site["clusters"]) == site["n_rows"]
    assert (tmp_path / "index.html").exists() and (tmp_path / "mean_cosine_by_site.png").exists()
    written = json.loads((tmp_path / "result.json").read_text())  # the page says what the rows are
    rows = written["settings"]["rows"]
    assert rows["n_documents"] == 5 and site["n_rows"] == rows["n_rows"] and "Rows: " in written["verdict"]
