"""Per-chunk checksums of a capture store: recorded with each commit, checked on open, on read and on resume.

The manifest's ``checksums`` entry is ``{"chunk_rows": R, "arrays": {name: [crc_0, crc_1, ...]}}`` where ``crc_c``
is the CRC-32 of the raw little-endian bytes of the *committed* rows ``[c R, min((c + 1) R, rows_done))`` of array
``name`` (``sites/<site>`` or ``meta/<field>``); the row count of each chunk follows from ``rows_done`` and ``R``.
CRC-32 composes (``crc32(b, crc32(a)) == crc32(a + b)``), so a writer appending rows to a partly filled chunk
extends that chunk's sum without reading it back.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from modscope.errors import ModscopeError

CHECKSUMS = "checksums"
REPAIR = "re-run `modscope capture` with the same arguments to rewrite it"


class DamagedStore(ModscopeError):
    """A chunk of a capture store is missing, truncated or does not match its checksum."""

    def __init__(self, path: Path, name: str, chunk: int, what: str, chunk_rows: int):
        self.name, self.chunk = name, chunk
        rows = f"rows {chunk * chunk_rows}-{(chunk + 1) * chunk_rows - 1}"
        super().__init__(f"{path} is damaged: chunk {chunk} ({rows}) of {name} {what}; {REPAIR}")


def crc(block: np.ndarray, dtype: Any, previous: int = 0) -> int:
    """CRC-32 of ``block``'s rows as ``dtype`` (C order), continuing from ``previous``."""
    data = np.ascontiguousarray(block, dtype=dtype)
    return zlib.crc32(memoryview(data).cast("B"), previous)


def extend_sums(sums: list[int], chunk_rows: int, start: int, block: np.ndarray, dtype: Any) -> None:
    """Update ``sums`` (for ``start`` committed rows) in place after rows ``[start, start + len(block))``."""
    stop = start + len(block)
    del sums[math.ceil(start / chunk_rows):]
    for chunk in range(start // chunk_rows, math.ceil(stop / chunk_rows)):
        lo, hi = max(start, chunk * chunk_rows), min(stop, (chunk + 1) * chunk_rows)
        previous = sums[chunk] if lo > chunk * chunk_rows else 0  # extend the committed prefix of this chunk
        sums[chunk:chunk + 1] = [crc(block[lo - start: hi - start], dtype, previous)]  # replace, or append


def sums_from_disk(arr: Any, chunk_rows: int, rows: int) -> list[int]:
    """Checksums of the first ``rows`` rows of a Zarr array, read chunk by chunk (for stores without them)."""
    return [crc(arr[lo: min(lo + chunk_rows, rows)], arr.dtype) for lo in range(0, rows, chunk_rows)]


def _chunk_file(path: Path, name: str, arr: Any, chunk: int) -> Path | None:
    encode = getattr(getattr(arr, "metadata", None), "encode_chunk_key", None)
    if encode is None:  # not a Zarr v3 array: no file layout to check
        return None
    return path / name / encode((chunk, *([0] * (arr.ndim - 1))))


def check_files(path: Path, arrays: dict[str, Any], rows: int, checksums: dict | None) -> None:
    """Cheap check on open: every chunk holding committed rows is on disk with its full size.

    A chunk Zarr never wrote (all fill value) is accepted when its checksum says it is all fill; a store without
    checksums (an earlier version) only has its site chunks required, since metadata chunks may legitimately be
    all zeros.
    """
    for name, arr in arrays.items():
        chunk_rows = int(arr.chunks[0])
        sums = (checksums or {}).get("arrays", {}).get(name)
        plain = not tuple(getattr(arr, "compressors", ()) or ())
        full = int(np.prod(arr.chunks)) * arr.dtype.itemsize
        for chunk in range(math.ceil(rows / chunk_rows)):
            file = _chunk_file(path, name, arr, chunk)
            if file is None:
                return
            if not file.exists():
                if sums is None and name.startswith("meta/"):
                    continue
                n = min(chunk_rows, rows - chunk * chunk_rows)
                fill = np.full((n, *arr.shape[1:]), arr.fill_value, dtype=arr.dtype)
                if sums is None or chunk >= len(sums) or crc(fill, arr.dtype) != sums[chunk]:
                    raise DamagedStore(path, name, chunk, "is missing", chunk_rows)
            elif plain and file.stat().st_size != full:
                raise DamagedStore(path, name, chunk, f"is truncated ({file.stat().st_size} of {full} bytes)",
                                   chunk_rows)


class ChunkVerifier:
    """Checks the checksum of each chunk as sequential blocks of one array are read (each chunk read once).

    Feed it the blocks ``[lo, hi)`` in increasing, contiguous order; a chunk whose first rows came before the
    first block is skipped (its prefix was never read).
    """

    def __init__(self, path: Path, name: str, sums: list[int], chunk_rows: int, rows: int, dtype: Any):
        self.path, self.name, self.sums, self.chunk_rows = path, name, sums, chunk_rows
        self.rows, self.dtype = rows, dtype
        self.chunk, self.running = -1, None

    def feed(self, lo: int, block: np.ndarray) -> None:
        hi, size = lo + len(block), self.chunk_rows
        for chunk in range(lo // size, math.ceil(hi / size)):
            a, b = max(lo, chunk * size), min(hi, (chunk + 1) * size, self.rows)
            if a == chunk * size:
                self.chunk, self.running = chunk, 0
            if self.chunk != chunk or self.running is None:
                continue
            self.running = crc(block[a - lo: b - lo], self.dtype, self.running)
            if b == min((chunk + 1) * size, self.rows):
                if chunk >= len(self.sums) or self.sums[chunk] != self.running:
                    raise DamagedStore(self.path, self.name, chunk, "does not match its checksum", size)
                self.running = None


def first_bad_chunk(path: Path, arrays: dict[str, Any], rows: int, checksums: dict | None
                    ) -> tuple[int, str] | None:
    """(index, array) of the first chunk (over all arrays) missing, truncated, unreadable or failing its checksum."""
    worst: tuple[int, str] | None = None
    for name, arr in arrays.items():
        chunk_rows = int(arr.chunks[0])
        sums = (checksums or {}).get("arrays", {}).get(name)
        for chunk in range(math.ceil(rows / chunk_rows)):
            if worst is not None and chunk >= worst[0]:
                break
            try:
                check_files(path, {name: arr}, min(rows, (chunk + 1) * chunk_rows), checksums)
                block = arr[chunk * chunk_rows: min(rows, (chunk + 1) * chunk_rows)]
                bad = sums is not None and (chunk >= len(sums) or crc(block, arr.dtype) != sums[chunk])
            except DamagedStore as exc:
                bad, chunk = True, exc.chunk
            except Exception:  # noqa: BLE001 - zarr raises several types for a damaged chunk
                bad = True
            if bad:
                worst = min(worst, (chunk, name)) if worst is not None else (chunk, name)
                break
    return worst


def rollback_point(meta_doc: Any, first_bad_row: int, batch_size: int | None) -> tuple[int, int]:
    """(rows, docs) to resume from so that no row at or past ``first_bad_row`` is kept.

    Rows follow documents, so resumption restarts at the first row of a document; with ``batch_size`` it restarts
    at a batch boundary too, so the re-computed rows come from the same batches as an uninterrupted capture.
    """
    if first_bad_row <= 0:
        return 0, 0
    docs = np.asarray(meta_doc[:first_bad_row])
    doc = int(docs[-1])
    if batch_size:
        doc = doc // batch_size * batch_size
    return int(np.searchsorted(docs, doc, side="left")), doc
