"""Category separation against a label-permutation null."""

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.geometry import separation, similarity
from modscope.geometry.separation import silhouettes


def planted(n_per=10, categories=3, d=32, spread=0.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(categories, d)) * 2
    H = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centres])
    labels = np.repeat([f"cat{k}" for k in range(categories)], n_per)
    return H, labels


def test_planted_categories_give_large_z_and_shuffled_labels_do_not():
    H, labels = planted()
    S = similarity(H, "cosine")
    result = separation(S, labels, n_permutations=500)
    assert result.z > 5
    assert result.p == pytest.approx(1 / 501)
    assert result.silhouette > 0.5 and result.silhouette_z > 5
    shuffled = np.random.default_rng(1).permutation(labels)
    null_result = separation(S, shuffled, n_permutations=500)
    assert abs(null_result.z) < 3


def test_within_and_between_equal_brute_force_means():
    H, labels = planted(n_per=4, categories=3, d=5, spread=2.0)
    S = similarity(H, "scaled")
    result = separation(S, labels, n_permutations=10)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(S), dtype=bool)
    assert result.within == pytest.approx(S[same & off].mean())
    assert result.between == pytest.approx(S[~same].mean())
    assert result.difference == pytest.approx(result.within - result.between)


def test_silhouette_equals_brute_force_definition():
    H, labels = planted(n_per=5, categories=3, d=4, spread=3.0, seed=3)
    D = np.linalg.norm(H[:, None] - H[None], axis=2)
    codes = np.searchsorted(np.unique(labels), labels)
    expected = []
    for i in range(len(H)):
        own = (codes == codes[i]) & (np.arange(len(H)) != i)
        a = D[i, own].mean()
        b = min(D[i, codes == c].mean() for c in set(codes) if c != codes[i])
        expected.append((b - a) / max(a, b))
    assert silhouettes(D, codes[None], 3)[0] == pytest.approx(np.mean(expected))


def test_grouped_null_keeps_documents_together_and_is_wider_than_row_null():
    # each document is 5 near-identical rows; categories carry no signal beyond documents
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(12, 16))
    H = np.repeat(docs, 5, axis=0) + 0.01 * rng.normal(size=(60, 16))
    groups = np.repeat(np.arange(12), 5)
    labels = np.repeat(np.array(["a", "b", "c"] * 4), 5)
    S = similarity(H, "cosine")
    by_rows = separation(S, labels, n_permutations=300)
    by_docs = separation(S, labels, groups=groups, n_permutations=300)
    assert by_rows.z > 5  # the row null is fooled by within-document similarity
    assert abs(by_docs.z) < 3
    assert by_docs.grouped and not by_rows.grouped


def test_separation_rejects_mismatched_labels_and_single_category():
    S = np.eye(4)
    with pytest.raises(ModscopeError, match="labels"):
        separation(S, ["a", "b"])
    with pytest.raises(ModscopeError, match="2 categories"):
        separation(S, ["a"] * 4)
    with pytest.raises(ModscopeError, match="one label"):
        separation(S, ["a", "b", "a", "b"], groups=[0, 0, 1, 1])
