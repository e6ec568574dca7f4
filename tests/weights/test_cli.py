"""``modscope clusterability``: writes the page, and bad input is a ModscopeError (exit code 2 from main)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError

runner = CliRunner()


def test_clusterability_command_writes_result_and_page(tmp_path):
    out = tmp_path / "cl"
    result = runner.invoke(app, ["clusterability", "--model", "tiny-gpt2", "--twin", "none", "--k", "3",
                                 "--shuffles", "3", "--layers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "result.json").read_text())
    trained = payload["result"]["trained"]
    assert trained["units"] == ["mlp.1"] and len(trained["null_ncuts"][0]) == 3
    assert 0 <= trained["ncut"][0] <= 3
    assert (out / "index.html").exists() and (out / "ncut_vs_null.png").exists()


BAD_ARGS = [["--k", "1"], ["--shuffles", "1"], ["--layers", "9"], ["--gate", "max"], ["--workers", "0"]]


@pytest.mark.parametrize("args", BAD_ARGS)
def test_bad_arguments_raise_modscope_error(args):
    result = runner.invoke(app, ["clusterability", "--model", "tiny-gpt2", "--twin", "none", *args])
    assert isinstance(result.exception, ModscopeError)
