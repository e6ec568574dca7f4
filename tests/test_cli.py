"""The command line: foundation commands work, and bad input is one line on stderr with exit code 2."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from modscope.capture import ActivationStore
from modscope.cli import app

runner = CliRunner()


def test_sites_lists_every_site_with_its_shape():
    result = runner.invoke(app, ["sites", "tiny-llama", "--json"])
    assert result.exit_code == 0, result.output
    sites = json.loads(result.stdout)["sites"]
    assert sites["head_out.1"] == [4, 64] and sites["mlp_act.0"] == [128] and sites["logits"] == [257]


def test_models_lists_the_offline_models():
    result = runner.invoke(app, ["models", "--json"])
    names = [row["name"] for row in json.loads(result.stdout)]
    assert {"smollm2-135m", "random:smollm2-135m", "tiny-gpt2", "tiny-neox"} <= set(names)


def test_capture_writes_a_store_and_a_rerun_keeps_it(tmp_path):
    (tmp_path / "docs" / "notes").mkdir(parents=True)
    (tmp_path / "docs" / "notes" / "a.txt").write_text("a short note about linear algebra " * 5)
    args = ["capture", "--model", "tiny-gpt2", "--corpus", str(tmp_path / "docs"), "--sites", "resid_post.*",
            "--out", str(tmp_path / "store"), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rows"] == 170
    assert runner.invoke(app, args).exit_code == 0
    assert ActivationStore.open(tmp_path / "store").n_rows == 170


@pytest.mark.parametrize("argv, message", [
    (["capture", "--model", "tiny-gpt2", "--sites", "nope.*", "--out", "{tmp}/s"], "unknown site 'nope.*'"),
    (["capture", "--model", "tiny-gpt2", "--max-tokens", "0", "--out", "{tmp}/s"], "--max-tokens must be > 0"),
    (["sites", "./missing-model-dir"], "does not exist"),
    (["report", "{tmp}/nothing-here"], "is not a directory"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "modscope.cli", *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("modscope: error:") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()  # nothing half-written
