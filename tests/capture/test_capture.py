"""Capture: rows equal a direct forward pass, RAM equals Zarr, and an interrupted capture resumes exactly."""

import json

import numpy as np
import pytest
import torch

from modscope import ModscopeError, load_model
from modscope.capture import ActivationStore, capture
from modscope.capture import run as capture_run
from modscope.capture import store as capture_store
from modscope.corpus import from_texts

TEXTS = from_texts(
    [f"Document {i}: " + " ".join(f"word{(i * 7 + j) % 31}" for j in range(40 + 9 * i)) for i in range(9)],
    categories=["a", "b", "c"] * 3,
)
SITES = "resid_post.*,head_out.1,mlp_act.0"


def test_rows_equal_a_direct_forward_pass(tiny_gpt2):
    store = capture(tiny_gpt2, TEXTS, SITES, positions="last:5", progress=False)
    meta = store.meta
    assert store.n_rows == 45 and list(meta.columns) == ["doc", "doc_id", "category", "position", "token"]
    ids = tiny_gpt2.tokenize([TEXTS.docs[3].text])[0]
    direct = tiny_gpt2.run_with_sites(torch.tensor([ids]), ["resid_post.1", "head_out.1"])
    rows = np.flatnonzero(meta["doc"] == 3)
    assert list(meta["position"][rows]) == list(range(len(ids) - 5, len(ids)))
    assert list(meta["token"][rows]) == ids[-5:]
    np.testing.assert_allclose(store["resid_post.1"][rows], direct["resid_post.1"][0, -5:].numpy(), atol=1e-5)
    np.testing.assert_allclose(store["head_out.1"][rows], direct["head_out.1"][0, -5:].numpy(), atol=1e-5)
    assert set(meta["category"]) == {"a", "b", "c"}


def test_positions_and_max_tokens_select_rows(tiny_gpt2):
    lengths = [len(ids) for ids in tiny_gpt2.tokenize(TEXTS.texts)]
    assert capture(tiny_gpt2, TEXTS, "embed", positions="first:3", progress=False).n_rows == 27
    assert capture(tiny_gpt2, TEXTS, "embed", positions=[0, -1], progress=False).n_rows == 18
    ranged = capture(tiny_gpt2, TEXTS, "embed", positions="range:60:80", progress=False)
    assert ranged.n_rows == sum(max(0, min(80, n) - 60) for n in lengths)
    assert capture(tiny_gpt2, TEXTS, "embed", max_tokens=100, progress=False).n_rows == 100
    cut = capture(tiny_gpt2, TEXTS, "embed", ctx=16, progress=False)
    assert cut.meta["position"].max() == 15


def test_token_id_sequences_are_accepted(tiny_gpt2):
    store = capture(tiny_gpt2, [[1, 2, 3, 4], [5, 6]], "resid_post.0", progress=False)
    assert store.n_rows == 6 and list(store.meta["token"]) == [1, 2, 3, 4, 5, 6]


def test_zarr_store_equals_ram_store_and_reopens(tiny_gpt2, tmp_path):
    ram = capture(tiny_gpt2, TEXTS, SITES, progress=False, batch_size=2)  # same batches: bit-identical floats
    disk = capture(tiny_gpt2, TEXTS, SITES, out=tmp_path / "s", progress=False, batch_size=2)
    reopened = ActivationStore.open(tmp_path / "s")
    for site in ram.sites:
        np.testing.assert_array_equal(np.asarray(disk[site]), ram[site])
        np.testing.assert_array_equal(np.concatenate(list(reopened.iter_batches(site, rows=17))), ram[site])
    assert reopened.meta.equals(ram.meta)


class Crash(Exception):
    pass


def test_interrupted_capture_resumes_without_losing_or_duplicating_rows(tiny_gpt2, tmp_path, monkeypatch):
    reference = capture(tiny_gpt2, TEXTS, SITES, progress=False, batch_size=2)
    monkeypatch.setattr(capture_run, "_chunk_rows", lambda manifest: 16)
    real_forward, calls = capture_run._forward, {"n": 0}

    def crashing_forward(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Crash
        return real_forward(*args)

    monkeypatch.setattr(capture_run, "_forward", crashing_forward)
    with pytest.raises(Crash):
        capture(tiny_gpt2, TEXTS, SITES, out=tmp_path / "s", batch_size=2, progress=False)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert 0 < manifest["rows_done"] < reference.n_rows and not manifest["complete"]
    monkeypatch.setattr(capture_run, "_forward", real_forward)
    resumed = capture(tiny_gpt2, TEXTS, SITES, out=tmp_path / "s", batch_size=2, progress=False)
    assert resumed.n_rows == reference.n_rows
    for site in reference.sites:
        np.testing.assert_array_equal(np.asarray(resumed[site]), reference[site])
    assert resumed.meta.equals(reference.meta)


def test_a_flush_torn_before_its_manifest_is_cut_off_on_resume(tiny_gpt2, tmp_path, monkeypatch):
    reference = capture(tiny_gpt2, TEXTS, "resid_post.1", progress=False, batch_size=1)
    monkeypatch.setattr(capture_run, "_chunk_rows", lambda manifest: 16)
    real_write, writes = capture_store.write_json_atomic, {"n": 0}

    def dying_manifest_write(path, obj):
        writes["n"] += 1
        if writes["n"] == 3:  # arrays of the 2nd flush are on disk, its manifest is not
            raise Crash
        real_write(path, obj)

    monkeypatch.setattr(capture_store, "write_json_atomic", dying_manifest_write)
    with pytest.raises(Crash):
        capture(tiny_gpt2, TEXTS, "resid_post.1", out=tmp_path / "s", batch_size=1, progress=False)
    monkeypatch.setattr(capture_store, "write_json_atomic", real_write)
    resumed = capture(tiny_gpt2, TEXTS, "resid_post.1", out=tmp_path / "s", batch_size=1, progress=False)
    np.testing.assert_array_equal(np.asarray(resumed["resid_post.1"]), reference["resid_post.1"])


def test_a_store_of_another_model_or_other_sites_is_refused(tiny_gpt2, tmp_path):
    capture(tiny_gpt2, TEXTS, "resid_post.0", out=tmp_path / "s", progress=False)
    with pytest.raises(ModscopeError, match="captured from model 'tiny-gpt2'"):
        capture(load_model("tiny-llama"), TEXTS, "resid_post.0", out=tmp_path / "s", progress=False)
    with pytest.raises(ModscopeError, match="other sites or settings"):
        capture(tiny_gpt2, TEXTS, "resid_post.1", out=tmp_path / "s", progress=False)


def test_corrupt_or_foreign_directories_are_clear_errors(tiny_gpt2, tmp_path):
    capture(tiny_gpt2, TEXTS, "resid_post.0", out=tmp_path / "s", progress=False)
    (tmp_path / "s" / "manifest.json").write_text("{not json")
    with pytest.raises(ModscopeError, match="corrupt"):
        ActivationStore.open(tmp_path / "s")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ModscopeError, match="not a capture store"):
        capture(tiny_gpt2, TEXTS, "resid_post.0", out=tmp_path / "other", progress=False)
    with pytest.raises(ModscopeError, match="no manifest.json"):
        ActivationStore.open(tmp_path / "other")


@pytest.mark.parametrize("kwargs, message", [
    ({"max_tokens": 0}, "max_tokens must be > 0"),
    ({"ctx": 0}, "ctx must be in"),
    ({"positions": "middle"}, "positions must be"),
])
def test_bad_arguments_are_clear_errors(tiny_gpt2, kwargs, message):
    with pytest.raises(ModscopeError, match=message):
        capture(tiny_gpt2, TEXTS, "embed", progress=False, **kwargs)


def test_empty_source_is_a_clear_error(tiny_gpt2):
    with pytest.raises(ModscopeError, match="nothing to capture"):
        capture(tiny_gpt2, [], "embed", progress=False)
