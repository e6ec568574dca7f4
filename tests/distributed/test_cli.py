"""The distributed CLI: sharded capture and dask-stats agree with the Python API; bad input exits cleanly."""

import json

import numpy as np
from typer.testing import CliRunner

from modscope import ModscopeError
from modscope.capture import ActivationStore
from modscope.cli import app
from modscope.stats import covariance

runner = CliRunner()


def test_capture_shard_then_dask_stats_match_the_local_covariance(tmp_path):
    out = tmp_path / "s"
    res = runner.invoke(app, ["capture-shard", "--model", "tiny-gpt2", "--sites", "resid_post.1", "--positions",
                              "last:16", "--max-tokens", "96", "--shards", "2", "--backend", "serial",
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    store = ActivationStore.open(out)
    assert store.n_rows == rows > 0
    res = runner.invoke(app, ["dask-stats", "--store", str(out), "--site", "resid_post.1", "--json"])  # engine local
    assert res.exit_code == 0, res.output
    local = covariance(np.asarray(store["resid_post.1"]))
    assert abs(json.loads(res.output)["result"]["trace"] / np.trace(local.cov) - 1) < 1e-10


def test_bad_stat_is_a_modscope_error(tmp_path):
    res = runner.invoke(app, ["dask-stats", "--store", str(tmp_path), "--site", "x", "--stat", "kurtosis"])
    assert isinstance(res.exception, ModscopeError)
