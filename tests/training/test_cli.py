"""`modscope train mnist`, `modscope gradients` and `modscope sweep` end to end on tiny runs."""

import json

import pytest
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError

runner = CliRunner()


def test_train_then_gradients_writes_pages_with_counts_and_exact_full_rank_replay(tmp_path):
    run_dir, grad_dir = tmp_path / "run", tmp_path / "grad"
    result = runner.invoke(app, ["train", "mnist", "--max-steps", "24", "--n-train", "2000", "--null", "width:16",
                                 "--checkpoint-every", "4", "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "grads" / "manifest.json").is_file() and (run_dir / "index.html").is_file()
    result = runner.invoke(app, ["gradients", "--store", str(run_dir), "--sample-size", "10", "--repeats", "3",
                                 "--replay", "2", "--out", str(grad_dir), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{"):])
    spectrum = payload["analysis"]["spectrum"]
    assert spectrum["n_steps"] == 24 and set(spectrum["counts"]) == {"0.05", "0.1", "0.15"}
    assert payload["replay"]["max_abs_loss_diff"][-1] == 0.0
    assert {"spectrum.png", "sampling.png", "logit_pca.png", "replay.png"} <= {p.name for p in grad_dir.iterdir()}


def test_bad_inputs_are_modscope_errors(tmp_path):
    result = runner.invoke(app, ["train", "mnist", "--null", "blur:3", "--record", "none", "--max-steps", "2"])
    assert isinstance(result.exception, ModscopeError)
    result = runner.invoke(app, ["gradients", "--store", str(tmp_path)])
    assert isinstance(result.exception, ModscopeError) and "no recorded gradients" in str(result.exception)
    with pytest.raises(ModscopeError):
        runner.invoke(app, ["sweep", "--nulls", "noise:7"], catch_exceptions=False)
