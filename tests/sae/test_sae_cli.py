"""`modscope sae train` / `inspect` end to end on a tiny model, and training from a capture store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError
from modscope.sae import SAEConfig, StoreSource, load_sae, train

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 12, "Sparse autoencoders find features. " * 15,
         "def f(x):\n    return x + 1\n" * 14, "In 1999 the court held that the contract was void. " * 10]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "texts.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "category": f"c{i % 2}"}) for i, t in enumerate(TEXTS)))
    return path


def test_train_then_inspect_writes_sae_and_page(tmp_path, corpus_file):
    out = tmp_path / "sae"
    args = ["sae", "train", "--model", "tiny-llama", "--site", "mlp_act.1", "--tokens", "4e3", "--expansion", "2",
            "--k", "4", "--batch-size", "128", "--heldout-tokens", "128", "--checkpoints", "3", "--ctx", "32",
            "--corpus", str(corpus_file), "--features", "4", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = json.loads((out / "result.json").read_text())
    assert page["probe"] == "sae" and len(page["result"]["density"]["dead"]) == 3
    assert 0 <= page["result"]["spliced"]["clean"] and len(page["result"]["features"]) == 4
    assert load_sae(out).meta["site"] == "mlp_act.1"
    result = CliRunner().invoke(app, ["sae", "inspect", str(out), "--corpus", str(corpus_file), "--ctx", "32",
                                      "--features", "3", "--out", str(tmp_path / "page")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "page" / "index.html").exists()


def test_bad_cli_input_is_a_modscope_error(tmp_path):
    result = CliRunner().invoke(app, ["sae", "train", "--tokens", "lots", "--out", str(tmp_path)])
    assert isinstance(result.exception, ModscopeError)
    result = CliRunner().invoke(app, ["sae", "inspect", str(tmp_path / "missing")])
    assert isinstance(result.exception, ModscopeError)


def test_training_from_a_capture_store_site_reads_the_stores_rows(tiny_gpt2):
    from modscope.capture import capture

    store = capture(tiny_gpt2, TEXTS, ["mlp_out.0"], ctx=64, progress=False)
    source = StoreSource(store, "mlp_out.0", heldout_tokens=40)
    assert source.d_in == tiny_gpt2.d_model
    assert np.allclose(source.heldout().numpy(), np.asarray(store["mlp_out.0"][source.n_train:]))
    sae = train((store, "mlp_out.0"), SAEConfig(expansion=2, k=4, batch_size=64, tokens=640, heldout_tokens=40,
                                                checkpoints=2))
    assert sae.d_in == tiny_gpt2.d_model and sae.meta["site"] == "mlp_out.0"
    with pytest.raises(ModscopeError, match="not in this store"):
        StoreSource(store, "resid_post.1")


def test_train_from_a_store_on_disk_writes_a_page_with_reconstruction(tmp_path, tiny_gpt2):
    from modscope.capture import capture

    capture(tiny_gpt2, TEXTS, ["mlp_out.0"], ctx=64, out=tmp_path / "store", progress=False)
    args = ["sae", "train", "--store", str(tmp_path / "store"), "--site", "mlp_out.0", "--tokens", "1280",
            "--expansion", "2", "--k", "4", "--batch-size", "64", "--heldout-tokens", "40", "--checkpoints", "2",
            "--out", str(tmp_path / "sae")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = json.loads((tmp_path / "sae" / "result.json").read_text())
    assert 0 < page["result"]["reconstruction"]["n_tokens"] <= 40


def test_train_in_saelens_format_reports_every_baseline(tmp_path, corpus_file):
    out = tmp_path / "sae-sl"
    args = ["sae", "train", "--model", "tiny-llama", "--site", "mlp_out.1", "--tokens", "3e3", "--expansion", "2",
            "--k", "4", "--batch-size", "128", "--heldout-tokens", "128", "--checkpoints", "2", "--ctx", "32",
            "--corpus", str(corpus_file), "--features", "2", "--device", "cpu", "--format", "saelens",
            "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "cfg.json").exists() and (out / "sae_weights.safetensors").exists()
    page = json.loads((out / "result.json").read_text())["result"]
    spliced, recon = page["spliced"], page["reconstruction"]
    for key in ("clean", "spliced", "zero_ablated", "mean_ablated", "loss_recovered", "loss_recovered_mean"):
        assert np.isfinite(spliced[key]), key
    assert spliced["loss_recovered"] == pytest.approx(
        (spliced["zero_ablated"] - spliced["spliced"]) / (spliced["zero_ablated"] - spliced["clean"]))
    assert recon["dead"] + recon["dense"] <= 2 * 64 and recon["fve_zero_ablation"] <= 0
    assert len(page["loss_curve"]["dead"]) == len(page["loss_curve"]["mse"])
    assert load_sae(out).meta["site"] == "mlp_out.1"


def test_unknown_device_or_format_is_a_modscope_error_naming_the_choices(tmp_path):
    for flag, value in (("--device", "tpu"), ("--format", "pickle")):
        result = CliRunner().invoke(app, ["sae", "train", "--model", "tiny-llama", "--site", "mlp_out.1", flag, value,
                                          "--out", str(tmp_path / "x")])
        assert isinstance(result.exception, ModscopeError) and value in str(result.exception)
        assert not (tmp_path / "x").exists()
