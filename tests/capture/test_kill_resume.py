"""`modscope capture` SIGKILLed between a chunk's write and its manifest resumes to an uninterrupted capture."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modscope import corpus
from modscope.capture import ActivationStore, capture

MODSCOPE = str(Path(sys.executable).parent / "modscope")
# 9000 rows of one 64-wide site: 4096-row chunks, so flushes at about 4096 and 8192 rows and a final one
ARGS = ["capture", "--model", "tiny-gpt2", "--sites", "resid_post.1", "--max-tokens", "9000", "--ctx", "128",
        "--batch-size", "8"]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def run_capture(out: Path, kill_at: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([MODSCOPE, *ARGS, "--out", str(out)], env={**os.environ, "MODSCOPE_TEST_KILL_AT": kill_at},
                          capture_output=True, text=True, timeout=300)


def test_a_capture_killed_after_its_rows_before_its_manifest_resumes_exactly(tiny_gpt2, tmp_path):
    reference = capture(tiny_gpt2, corpus.load("bundled"), "resid_post.1", max_tokens=9000, ctx=128, batch_size=8,
                        out=tmp_path / "reference", progress=False)
    out = tmp_path / "run"
    killed = run_capture(out, "capture-after-rows:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"] and 4096 <= manifest["rows_done"] < 8192
    torn = out / "sites" / "resid_post.1" / "c" / "9" / "0.0123.partial"  # as a Zarr chunk write torn by a kill
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_bytes(b"torn")
    finished = run_capture(out)
    assert finished.returncode == 0, finished.stderr
    resumed = ActivationStore.open(out)
    assert resumed.n_rows == reference.n_rows == 9000
    np.testing.assert_array_equal(np.asarray(resumed["resid_post.1"]), np.asarray(reference["resid_post.1"]))
    assert resumed.meta.equals(reference.meta)
    assert not list(out.rglob("*.partial"))
