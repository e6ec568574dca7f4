"""Per-unit clusterability of a network and the sentences written from it."""

from __future__ import annotations

import numpy as np

from modscope.weights.summary import describe, network_clusterability


def test_network_summary_counts_only_the_planted_unit_as_clusterable(planted, iid_mlp):
    seen = []
    net = network_clusterability({"planted": planted[0], "iid": iid_mlp}, model="toy", k=4, n_shuffles=8,
                                 progress=lambda unit, r: seen.append(unit))
    assert seen == ["planted", "iid"] and net.units == ("planted", "iid")
    assert net.n_clusterable == 1 and net.z[0] < -3
    assert net.null_ncuts.shape == (2, 8) and net.cluster_sizes.sum(axis=1).tolist() == [260, 260]
    np.testing.assert_allclose(net.z, [net.result(u).z for u in net.units])
    headline, verdict = describe(net)
    assert "1/2 units" in headline[0] and verdict.startswith("1/2 units of toy")
    assert "results" not in net.to_json()
