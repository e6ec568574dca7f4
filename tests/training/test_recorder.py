"""GradientRecorder: stored rows equal p.grad; Zarr store is resumable after an interrupted run."""

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.training import GradientRecorder, GradientStore, make_mlp
from modscope.training.loop import batch_schedule, run_steps


def toy_data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 20, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def test_recorded_gradients_equal_p_grad_captured_by_hand():
    model = make_mlp((20, 8, 3), seed=0)
    rec = GradientRecorder(model, params="all", chunk_steps=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = toy_data()
    by_hand = []
    for t in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[t * 8:(t + 1) * 8]), y[t * 8:(t + 1) * 8])
        loss.backward()
        by_hand.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy().copy())
        rec.step(loss=loss)
        opt.step()
    rec.close()
    assert np.array_equal(rec.store.matrix(), np.stack(by_hand))
    assert rec.store.steps == [0, 1, 2, 3, 4] and np.isfinite(rec.store.losses).all()


def test_context_manager_hooks_optimizer_step_and_every_keeps_one_in_n():
    model = make_mlp((20, 8, 3), seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = toy_data()
    with GradientRecorder(model, optimizer=opt, every=2) as rec:
        for _ in range(6):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert rec.store.steps == [0, 2, 4]
    assert rec.store.names == ["0.weight", "2.weight"]  # default: matrices only
    assert rec.store.lrs == [0.05] * 3
    with pytest.raises(ModscopeError, match="optimizer"):
        with GradientRecorder(model):
            pass


def record_run(out, steps, *, stop_at=None):
    model = make_mlp((20, 8, 3), seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = GradientRecorder(model, out=out, params="all", chunk_steps=4)
    start = rec.resume_training(model, opt)
    x, y = toy_data()
    batches = batch_schedule(len(x), 8, 10, seed=0)[:steps]
    run_steps(model, opt, x, y, batches[:stop_at] if stop_at else batches, recorder=rec, start_step=start)
    if stop_at is None:
        rec.close()
    return rec  # without close(): the buffered tail is lost, as in a killed process


def test_interrupted_zarr_recording_resumes_to_the_same_matrix_as_an_uninterrupted_one(tmp_path):
    whole = record_run(tmp_path / "whole", 14)
    record_run(tmp_path / "cut", 14, stop_at=11)  # rows 0..7 committed, 8..10 lost
    assert GradientStore.open(tmp_path / "cut").n_steps == 8
    resumed = record_run(tmp_path / "cut", 14)
    reopened = GradientStore.open(tmp_path / "cut")
    assert reopened.n_steps == 14 and reopened.steps == list(range(14))
    assert np.array_equal(reopened.matrix(), whole.store.matrix())
    assert np.allclose(reopened.losses, whole.store.losses)
    assert resumed.store.path == reopened.path


def test_reopening_with_a_different_model_is_refused(tmp_path):
    record_run(tmp_path / "g", 4)
    with pytest.raises(ModscopeError, match="other parameters"):
        GradientRecorder(make_mlp((20, 5, 3)), out=tmp_path / "g", params="all")


def test_a_second_recorder_on_a_store_in_use_is_refused_until_the_first_closes(tmp_path):
    model = make_mlp((20, 8, 3), seed=0)
    first = GradientRecorder(model, tmp_path / "grads", params="all", chunk_steps=2)
    with pytest.raises(ModscopeError, match=r"in use by pid \d+"):
        GradientRecorder(model, tmp_path / "grads", params="all", chunk_steps=2)
    first.close()
    again = GradientRecorder(model, tmp_path / "grads", params="all", chunk_steps=2)  # free once closed
    again.close()
