"""One writer per store: a second run into a locked directory is one clear refusal; a stale lock blocks nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modscope.capture import ActivationStore, capture
from modscope.capture.sharded import capture_sharded
from modscope.errors import ModscopeError
from modscope.locking import HOLDER_FILE, LOCK_FILE, directory_lock, has_content

TEXTS = ["the cat sat on the mat", "a dog ran in the park today", "one two three four five six"]
MODSCOPE = str(Path(sys.executable).parent / "modscope")


def test_a_second_capture_cli_into_a_locked_store_exits_2_with_one_line_naming_the_holder(tmp_path):
    out = tmp_path / "store"
    with directory_lock(out, command="modscope capture --model tiny-gpt2 (first run)"):
        second = subprocess.run([MODSCOPE, "capture", "--model", "tiny-gpt2", "--sites", "resid_post.1",
                                 "--max-tokens", "50", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith(f"modscope: error: {out} is in use by pid {os.getpid()} "
                               "(modscope capture --model tiny-gpt2 (first run)) since ")
    assert "wait for it" in lines[0] and not has_content(out)


def test_capture_and_sharded_capture_into_a_locked_store_are_refused_in_process_too(tiny_gpt2, tmp_path):
    out = tmp_path / "store"
    with directory_lock(out):
        with pytest.raises(ModscopeError, match=f"in use by pid {os.getpid()}"):
            capture(tiny_gpt2, TEXTS, "resid_post.1", out=out, progress=False)
        with pytest.raises(ModscopeError, match="in use by pid"):
            capture_sharded(tiny_gpt2, TEXTS, "resid_post.1", out=out, shards=2, engine="serial", batch_size=1)
    assert not has_content(out)  # the refused runs wrote nothing


def test_a_directory_holding_only_a_stale_lock_of_a_killed_run_is_used_and_resumed(tiny_gpt2, tmp_path):
    out = tmp_path / "store"
    out.mkdir()
    (out / LOCK_FILE).write_text("")  # the lock file outlives its (SIGKILLed) holder; the OS lock did not
    (out / HOLDER_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "modscope capture"}))
    store = capture(tiny_gpt2, TEXTS, "resid_post.1", out=out, batch_size=1, progress=False)
    again = capture(tiny_gpt2, TEXTS, "resid_post.1", out=out, batch_size=1, progress=False)  # lock file: still a store
    reference = capture(tiny_gpt2, TEXTS, "resid_post.1", batch_size=1, progress=False)
    assert store.n_rows == again.n_rows == reference.n_rows
    np.testing.assert_array_equal(np.asarray(ActivationStore.open(out)["resid_post.1"]), reference["resid_post.1"])
    assert not (out / HOLDER_FILE).exists()  # released: nobody holds it now


def test_sharded_capture_holds_the_lock_in_the_parent_only(tiny_gpt2, tmp_path):
    out = tmp_path / "sharded"
    store = capture_sharded(tiny_gpt2, TEXTS, "resid_post.1", out=out, shards=2, engine="serial", batch_size=1)
    reference = capture(tiny_gpt2, TEXTS, "resid_post.1", batch_size=1, progress=False)
    np.testing.assert_array_equal(np.asarray(store["resid_post.1"]), reference["resid_post.1"])


def test_a_capped_max_tokens_is_stated_and_kept_in_the_settings_and_batch_size_0_is_refused(tiny_gpt2, tmp_path,
                                                                                             capsys):
    store = capture(tiny_gpt2, TEXTS, "resid_post.1", max_tokens=10_000, out=tmp_path / "s", progress=False)
    note = capsys.readouterr().err.strip().splitlines()
    assert note == [f"modscope: note: --max-tokens 10000 is more than the source holds at these positions; "
                    f"capturing all {store.n_rows} rows"]
    assert store.settings["max_tokens_capped_to"] == store.n_rows < 10_000
    with pytest.raises(ModscopeError, match="batch_size must be >= 1"):
        capture(tiny_gpt2, TEXTS, "resid_post.1", batch_size=0, progress=False)
