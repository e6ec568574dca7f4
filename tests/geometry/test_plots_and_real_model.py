"""Every result draws itself; the real embedded model's embeddings are anisotropic until mean-centred."""

import numpy as np
import pytest

from modscope.geometry import (
    cka_map,
    cosine_histogram,
    low_rank_split,
    pca,
    rank_stream_dimensions,
    separation,
    similarity,
)


def test_every_result_plots_onto_given_axes():
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    H = rng.normal(size=(12, 6))
    labels = ["a"] * 6 + ["b"] * 6
    S = similarity(H)
    results = [separation(S, labels, n_permutations=20), low_rank_split(S), pca(H, labels=labels),
               cka_map([H, H[:, :3]]), cosine_histogram(H, bins=10),
               rank_stream_dimensions(rng.normal(size=(12, 3, 4)), labels, n_permutations=10)]
    for result in results:
        ax = Figure().subplots()
        assert result.plot(ax) is ax
        assert ax.has_data()


@pytest.mark.slow
def test_real_embeddings_are_anisotropic_until_centred():
    from modscope.commands.common import cached_model
    from modscope.geometry.anisotropy import model_weights

    trained = model_weights(cached_model("smollm2-135m"), vocab_rows=4096)["W_E"]
    raw, centred = cosine_histogram(trained), cosine_histogram(trained, centre=True)
    assert raw.mean > 0.3  # full vocabulary: 0.44 (benchmarks/results/anisotropy.json)
    assert abs(centred.mean) < 0.02
    assert centred.sd < raw.sd + 0.05
