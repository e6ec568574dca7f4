"""`modscope mi` and `modscope spectrum` on tiny models, from a model and from capture stores."""

import json

import pytest
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError

runner = CliRunner()
TEXTS = ["The quick brown fox jumps over the lazy dog. " * 20, "def f(x):\n    return x * 2\n" * 25,
         "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 15]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from modscope import load_model
    from modscope.capture import capture

    root = tmp_path_factory.mktemp("stores")
    a = capture(load_model("tiny-gpt2"), TEXTS, "resid_post.*", out=root / "a", progress=False)
    capture(load_model("random:tiny-gpt2", seed=1), TEXTS, "resid_post.*", out=root / "b", progress=False)
    return root / "a", root / "b", a.n_rows


def test_mi_from_stores_writes_page_and_json_with_null(stores, tmp_path):
    a, b, n_rows = stores
    res = runner.invoke(app, ["mi", "--store", str(a), "--twin-store", str(b), "--curve-points", "4",
                              "--out", str(tmp_path / "mi"), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout[res.stdout.index("{"):])
    first = payload["result"]["results"][0]
    assert first["n"] == n_rows and first["rank_x"] == 64
    assert first["z"] == pytest.approx((first["mi"] - first["null_mean"]) / first["null_sd"])
    assert (tmp_path / "mi" / "index.html").exists() and (tmp_path / "mi" / "mi_vs_n.png").exists()


def test_mi_between_layers_from_one_store(stores):
    a, _, _ = stores
    res = runner.invoke(app, ["mi", "--store", str(a), "--pair", "layers", "--curve-points", "0", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout[res.stdout.index("{"):])
    assert [r for r in payload["result"]["labels"]] == ["resid_post.0→resid_post.1"]
    assert payload["result"]["results"][0]["z"] > 3  # consecutive residual layers share information


def test_spectrum_from_stores_with_blocks(stores, tmp_path):
    a, b, _ = stores
    res = runner.invoke(app, ["spectrum", "--store", str(a), "--twin-store", str(b), "--blocks", "resid_post.1",
                              "--shuffles", "3", "--out", str(tmp_path / "sp")])
    assert res.exit_code == 0, res.output
    page = json.loads((tmp_path / "sp" / "result.json").read_text())
    spectra = page["result"]["trained"]
    assert len(spectra) == 2 and spectra[0]["d"] == 64
    assert 1 <= spectra[0]["participation_ratio"] <= 64
    assert page["result"]["blocks"][0]["n_blocks"] >= 2


def test_bad_pair_and_missing_twin_store_are_modscope_errors(stores):
    a, _, _ = stores
    res = runner.invoke(app, ["mi", "--store", str(a), "--pair", "heads"])
    assert isinstance(res.exception, ModscopeError) and "--pair" in str(res.exception)
    res = runner.invoke(app, ["mi", "--store", str(a)])
    assert isinstance(res.exception, ModscopeError) and "--twin-store" in str(res.exception)


def test_identical_twin_is_refused(tmp_path):
    from modscope import load_model
    from modscope.stats.model_mi import model_mi

    # a "twin" with the model's own weights (here: the same tiny model loaded twice) gives MI at its ceiling
    with pytest.raises(ModscopeError, match="twin-seed"):
        model_mi(load_model("tiny-gpt2"), load_model("tiny-gpt2"), TEXTS, "resid_post.0", curve_points=0)


def test_demo_steps_write_mi_and_spectrum_pages(tmp_path):
    from modscope.commands.common import DemoContext
    from modscope.commands.stats import demo_steps

    ctx = DemoContext(out=tmp_path, size="quick", model="tiny-gpt2")
    written = []
    for step in demo_steps():
        step.run(ctx, tmp_path / step.name)
        page = json.loads((tmp_path / step.name / "result.json").read_text())
        assert page["probe"] == step.name and page["verdict"]
        written.append((tmp_path / "_stores" / "quick-trained" / "manifest.json").stat().st_mtime_ns)
    # both steps read one capture of the rows: the second step found the store complete and did not rewrite it
    assert len(written) == 2 and written[0] == written[1]
