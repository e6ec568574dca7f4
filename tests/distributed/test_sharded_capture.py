"""A capture sharded over 3 processes equals a single-process capture row for row, and an interrupted one resumes."""

import json

import numpy as np
import pytest

from modscope import ModscopeError
from modscope.capture import ActivationStore, capture
from modscope.capture import sharded as sh
from modscope.corpus import from_texts

TEXTS = from_texts([f"Doc {i}: " + " ".join(f"w{(i * 5 + j) % 23}" for j in range(20 + 7 * i)) for i in range(12)],
                   categories=["a", "b", "c"] * 4)
SITES = "resid_post.*,head_out.1"


@pytest.fixture(scope="module")
def single(tiny_gpt2, tmp_path_factory):
    return capture(tiny_gpt2, TEXTS, SITES, positions="last:40", batch_size=2, progress=False,
                   out=tmp_path_factory.mktemp("single") / "s")


def assert_same_rows(a: ActivationStore, b: ActivationStore) -> None:
    assert a.n_rows == b.n_rows and a.sites == b.sites
    for site in a.sites:
        np.testing.assert_array_equal(np.asarray(a[site]), np.asarray(b[site]))
    assert a.meta.equals(b.meta) and a.docs.equals(b.docs)


def test_three_process_capture_equals_single_process_capture(tiny_gpt2, single, tmp_path):
    out = tmp_path / "sharded"
    store = sh.capture_sharded("tiny-gpt2", TEXTS, SITES, out=out, shards=3, positions="last:40", batch_size=2,
                               backend="processes", start_method="fork")  # fork: no re-import of torch per process
    manifest = json.loads((out / "manifest.json").read_text())
    plan = manifest["sharded"]["plan"]
    assert len(plan) == 3 and [p["docs"][0] for p in plan[1:]] == [p["docs"][1] for p in plan[:-1]]
    assert any(p["rows"][0] % manifest["sharded"]["chunk_rows"] for p in plan[1:])  # shards share a chunk
    assert_same_rows(store, single)
    assert_same_rows(ActivationStore.open(out), single)


def test_interrupted_sharded_capture_resumes_to_the_same_store(tiny_gpt2, single, tmp_path):
    out = tmp_path / "resumed"
    with pytest.raises(ModscopeError, match="did not finish"):
        real = sh.run_shard
        sh.run_shard = lambda *a, **k: 0 if a[4] == 1 else real(*a, **k)  # shard 1 "dies" before writing
        try:
            sh.capture_sharded(tiny_gpt2, TEXTS, SITES, out=out, shards=3, positions="last:40", batch_size=2,
                               backend="serial")
        finally:
            sh.run_shard = real
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    store = sh.capture_sharded(tiny_gpt2, TEXTS, SITES, out=out, shards=3, positions="last:40", batch_size=2,
                               backend="serial")
    assert_same_rows(store, single)
    with pytest.raises(ModscopeError, match="other sites"):
        sh.capture_sharded(tiny_gpt2, TEXTS, "embed", out=out, shards=3, positions="last:40", backend="serial")


def test_dask_workers_capture_the_same_rows(tiny_gpt2, single, client, tmp_path):
    store = sh.capture_sharded(tiny_gpt2, TEXTS, SITES, out=tmp_path / "d", shards=3, positions="last:40",
                               batch_size=2, backend="dask", client=client)
    assert_same_rows(store, single)


def test_plain_capture_refuses_to_resume_an_unfinished_sharded_store(tiny_gpt2, tmp_path):
    out = tmp_path / "half"
    real = sh.run_shard
    sh.run_shard = lambda *a, **k: 0  # every shard "dies" before writing
    try:
        with pytest.raises(ModscopeError, match="did not finish"):
            sh.capture_sharded(tiny_gpt2, TEXTS, SITES, out=out, shards=2, positions="last:40", backend="serial")
    finally:
        sh.run_shard = real
    with pytest.raises(ModscopeError, match="unfinished sharded capture"):
        capture(tiny_gpt2, TEXTS, SITES, positions="last:40", out=out, progress=False)
