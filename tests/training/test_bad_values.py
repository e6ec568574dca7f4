"""Bad or non-finite values are one clear error naming what is wrong (and the first bad step), writing nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError
from modscope.locking import directory_lock
from modscope.training import GradientRecorder, GradientStore, make_mlp
from modscope.training.spectrum import gradient_spectrum

runner = CliRunner()
TINY = ["train", "mnist", "--max-steps", "6", "--n-train", "200", "--batch-size", "16", "--null", "width:8"]


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "nan", "--lr must be a finite number > 0, got nan"),
    ("--lr", "inf", "--lr must be a finite number > 0, got inf"),
    ("--lr", "-0.1", "--lr must be a finite number > 0, got -0.1"),
    ("--epochs", "0", "--epochs must be >= 1, got 0"),
    ("--batch-size", "0", "--batch-size must be >= 1, got 0"),
])
def test_train_refuses_bad_values_before_writing_anything(tmp_path, option, value, message):
    result = runner.invoke(app, [*TINY, option, value, "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, ModscopeError) and str(result.exception) == message
    assert not (tmp_path / "run").exists()


def test_train_into_a_directory_in_use_is_refused_naming_the_holder(tmp_path):
    with directory_lock(tmp_path / "run", command="modscope train mnist (other)"):
        result = runner.invoke(app, [*TINY, "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, ModscopeError)
    assert "is in use by pid" in str(result.exception) and "(modscope train mnist (other))" in str(result.exception)


def nan_store(path, bad_row: int) -> GradientStore:
    store = GradientStore(["w"], [(3,)], path=path, chunk_steps=4)
    rows = np.arange(18, dtype=np.float32).reshape(6, 3)
    rows[bad_row, 1] = np.nan
    store.append({"w": rows}, list(range(10, 16)), [0.0] * 6, [0.1] * 6)
    return store


def test_gradients_on_nan_rows_or_a_capture_store_is_one_clear_line(tmp_path, tiny_gpt2):
    nan_store(tmp_path / "g", bad_row=2)
    result = runner.invoke(app, ["gradients", "--store", str(tmp_path / "g"), "--sample-size", "2"])
    assert isinstance(result.exception, ModscopeError) and "from step 12 on (the first bad step)" in str(
        result.exception)
    from modscope.capture import capture

    capture(tiny_gpt2, ["a b c"], "resid_post.1", out=tmp_path / "acts", progress=False)
    result = runner.invoke(app, ["gradients", "--store", str(tmp_path / "acts")])
    assert isinstance(result.exception, ModscopeError)
    assert "is an activation capture store" in str(result.exception) and "modscope train mnist" in str(
        result.exception)
    result = runner.invoke(app, ["gradients", "--store", str(tmp_path / "g"), "--sample-size", "0"])
    assert str(result.exception) == "--sample-size must be >= 2, got 0"


@pytest.mark.parametrize("method", ["gram", "randomized"])
def test_gradient_spectrum_names_the_first_nonfinite_step(tmp_path, method):
    with pytest.raises(ModscopeError, match="from step 14 on"):
        gradient_spectrum(nan_store(tmp_path / method, bad_row=4), method=method, rank=2)
    matrix = np.ones((5, 4))
    matrix[3, 0] = np.inf
    with pytest.raises(ModscopeError, match="from step 3 on"):
        gradient_spectrum(matrix, method=method, rank=2)


def test_recorder_stops_at_a_nonfinite_gradient_without_recording_it(tmp_path):
    model = make_mlp((4, 3, 2), seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = GradientRecorder(model, out=tmp_path / "g", params="all", chunk_steps=2, optimizer=opt)
    x, y = torch.ones(8, 4), torch.zeros(8, dtype=torch.long)
    for t in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if t == 3:
            model[0].weight.grad[0, 0] = float("nan")
            with pytest.raises(ModscopeError, match="'0.weight' at step 3 holds NaN or inf"):
                rec.step(loss=loss)
            break
        rec.step(loss=loss)
        opt.step()
    stored = GradientStore.open(tmp_path / "g")
    assert stored.steps == [0, 1]  # the committed chunk; step 2 was buffered, step 3 never recorded
    assert np.isfinite(stored.matrix()).all()
    assert json.loads((tmp_path / "g" / "manifest.json").read_text())["train_state"] == "train_state-00000002.pt"
