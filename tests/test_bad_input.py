"""Bad input through the installed ``modscope`` executable: exit code 2, one line on stderr, nothing left behind.

Every case runs the real entry point as a subprocess (a fresh install's typer/click, not an in-process runner).
Importing modscope takes seconds, so the cases are launched together, a few at a time, by one fixture.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modscope.capture import capture
from modscope.corpus import from_texts

EXECUTABLE = Path(sys.executable).parent / "modscope"
TEXTS = from_texts([f"Text {i}: " + " ".join(f"w{(i * 3 + j) % 17}" for j in range(20)) for i in range(4)])
SITE = "resid_post.1"


def _store(path: Path, model, positions: str = "last:4") -> str:
    capture(model, TEXTS, SITE, positions=positions, out=path, progress=False)
    return str(path)


def _jsonl(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


def _damaged(path: Path, model, how: str) -> str:
    _store(path, model)
    chunk = path / "sites" / SITE / "c" / "0" / "0"
    if how == "deleted":
        chunk.unlink()
    elif how == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:64])
    else:
        (path / "sites" / SITE / "zarr.json").write_text("{garbled")
    return str(path)


def _file(path: Path) -> str:
    path.write_text("not a directory")
    return str(path)


CAPTURE = ["capture", "--model", "tiny-gpt2", "--sites", SITE]
# name -> (argv builder (case dir, tiny model) -> list[str], regular expression the one line must match)
CASES = {
    "unknown option": (lambda d, m: ["sites", "tiny-gpt2", "--bogus"], r"No such option: --bogus .*--help"),
    "missing argument": (lambda d, m: ["sites"], r"(?i)Missing argument 'MODEL'"),
    "missing option": (lambda d, m: ["capture", "--model", "tiny-gpt2"], r"Missing option '--out'"),
    "bad value": (lambda d, m: [*CAPTURE, "--ctx", "abc", "--out", str(d / "s")], r"Invalid value for '--ctx'"),
    "jsonl invalid utf-8": (lambda d, m: [*CAPTURE, "--corpus", _jsonl(d / "c.jsonl", b'{"text": "a\xff"}\n'),
                                          "--out", str(d / "s")], r"c.jsonl:1 is not valid UTF-8"),
    "jsonl null text": (lambda d, m: [*CAPTURE, "--corpus", _jsonl(d / "c.jsonl", b'{"text": "ok"}\n{"text": null}\n'),
                                      "--out", str(d / "s")], r"c.jsonl:2: 'text' must be a string, got null"),
    "out is a file": (lambda d, m: [*CAPTURE, "--out", _file(d / "f")], r"--out .*/f is an existing file"),
    "out under a file": (lambda d, m: [*CAPTURE, "--out", _file(d / "f") + "/store"], r"/f is a file, not a directory"),
    "store chunk deleted": (lambda d, m: ["spectrum", "--store", _damaged(d / "s", m, "deleted"), "--twin", "none"],
                            r"chunk 0 .* of sites/resid_post.1 is missing; re-run `modscope capture`"),
    "store chunk truncated": (lambda d, m: ["mi", "--pair", "layers", "--sites", "resid_post.*",
                                            "--store", _damaged(d / "s", m, "truncated")], r"is truncated"),
    "store metadata garbled": (lambda d, m: ["spectrum", "--store", _damaged(d / "s", m, "garbled")],
                               r"metadata of sites/resid_post.1 .* unreadable"),
    "twin store at other positions": (
        lambda d, m: ["mi", "--sites", SITE, "--store", _store(d / "a", m),
                      "--twin-store", _store(d / "b", m, positions="first:4")],
        r"not row-aligned: row 0 is default/0 position \d+ .* in one and default/0 position 0"),
    "clusterability layer out of range": (lambda d, m: ["clusterability", "--model", "tiny-gpt2", "--layers", "0,9"],
                                          r"layers \[9\] out of range: tiny-gpt2 has blocks 0..1"),
}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, tiny_gpt2):
    assert EXECUTABLE.exists(), f"install modscope into {EXECUTABLE.parent} first"
    env = {**os.environ, "COLUMNS": "200", "MODSCOPE_CACHE": str(tmp_path_factory.mktemp("cache"))}
    prepared = {}
    for i, (name, (argv, _)) in enumerate(CASES.items()):
        case = tmp_path_factory.mktemp(f"case{i}")
        prepared[name] = (case, argv(case, tiny_gpt2), _tree(case))

    def run(name):
        case, args, _ = prepared[name]
        return subprocess.run([str(EXECUTABLE), *args], cwd=case, env=env, capture_output=True, text=True,
                              timeout=600)

    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(prepared, pool.map(run, prepared)))
    return {name: (done[name], prepared[name][2], _tree(prepared[name][0])) for name in prepared}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_on_stderr_exit_2_and_nothing_written(outcomes, name):
    proc, before, after = outcomes[name]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("modscope: error: ")
    assert re.search(CASES[name][1], lines[0]), lines[0]
    assert after == before, json.dumps(sorted(set(after) ^ set(before)))
