"""A planted massive coordinate decides CKA and cosine similarity alone; dropping it recovers the planted structure."""

import numpy as np

from modscope.geometry.gather import from_arrays
from modscope.geometry.massive import rests_on, without_massive, without_massive_rows
from modscope.geometry.similarity import similarity
from modscope.geometry.study import cka_between, similarity_study


def _shared_subspace(n=400, d=32, k=4, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, k))
    x = latent @ rng.normal(size=(k, d)) + 0.1 * rng.normal(size=(n, d))
    y = latent @ rng.normal(size=(k, d)) + 0.1 * rng.normal(size=(n, d))
    return x, y, rng


def test_massive_coordinate_hides_a_shared_subspace_from_cka_and_dropping_it_recovers_it():
    x, y, rng = _shared_subspace()
    labels = ["a"] * len(x)
    clean = cka_between(from_arrays({"x": x, "y": y}, labels)).matrix[0, 1]
    assert clean > 0.9  # the planted structure: both are linear images of one 4-d latent
    x[:, 5] = 5000.0 * rng.normal(size=len(x))  # one independent coordinate ~5000x the typical |x|
    gathered = from_arrays({"x": x, "y": y}, labels)
    assert cka_between(gathered).matrix[0, 1] < 0.02  # CKA now describes coordinate 5 only
    lean, dropped = without_massive(gathered)
    assert dropped["x"]["dropped"] == [5] and dropped["y"]["n_dropped"] == 0
    assert dropped["x"]["share"] > 0.99
    assert abs(cka_between(lean).matrix[0, 1] - clean) < 0.02
    assert "rests on the numbers without them" in rests_on(dropped, "0.01", "0.95")


def test_massive_offset_makes_every_cosine_one_and_hides_categories():
    rng = np.random.default_rng(1)
    labels = np.repeat(["a", "b", "c"], 40)
    centres = {c: rng.normal(size=24) * 2 for c in "abc"}
    states = np.stack([centres[c] + rng.normal(size=24) for c in labels])
    states[:, 3] = 3000.0  # a massive coordinate shared by every row (an attention-sink-like offset)
    gathered = from_arrays({"h": states}, labels, groups=[str(i // 4) for i in range(len(labels))])
    full = similarity(gathered.arrays["h"], "cosine")
    assert full[np.triu_indices(len(labels), 1)].mean() > 0.999
    with_study = similarity_study(gathered, n_permutations=50, seed=0)
    lean, dropped = without_massive(gathered)
    assert dropped["h"]["dropped"] == [3]
    lean_cos = similarity(lean.arrays["h"], "cosine")
    assert lean_cos[np.triu_indices(len(labels), 1)].mean() < 0.5
    lean_study = similarity_study(lean, n_permutations=50, seed=0)
    assert with_study.rows[0]["difference"] < 1e-3  # every pair ≈ 1: categories invisible
    assert lean_study.rows[0]["difference"] > 0.3 and lean_study.rows[0]["z"] > 3


def test_no_massive_coordinates_means_nothing_is_dropped_and_the_verdict_says_so():
    x, y, _ = _shared_subspace()
    lean, dropped = without_massive(from_arrays({"x": x, "y": y}, ["a"] * len(x)))
    assert all(d["n_dropped"] == 0 for d in dropped.values())
    assert lean.arrays["x"].shape == x.shape
    assert "every number is over all coordinates" in rests_on(dropped, "CKA 0.9", "CKA 0.9")


def test_massive_rows_like_a_first_token_sink_decide_cka_and_dropping_those_rows_recovers_it():
    x, y, rng = _shared_subspace()
    labels, positions = ["a"] * len(x), [0 if i < 4 else 1 + i for i in range(len(x))]
    clean = cka_between(from_arrays({"x": x[4:], "y": y[4:]}, labels[4:])).matrix[0, 1]
    x[:4] = 3000.0 * rng.normal(size=(4, x.shape[1]))  # 4 "first tokens", huge in every coordinate, unrelated
    y[:4] = 3000.0 * rng.normal(size=(4, y.shape[1]))
    gathered = from_arrays({"x": x, "y": y}, labels, positions=positions)
    assert cka_between(gathered).matrix[0, 1] < 0.5 * clean
    kept, info = without_massive_rows(gathered)
    assert info["n_rows_dropped"] == 4 and info["positions"] == {0: 4}
    assert abs(cka_between(kept).matrix[0, 1] - clean) < 1e-9  # exactly the CKA of the other rows
