"""Store integrity: a missing, truncated or corrupted chunk is named on read, and re-running the capture repairs it."""

import json

import numpy as np
import pytest

from modscope import ModscopeError
from modscope.capture import ActivationStore, capture
from modscope.capture import run as capture_run
from modscope.capture.store import check_rows_aligned
from modscope.corpus import from_texts

TEXTS = from_texts([f"Doc {i}: " + " ".join(f"w{(i * 5 + j) % 23}" for j in range(30 + 7 * i)) for i in range(8)])
SITE = "resid_post.1"


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(capture_run, "_chunk_rows", lambda manifest: 16)


@pytest.fixture
def reference(tiny_gpt2):
    return capture(tiny_gpt2, TEXTS, SITE, batch_size=2, progress=False)


def _store(tiny_gpt2, path, **kwargs):
    return capture(tiny_gpt2, TEXTS, SITE, out=path, batch_size=2, progress=False, **kwargs)


def _chunk(path, chunk):
    return path / "sites" / SITE / "c" / str(chunk) / "0"


def _assert_equal(store, reference):
    np.testing.assert_array_equal(np.asarray(store[SITE]), reference[SITE])
    assert store.meta.equals(reference.meta)


def test_manifest_records_a_checksum_per_chunk_matching_the_rows(tiny_gpt2, tmp_path, small_chunks, reference):
    store = _store(tiny_gpt2, tmp_path / "s")
    sums = store.manifest["checksums"]
    assert sums["chunk_rows"] == 16
    assert len(sums["arrays"][f"sites/{SITE}"]) == -(-reference.n_rows // 16)
    import zlib
    rows = np.ascontiguousarray(reference[SITE][16:32], dtype=np.float32)
    assert sums["arrays"][f"sites/{SITE}"][1] == zlib.crc32(rows.tobytes())
    assert sum(1 for _ in store.iter_batches(SITE, rows=10)) == -(-reference.n_rows // 10)  # all chunks verify


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.unlink(), "chunk 3 .* of sites/resid_post.1 is missing"),
    (lambda f: f.write_bytes(f.read_bytes()[:100]), "chunk 3 .* of sites/resid_post.1 is truncated"),
])
def test_a_missing_or_truncated_chunk_is_named_on_open_and_a_rerun_repairs_it(tiny_gpt2, tmp_path, small_chunks,
                                                                              reference, damage, message):
    _store(tiny_gpt2, tmp_path / "s")
    damage(_chunk(tmp_path / "s", 3))
    with pytest.raises(ModscopeError, match=message + ".*re-run `modscope capture`"):
        ActivationStore.open(tmp_path / "s")
    repaired = _store(tiny_gpt2, tmp_path / "s")
    _assert_equal(repaired, reference)
    repaired.verify()


def test_corrupted_bytes_fail_the_checksum_when_read_and_a_rerun_repairs_them(tiny_gpt2, tmp_path, small_chunks,
                                                                            reference):
    _store(tiny_gpt2, tmp_path / "s")
    file = _chunk(tmp_path / "s", 2)
    data = bytearray(file.read_bytes())
    data[40] ^= 0xFF
    file.write_bytes(bytes(data))
    store = ActivationStore.open(tmp_path / "s")  # sizes are right: caught when the chunk is read
    with pytest.raises(ModscopeError, match="chunk 2 .* does not match its checksum"):
        list(store.iter_batches(SITE, rows=7))
    with pytest.raises(ModscopeError, match="chunk 2 of sites/resid_post.1"):
        store.verify()
    _assert_equal(_store(tiny_gpt2, tmp_path / "s"), reference)


def test_garbled_array_metadata_is_a_clear_error(tiny_gpt2, tmp_path):
    _store(tiny_gpt2, tmp_path / "s")
    (tmp_path / "s" / "sites" / SITE / "zarr.json").write_text("{garbled")
    with pytest.raises(ModscopeError, match="metadata of sites/resid_post.1 .* unreadable"):
        ActivationStore.open(tmp_path / "s")


def test_all_zero_chunks_zarr_never_writes_are_not_damage(tiny_gpt2, tmp_path):
    store = capture(tiny_gpt2, TEXTS, SITE, positions=[0], out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s" / "meta" / "position" / "c" / "0").exists()  # every position is 0
    assert (ActivationStore.open(tmp_path / "s").meta["position"] == 0).all() and store.n_rows == len(TEXTS)


def test_a_store_without_checksums_still_opens_and_missing_site_chunks_are_found(tiny_gpt2, tmp_path, small_chunks,
                                                                                reference):
    _store(tiny_gpt2, tmp_path / "s")
    manifest_file = tmp_path / "s" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["checksums"]
    manifest_file.write_text(json.dumps(manifest))
    _assert_equal(ActivationStore.open(tmp_path / "s"), reference)
    _chunk(tmp_path / "s", 1).unlink()
    with pytest.raises(ModscopeError, match="chunk 1 .* is missing"):
        ActivationStore.open(tmp_path / "s")
    _assert_equal(_store(tiny_gpt2, tmp_path / "s"), reference)


def test_rows_of_two_stores_are_paired_only_when_they_are_the_same_tokens(tiny_gpt2):
    last = capture(tiny_gpt2, TEXTS, SITE, positions="last:4", progress=False)
    check_rows_aligned(last, capture(tiny_gpt2, TEXTS, "resid_post.0", positions="last:4", progress=False))
    first_rows = r"not row-aligned: row 0 is default/0 position [1-9]\d* token \d+ in one and default/0 position 0 "
    with pytest.raises(ModscopeError, match=first_rows):
        check_rows_aligned(last, capture(tiny_gpt2, TEXTS, SITE, positions="first:4", progress=False))
    with pytest.raises(ModscopeError, match="32 and 16 rows"):
        check_rows_aligned(last, capture(tiny_gpt2, TEXTS, SITE, positions="last:2", progress=False))
