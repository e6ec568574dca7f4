"""``ActivationStore``: captured sites as arrays [rows, ...] with per-row metadata, in RAM or in a Zarr directory.

On disk a store is a Zarr v3 group (``sites/<name>`` float32 arrays chunked by rows, ``meta/{doc,position,token}``)
plus ``manifest.json``. The manifest is the commit point: it is replaced atomically after each flushed chunk and
records how many rows and documents are complete, so a capture killed at any moment resumes exactly there.
It also records a CRC-32 per chunk of every array (see ``modscope.capture.integrity``): a missing or truncated
chunk is an error on open, a corrupted one when its rows are read, and re-running the capture rewrites it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modscope.capture import integrity
from modscope.capture.integrity import CHECKSUMS
from modscope.errors import ModscopeError
from modscope.killpoints import kill_point
from modscope.paths import write_json_atomic

FORMAT, FORMAT_VERSION = "modscope-capture", 1
MANIFEST = "manifest.json"
META_FIELDS = ("doc", "position", "token")


class ActivationStore:
    """Captured activations: ``store[site]`` is an array [n_rows, *shape]; ``store.meta`` describes each row.

    Attributes:
        sites: captured site names in forward order.
        shapes: site -> per-row shape.
        n_rows: number of rows (captured token positions).
        model_info: ``Model.describe()`` of the model that made it, plus its ``fingerprint``.
        settings: the capture settings (positions, ctx, max_tokens, source hash).
        docs: table of the source documents (``doc_id``, ``category``); ``meta.doc`` indexes it.
        path: the Zarr directory, or None for an in-RAM store.
    """

    def __init__(self, arrays: dict[str, Any], meta: dict[str, Any], docs: pd.DataFrame, manifest: dict,
                 path: Path | None = None):
        self._arrays, self._meta, self.docs, self.manifest, self.path = arrays, meta, docs, manifest, path
        self.n_rows = int(manifest["rows_done"])

    @property
    def sites(self) -> list[str]:
        return list(self.manifest["sites"])

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {s: tuple(v) for s, v in self.manifest["sites"].items()}

    @property
    def model_info(self) -> dict:
        return self.manifest["model"]

    @property
    def settings(self) -> dict:
        return self.manifest["settings"]

    def __contains__(self, site: str) -> bool:
        return site in self._arrays

    def __getitem__(self, site: str):
        if site not in self._arrays:
            raise ModscopeError(f"site '{site}' is not in this store; it has: {', '.join(self.sites)}")
        arr = self._arrays[site]
        return arr if arr.shape[0] == self.n_rows else arr[: self.n_rows]

    @property
    def meta(self) -> pd.DataFrame:
        """One row per captured position: doc (index into ``docs``), doc_id, category, position, token."""
        frame = pd.DataFrame({k: np.asarray(self._meta[k][: self.n_rows]) for k in META_FIELDS})
        frame.insert(1, "doc_id", self.docs["doc_id"].to_numpy()[frame["doc"]])
        frame.insert(2, "category", self.docs["category"].to_numpy()[frame["doc"]])
        return frame

    def rows_description(self) -> dict:
        """What the rows are: counts per category of the documents that contributed rows, how they were sampled,
        and one sentence (see ``capture.sampling.rows_summary``). Stores from before sampling report ``'first'``
        when they were cut by ``max_tokens``."""
        from modscope.capture.sampling import rows_summary

        used = np.unique(np.asarray(self._meta["doc"][: self.n_rows]))
        categories = self.docs["category"].to_numpy()[used].tolist()
        settings = self.settings
        whole = settings.get("max_tokens") is None or "max_tokens_capped_to" in settings  # nothing was left out
        return rows_summary(categories, self.n_rows, sample="all" if whole else settings.get("sample", "first"),
                            seed=settings.get("seed"))

    def iter_batches(self, site: str, rows: int = 8192, *, start: int = 0, stop: int | None = None
                     ) -> Iterator[np.ndarray]:
        """Yield float32 numpy blocks of ``site`` of at most ``rows`` rows, reading one block at a time.

        On a Zarr store with checksums, every chunk read whole is checked against its checksum.
        """
        arr, stop = self[site], self.n_rows if stop is None else min(stop, self.n_rows)
        verifier = self._verifier(f"sites/{site}")
        for lo in range(start, stop, rows):
            block = self._read(site, arr, lo, min(lo + rows, stop))
            if verifier is not None:
                verifier.feed(lo, block)
            yield np.asarray(block, dtype=np.float32)

    def _verifier(self, name: str) -> integrity.ChunkVerifier | None:
        sums = self.manifest.get(CHECKSUMS, {}).get("arrays", {}).get(name)
        if self.path is None or sums is None:
            return None
        arr = self._arrays[name.removeprefix("sites/")]
        return integrity.ChunkVerifier(self.path, name, sums, int(arr.chunks[0]), self.n_rows, arr.dtype)

    def _read(self, site: str, arr: Any, lo: int, hi: int) -> np.ndarray:
        try:
            return np.asarray(arr[lo:hi])
        except (ValueError, OSError) as exc:  # a chunk damaged after the store was opened
            raise ModscopeError(f"{self.path} is damaged: rows {lo}-{hi - 1} of sites/{site} cannot be read "
                                f"({type(exc).__name__}); {integrity.REPAIR}") from None

    def verify(self) -> None:
        """Read every chunk of every array and check its checksum (``ModscopeError`` naming the first bad one)."""
        if self.path is not None:
            bad = integrity.first_bad_chunk(self.path, _named(self._arrays, self._meta), self.n_rows,
                                            self.manifest.get(CHECKSUMS))
            if bad is not None:
                chunk, name = bad
                raise ModscopeError(f"{self.path} is damaged: chunk {chunk} of {name} is missing, truncated or "
                                    f"does not match its checksum; {integrity.REPAIR}")

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "RAM"
        return f"ActivationStore({self.n_rows} rows, {len(self.sites)} sites, model={self.model_info['name']}, {where})"

    @classmethod
    def open(cls, path: str | Path) -> ActivationStore:
        """Open a store written by ``capture(..., out=path)``; a missing or damaged store is a clear error."""
        path = Path(path)
        manifest = read_manifest(path)
        if manifest is None:
            raise ModscopeError(f"{path} is not a modscope capture store (no {MANIFEST}); run `modscope capture` first")
        arrays, meta = _open_arrays(path, manifest)
        short = [name for name, arr in {**arrays, **meta}.items() if arr.shape[0] < manifest["rows_done"]]
        if short:
            raise ModscopeError(f"{path} is a corrupt capture store ({', '.join(short)} shorter than the "
                                f"{manifest['rows_done']} rows its manifest records); delete it and re-run the capture")
        integrity.check_files(path, _named(arrays, meta), int(manifest["rows_done"]), manifest.get(CHECKSUMS))
        return cls(arrays, meta, docs_frame(manifest), manifest, path)


def check_rows_aligned(a: ActivationStore, b: ActivationStore, what: str = "the two stores") -> None:
    """Refuse to pair two stores whose rows are not the same tokens: same document id, position and token id.

    Objects without row metadata (array-only stand-ins) are compared by what they have: their row counts.

    Raises:
        ModscopeError naming the first row that differs.
    """
    if getattr(a, "n_rows", None) != getattr(b, "n_rows", None):
        raise ModscopeError(f"{what} have {a.n_rows} and {b.n_rows} rows, so their rows are not the same tokens; "
                            "capture both on the same source with the same --positions, --ctx and --max-tokens")
    if not (hasattr(a, "meta") and hasattr(b, "meta")):
        return
    ma, mb = a.meta, b.meta
    same = np.logical_and.reduce([ma[c].to_numpy() == mb[c].to_numpy() for c in ("doc_id", "position", "token")])
    if not same.all():
        row = int(np.flatnonzero(~same)[0])
        first, second = ma.iloc[row], mb.iloc[row]
        raise ModscopeError(f"{what} are not row-aligned: row {row} is {first.doc_id} position {first.position} "
                            f"token {first.token} in one and {second.doc_id} position {second.position} token "
                            f"{second.token} in the other; capture both on the same source with the same "
                            "--positions, --ctx and --max-tokens")


def _named(arrays: dict, meta: dict) -> dict:
    """Every array of a store under its path in the group: ``sites/<site>`` and ``meta/<field>``."""
    return {**{f"sites/{s}": a for s, a in arrays.items()}, **{f"meta/{k}": a for k, a in meta.items()}}


def repair_for_resume(path: Path, existing: dict | None, batch_size: int | None = None) -> dict | None:
    """The manifest to resume ``existing`` from, rolled back to before its first damaged chunk (if any).

    Every committed chunk is read and checked; the rolled-back manifest (no longer complete, checksums cut to
    the kept rows) is written before returning, and the writer then rewrites everything after it.
    """
    if existing is None or not existing.get("rows_done"):
        return existing
    arrays, meta = _open_arrays(path, existing)
    named = _named(arrays, meta)
    bad = integrity.first_bad_chunk(path, named, int(existing["rows_done"]), existing.get(CHECKSUMS))
    if bad is None:
        return existing
    rows, docs = integrity.rollback_point(meta["doc"], bad[0] * int(meta["doc"].chunks[0]), batch_size)
    existing = {k: v for k, v in existing.items() if k != "sharded"}  # resumed as a plain capture
    existing.update(rows_done=rows, docs_done=docs, complete=False)
    record_checksums(path, existing, named)
    write_json_atomic(path / MANIFEST, existing)
    return existing


def record_checksums(path: Path, manifest: dict, named: dict | None = None) -> None:
    """Add the checksums of every committed chunk to ``manifest``, read from the arrays (``named``, default: the
    store's at ``path``), for writers that fill regions out of order and for a rolled-back resume."""
    named = named or _named(*_open_arrays(path, manifest))
    chunk_rows = int(named["meta/doc"].chunks[0])
    manifest[CHECKSUMS] = {"chunk_rows": chunk_rows, "arrays": {
        name: integrity.sums_from_disk(arr, chunk_rows, int(manifest["rows_done"])) for name, arr in named.items()}}


def docs_frame(manifest: dict) -> pd.DataFrame:
    return pd.DataFrame(manifest["docs"], columns=["doc_id", "category"])


def read_manifest(path: Path) -> dict | None:
    file = path / MANIFEST
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text())
    except json.JSONDecodeError:
        raise ModscopeError(f"{path} is a corrupt capture store (unreadable {MANIFEST}); delete it, re-run") from None
    if manifest.get("format") != FORMAT:
        raise ModscopeError(f"{path}/{MANIFEST} is not a modscope capture manifest; choose another --out")
    return manifest


def _open_arrays(path: Path, manifest: dict) -> tuple[dict, dict]:
    """(site arrays, meta arrays) of the store at ``path``; damaged array metadata is a clear error."""
    group = _open_group(path, "r")

    def one(name: str):
        try:
            return group[name]
        except Exception as exc:  # noqa: BLE001 - zarr raises several types for damaged array metadata
            raise ModscopeError(f"{path} is damaged: the metadata of {name} ({name}/zarr.json) is unreadable "
                                f"({type(exc).__name__}); delete the store and re-run `modscope capture`") from None

    return {s: one(f"sites/{s}") for s in manifest["sites"]}, {k: one(f"meta/{k}") for k in META_FIELDS}


def array_layout(manifest: dict) -> list[tuple[str, list[int], str]]:
    """(name in the group, per-row shape, dtype) of every array of a store: ``sites/<site>``, then ``meta/<field>``."""
    return [*((f"sites/{s}", shape, "float32") for s, shape in manifest["sites"].items()),
            *((f"meta/{k}", [], "int64") for k in META_FIELDS)]


def _open_group(path: Path, mode: str):
    import zarr

    try:
        return zarr.open_group(str(path), mode=mode)
    except Exception as exc:  # zarr raises several types for damaged metadata
        raise ModscopeError(f"{path} is a corrupt capture store ({type(exc).__name__}); delete it and re-run") from None


class RamWriter:
    """Collects captured blocks in memory; ``finish`` concatenates them into an in-RAM store."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        self.blocks: dict[str, list[np.ndarray]] = {s: [] for s in [*manifest["sites"], *META_FIELDS]}

    def append(self, site_rows: dict[str, np.ndarray], meta_rows: dict[str, np.ndarray], docs_done: int) -> None:
        for name, rows in {**site_rows, **meta_rows}.items():
            self.blocks[name].append(rows)
        self.manifest["rows_done"] += len(meta_rows["doc"])
        self.manifest["docs_done"] = docs_done

    def finish(self) -> ActivationStore:
        self.manifest["complete"] = True
        shapes = self.manifest["sites"]
        arrays = {s: _concat(self.blocks[s], shapes[s], np.float32) for s in shapes}
        meta = {k: _concat(self.blocks[k], [], np.int64) for k in META_FIELDS}
        return ActivationStore(arrays, meta, docs_frame(self.manifest), self.manifest)


def _concat(blocks: list[np.ndarray], shape: Sequence[int], dtype) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros((0, *shape), dtype=dtype)


class ZarrWriter:
    """Appends blocks to a Zarr store, buffering up to ``chunk_rows`` rows so memory stays bounded.

    Each flush resizes and writes every array, then replaces the manifest: the manifest never claims rows that
    are not on disk, and rows past it (from an interrupted flush) are cut off when the capture resumes.
    """

    def __init__(self, path: Path, manifest: dict, chunk_rows: int):
        import zarr

        self.path, self.manifest, self.chunk_rows = path, manifest, chunk_rows
        self.group = zarr.open_group(str(path), mode="a")
        rows = manifest["rows_done"]
        self.arrays = {}
        for name, shape, dtype in array_layout(manifest):
            if name in self.group:
                arr = self.group[name]
                arr.resize((rows, *shape))  # drop rows past the last committed flush
            else:
                arr = self.group.create_array(name, shape=(0, *shape), chunks=(chunk_rows, *shape), dtype=dtype,
                                              compressors=None)
            self.arrays[name] = arr
        self.buffer: dict[str, list[np.ndarray]] = {name: [] for name in self.arrays}
        self.buffered_rows, self.docs_done = 0, manifest["docs_done"]
        self.sum_rows = int(self.arrays["meta/doc"].chunks[0])  # rows per chunk as created (may predate this run)
        self.sums = self._committed_sums(read_manifest(path), rows)
        manifest[CHECKSUMS] = {"chunk_rows": self.sum_rows, "arrays": self.sums}
        write_json_atomic(path / MANIFEST, manifest)

    def _committed_sums(self, on_disk: dict | None, rows: int) -> dict[str, list[int]]:
        """Checksums of the committed rows: from the manifest on disk, or computed from the arrays (old stores)."""
        recorded = (on_disk or {}).get(CHECKSUMS, {})
        if on_disk is not None and on_disk.get("rows_done") == rows and recorded.get("chunk_rows") == self.sum_rows \
                and set(recorded.get("arrays", {})) == set(self.arrays):
            return {name: list(recorded["arrays"][name]) for name in self.arrays}
        return {name: integrity.sums_from_disk(arr, self.sum_rows, rows) for name, arr in self.arrays.items()}

    def append(self, site_rows: dict[str, np.ndarray], meta_rows: dict[str, np.ndarray], docs_done: int) -> None:
        for name, rows in _named(site_rows, meta_rows).items():
            self.buffer[name].append(rows)
        self.buffered_rows += len(meta_rows["doc"])
        self.docs_done = docs_done
        if self.buffered_rows >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        start = self.manifest["rows_done"]
        stop = start + self.buffered_rows
        for name, arr in self.arrays.items():
            if self.buffer[name]:
                block = np.concatenate(self.buffer[name])
                arr.resize((stop, *arr.shape[1:]))
                arr[start:stop] = block
                integrity.extend_sums(self.sums[name], self.sum_rows, start, block, arr.dtype)
            self.buffer[name] = []
        kill_point("capture-after-rows")  # crash tests: rows on disk, not yet counted by the manifest
        self.manifest.update(rows_done=stop, docs_done=self.docs_done)
        write_json_atomic(self.path / MANIFEST, self.manifest)
        self.buffered_rows = 0

    def finish(self) -> ActivationStore:
        self.flush()
        self.manifest["complete"] = True
        write_json_atomic(self.path / MANIFEST, self.manifest)
        return ActivationStore.open(self.path)
