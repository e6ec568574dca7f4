"""``modscope jacobian`` on a tiny model: writes the page, prints JSON, refuses bad input with a ModscopeError."""

import json

import pytest
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError

TEXT = "A small text for a tiny model, long enough for a few tokens of Jacobian. " * 3


def invoke(*args):
    return CliRunner().invoke(app, ["jacobian", "--model", "tiny-gpt2", "--text", TEXT, *args])


def test_block_command_writes_page_with_ranks(tmp_path):
    result = invoke("--part", "mlp,attn", "--tokens", "2,3", "--ranks", "--rank-tokens", "2", "--out",
                    str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{"):])
    assert len(payload["spectra"]) == 4 and len(payload["ranks"]) == 2
    mlp = payload["spectra"][0]
    assert mlp["part"] == "mlp" and mlp["spectrum"]["rank"] == 2 * 63  # LayerNorm: one null per token
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["probe"] == "jacobian" and "floor" in " ".join(saved["headline"])
    assert (tmp_path / "singular_values.png").exists() and (tmp_path / "rank_per_layer.png").exists()


def test_path_command_with_twin_and_covariance(tmp_path):
    result = invoke("--path", "resid_pre.0:final", "--src-pos", "2", "--dst-pos", "2,4", "--twin", "random",
                    "--covariance", "--cov-k", "4", "--max-rows", "300", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "result.json").read_text())["result"]
    assert [p["dst_pos"] for p in saved["paths"]] == [2, 4, 2, 4]
    assert len(saved["alignments"]) == 2 and saved["alignments"][0]["k"] == 4
    assert (tmp_path / "jacobian_vs_covariance.png").exists()


@pytest.mark.parametrize(
    "args", [["--path", "resid_pre.0"], ["--part", "head"], ["--tokens", "two"], ["--k", "0"],
             ["--path", "resid_pre.0:final", "--src-pos", "3", "--dst-pos", "1"]],
)
def test_bad_input_is_a_modscope_error(args):
    result = invoke(*args)
    assert isinstance(result.exception, ModscopeError), result.output
