"""`modscope train mnist` killed with SIGKILL between each of its writes resumes to an uninterrupted run's matrix.

The kills are real: the installed command runs as a subprocess, and ``MODSCOPE_TEST_KILL_AT`` (see
``modscope.killpoints``) makes it SIGKILL itself at a named point between two writes of a flush.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modscope.training.mnist import train_mnist
from modscope.training.store import STATE_PREFIX, GradientStore

MODSCOPE = str(Path(sys.executable).parent / "modscope")
# 200 steps = flushes at rows 64, 128, 192 and a final one at 200 (the recorder's 64-row chunks)
SETTINGS = dict(max_steps=200, n_train=2000, batch_size=16, null="width:16", checkpoint_every=25)
ARGS = ["train", "mnist", "--max-steps", "200", "--n-train", "2000", "--batch-size", "16", "--null", "width:16",
        "--checkpoint-every", "25"]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def train(out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODSCOPE_TEST_KILL_AT": kill_at or ""}
    return subprocess.run([MODSCOPE, *ARGS, "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_kills_between_every_write_of_a_flush_lose_and_duplicate_no_row(tmp_path):
    reference = train_mnist(recorder=tmp_path / "reference", **SETTINGS).recorder.store
    out = tmp_path / "run"
    # (kill point, rows committed after the kill): each run resumes where the previous one was killed
    for kill_at, committed in [("grads-after-state:2", 64),      # chunk 2's rows and state, not its manifest
                               ("grads-after-rows:1", 64),       # chunk 2 again: rows only
                               ("grads-after-manifest:2", 192)]:  # chunks 2, 3 committed, old state not deleted
        killed = train(out, kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        store = GradientStore.open(out / "grads")
        assert store.n_steps == committed and store.steps == list(range(committed))
    (out / "grads" / "grads" / "p0" / "c" / "orphan.partial").write_bytes(b"torn chunk")  # as a torn Zarr write
    finished = train(out)
    assert finished.returncode == 0, finished.stderr
    resumed = GradientStore.open(out / "grads")
    assert resumed.steps == reference.steps == list(range(200))
    assert np.array_equal(resumed.matrix(), reference.matrix())
    assert resumed.losses == reference.losses
    assert resumed.checkpoint_steps == reference.checkpoint_steps == list(range(0, 201, 25))
    assert np.array_equal(resumed.checkpoint_logits, reference.checkpoint_logits)
    assert sorted(p.name for p in (out / "grads").glob(f"{STATE_PREFIX}*")) == [f"{STATE_PREFIX}00000200.pt"]
    assert not list(out.rglob("*.partial"))
