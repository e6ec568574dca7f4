"""Where recorded gradients live: in RAM or in a Zarr store chunked by steps, with an atomic manifest.

On disk, one flush is committed in this order (every prefix a SIGKILL can leave is consistent):

1. the rows go into the Zarr arrays, past the committed row count (invisible until step 3);
2. the training state after those rows is saved to a new file ``train_state-<rows>.pt`` (invisible too);
3. ``manifest.json`` is replaced atomically: the new row count *and* the name of the matching state file;
4. the previous state file is deleted.

The manifest is the single commit record: a resumed run loads the state it names, whose step is exactly the one
after its last committed row, so no step is lost or recorded twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from modscope.errors import ModscopeError
from modscope.killpoints import kill_point
from modscope.paths import write_json_atomic

MANIFEST = "manifest.json"
FORMAT = "modscope.gradients/1"
STATE_PREFIX = "train_state-"


def save_npz_atomic(path: Path, **arrays: Any) -> None:
    """``np.savez`` through a temporary file and ``os.replace``: a reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)


class GradientStore:
    """Per-parameter gradient blocks ``[steps, size]`` (float32) with per-step loss, lr, step index.

    The gradient matrix of the whole model is the column-concatenation of the blocks (steps x parameters);
    analyses stream over blocks so the matrix never has to exist at once. ``path=None`` keeps everything
    in RAM; otherwise a Zarr group at ``path`` holds ``grads/p<i>`` arrays chunked ``(chunk_steps, size)``
    and ``manifest.json`` (rewritten atomically after every flushed chunk) says how many rows are valid.
    """

    def __init__(self, names: list[str], shapes: list[tuple[int, ...]], *, path: str | Path | None = None,
                 chunk_steps: int = 64, meta: dict[str, Any] | None = None):
        self.names = list(names)
        self.shapes = {n: tuple(int(d) for d in s) for n, s in zip(names, shapes, strict=False)}
        self.path = None if path is None else Path(path)
        self.chunk_steps = int(chunk_steps)
        self.meta: dict[str, Any] = dict(meta or {})
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.checkpoint_steps: list[int] = []
        self.state_file: str | None = None  # the training state matching the committed rows (resumable runs)
        self._ram: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self._ram_logits: list[np.ndarray] = []
        self._group = None
        if self.path is not None:
            import zarr

            self._group = zarr.open_group(str(self.path), mode="a")
            for i, n in enumerate(self.names):
                key = f"grads/p{i}"
                if key not in self._group:
                    self._group.create_array(key, shape=(0, self.size(n)), dtype="float32",
                                             chunks=(self.chunk_steps, self.size(n)))

    # ---- shape ----
    def size(self, name: str) -> int:
        return int(np.prod(self.shapes[name], dtype=np.int64))

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_params(self) -> int:
        return sum(self.size(n) for n in self.names)

    def block(self, name: str, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """Gradients of one parameter tensor, float32 ``[steps, size]`` (``rows`` selects steps)."""
        if name not in self.shapes:
            raise ModscopeError(f"no recorded parameter '{name}'; recorded: {', '.join(self.names)}")
        rows = slice(None) if rows is None else rows
        if self._group is None:
            parts = self._ram[name]
            if len(parts) > 1:  # consolidate once so repeated reads are cheap
                self._ram[name] = parts = [np.concatenate(parts, axis=0)]
            full = parts[0] if parts else np.zeros((0, self.size(name)), np.float32)
            return full[rows]
        arr = self._group[f"grads/p{self.names.index(name)}"]
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.n_steps)
            return np.asarray(arr[start:stop:step] if step == 1 else arr[start:stop][::step])
        rows = np.asarray(rows)
        return np.asarray(arr.get_orthogonal_selection((rows, slice(None))))

    def zarr_array(self, name: str):
        """The Zarr array of one parameter (rows beyond ``n_steps`` are not valid)."""
        if self._group is None:
            raise ModscopeError("this gradient store lives in RAM; record with out=DIR to get Zarr arrays")
        return self._group[f"grads/p{self.names.index(name)}"]

    def matrix(self, params: list[str] | None = None, rows=None) -> np.ndarray:
        """The dense float32 gradient matrix ``[steps, sum of sizes]`` (small runs and tests only)."""
        names = self.names if params is None else params
        return np.concatenate([self.block(n, rows) for n in names], axis=1)

    @property
    def checkpoint_logits(self) -> np.ndarray:
        """Probe-batch logits at each checkpoint, float32 ``[checkpoints, probe, classes]``."""
        n = len(self.checkpoint_steps)
        if self._group is None:
            return np.stack(self._ram_logits) if self._ram_logits else np.zeros((0, 0, 0), np.float32)
        if n == 0 or "checkpoints/logits" not in self._group:
            return np.zeros((0, 0, 0), np.float32)
        return np.asarray(self._group["checkpoints/logits"][:n])

    # ---- writing ----
    def append(self, blocks: dict[str, np.ndarray], steps: list[int], losses: list[float],
               lrs: list[float], state: dict[str, Any] | None = None) -> None:
        """Append a chunk of rows (``blocks[name]`` is ``[k, size]``) and commit it with the manifest.

        ``state`` (a ``torch.save``-able training state after these rows) is committed in the same manifest;
        see the module docstring for the order of the writes.
        """
        k = len(steps)
        if k == 0:
            return
        n = self.n_steps
        for name in self.names:
            block = np.ascontiguousarray(blocks[name], dtype=np.float32).reshape(k, self.size(name))
            if self._group is None:
                self._ram[name].append(block)
            else:
                arr = self.zarr_array(name)
                if arr.shape[0] < n + k:
                    arr.resize((n + k, arr.shape[1]))
                arr[n:n + k] = block
        if self._group is not None:
            kill_point("grads-after-rows")
        previous = self.state_file
        if state is not None and self.path is not None:
            import torch

            name = f"{STATE_PREFIX}{n + k:08d}.pt"
            tmp = self.path / f".{name}.tmp"
            torch.save(state, tmp)
            os.replace(tmp, self.path / name)
            kill_point("grads-after-state")
            self.state_file = name
        self.steps += [int(s) for s in steps]
        self.losses += [float(v) for v in losses]
        self.lrs += [float(v) for v in lrs]
        self.write_manifest()
        if self.path is not None and self.state_file != previous:
            kill_point("grads-after-manifest")
            self.remove_stale_states()

    def remove_stale_states(self) -> None:
        """Delete state files the manifest does not name (superseded, or saved by a flush killed before commit)."""
        if self.path is None:
            return
        for file in self.path.glob(f"{STATE_PREFIX}*.pt"):
            if file.name != self.state_file:
                file.unlink(missing_ok=True)

    def first_nonfinite_step(self, rows_per_read: int = 256) -> int | None:
        """The training step of the first row holding a NaN or inf gradient (None when every value is finite)."""
        first = None
        for name in self.names:
            for lo in range(0, self.n_steps if first is None else first, rows_per_read):
                block = self.block(name, slice(lo, min(lo + rows_per_read, self.n_steps)))
                bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
                if bad.size:
                    first = lo + int(bad[0])
                    break
        return None if first is None else int(self.steps[first])

    def add_checkpoint(self, step: int, logits: np.ndarray) -> None:
        logits = np.asarray(logits, dtype=np.float32)
        if self._group is None:
            self._ram_logits.append(logits)
        else:
            n = len(self.checkpoint_steps)
            if "checkpoints/logits" not in self._group:
                self._group.create_array("checkpoints/logits", shape=(0, *logits.shape), dtype="float32",
                                         chunks=(16, *logits.shape))
            arr = self._group["checkpoints/logits"]
            if arr.shape[0] < n + 1:
                arr.resize((n + 1, *arr.shape[1:]))
            arr[n] = logits
        self.checkpoint_steps.append(int(step))
        self.write_manifest()

    def write_manifest(self) -> None:
        if self.path is None:
            return
        write_json_atomic(self.path / MANIFEST, {
            "format": FORMAT, "names": self.names,
            "shapes": [list(self.shapes[n]) for n in self.names], "chunk_steps": self.chunk_steps,
            "n_steps": self.n_steps, "steps": self.steps, "losses": self.losses, "lrs": self.lrs,
            "checkpoint_steps": self.checkpoint_steps, "meta": self.meta, "train_state": self.state_file})

    @classmethod
    def open(cls, path: str | Path) -> GradientStore:
        """Open a recorded store; only rows committed in the manifest are visible."""
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise ModscopeError(f"{path} holds no recorded gradients (no {MANIFEST}); "
                                "record with `modscope train mnist --record grads --out DIR` first")
        try:
            info = json.loads((path / MANIFEST).read_text())
        except ValueError:
            raise ModscopeError(f"{path}/{MANIFEST} is unreadable (damaged); record again into a new --out") from None
        if info.get("format") != FORMAT or "names" not in info:
            what = ("an activation capture store (from `modscope capture`)" if info.get("format") == "modscope-capture"
                    else "not a gradient store")
            raise ModscopeError(f"{path} is {what}, not recorded gradients; pass the --out directory of "
                                "`modscope train mnist` (or its grads/ subdirectory)")
        store = cls(info["names"], [tuple(s) for s in info["shapes"]], path=path,
                    chunk_steps=info["chunk_steps"], meta=info.get("meta"))
        store.steps, store.losses, store.lrs = info["steps"], info["losses"], info["lrs"]
        store.checkpoint_steps = info.get("checkpoint_steps", [])
        store.state_file = info.get("train_state")
        return store


def as_store(source) -> GradientStore:
    """Accept a GradientStore, a GradientRecorder, a TrainRun with a recorder, a path, or a 2-D array."""
    if isinstance(source, GradientStore):
        return source
    if hasattr(source, "store") and isinstance(source.store, GradientStore):
        return source.store
    if hasattr(source, "recorder") and source.recorder is not None:
        return as_store(source.recorder)
    if isinstance(source, (str, Path)):
        return GradientStore.open(source)
    matrix = np.asarray(source)
    if matrix.ndim != 2:
        raise ModscopeError(f"expected a [steps, parameters] matrix, got shape {matrix.shape}")
    store = GradientStore(["matrix"], [(matrix.shape[1],)])
    store._ram["matrix"] = [matrix]
    store.steps = list(range(matrix.shape[0]))
    store.losses = [float("nan")] * matrix.shape[0]
    store.lrs = [float("nan")] * matrix.shape[0]
    return store
