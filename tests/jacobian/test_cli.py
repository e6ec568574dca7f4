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
    result = invoke("--part", "mlp,attn", "--token-counts", "2,3", "--twin", "none", "--ranks", "--rank-tokens", "2",
                    "--out", str(tmp_path), "--json")
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
    "args", [["--path", "resid_pre.0"], ["--part", "head"], ["--token-counts", "two"], ["--k", "0"],
             ["--path", "resid_pre.0:final", "--src-pos", "3", "--dst-pos", "1"]],
)
def test_bad_input_is_a_modscope_error(args):
    result = invoke(*args)
    assert isinstance(result.exception, ModscopeError), result.output



@pytest.mark.slow  # the demo's own sizes (34-token Lanczos, layer ranks) on a tiny model: ~1 min of CPU
def test_demo_blocks_report_an_exact_attention_rank_and_label_the_top_k_one_a_lower_bound(tmp_path):
    from modscope.commands.common import DemoContext
    from modscope.commands.jacobian import block_headline, demo_blocks, to_json

    found, exact_tokens = demo_blocks(DemoContext(out=tmp_path, size="default", model="tiny-gpt2"))
    assert exact_tokens == 3
    spectra = to_json(found)["spectra"]
    attention = {(s["model"], s["tokens"]): s["spectrum"] for s in spectra if s["part"] == "attn"}
    exact, bound = attention["tiny-gpt2", 3], attention["tiny-gpt2", 34]
    assert exact["method"] == "exact" and exact["rank_kind"] == "exact" and not exact["rank_is_lower_bound"]
    assert bound["method"] == "lanczos" and bound["rank_is_lower_bound"] and bound["rank_text"] == "≥ 64"
    assert bound["rank_lower_bound"] == 64 and exact["rank_lower_bound"] is None
    assert any(c.label.endswith("attn L1, 3 tok") for c in found["comparisons"])
    lines, verdict = block_headline(found)
    assert any("attn L1, 34 tok: rank ≥ 64 of 2176: a lower bound" in line for line in lines)
    assert "lower bound" in verdict and "loses 2112" not in verdict
