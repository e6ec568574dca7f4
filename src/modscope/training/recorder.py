"""GradientRecorder: store every step's gradient per parameter tensor from any PyTorch training loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.locking import directory_lock, remove_orphans
from modscope.training.store import MANIFEST, GradientStore

LEGACY_TRAIN_STATE = "train_state.pt"  # one state file saved before the rows (before issue 21); read only


def select_params(model: torch.nn.Module, params: str | list[str] | Callable = "matrices") -> list[str]:
    """Names of the recorded parameters: ``"all"``, ``"matrices"`` (ndim >= 2), a list, or ``f(name, p)``."""
    named = dict(model.named_parameters())
    if params == "all":
        names = list(named)
    elif params == "matrices":
        names = [n for n, p in named.items() if p.ndim >= 2]
    elif callable(params):
        names = [n for n, p in named.items() if params(n, p)]
    else:
        names = list(params)
        missing = [n for n in names if n not in named]
        if missing:
            raise ModscopeError(f"unknown parameters {missing}; the model has: {', '.join(named)}")
    if not names:
        raise ModscopeError(f"params={params!r} selects nothing; use 'all', 'matrices' or names")
    return names


class GradientRecorder:
    """Record ``p.grad`` of the selected parameters at every ``every``-th optimizer step.

    Use it either by calling ``rec.step(loss=...)`` after ``loss.backward()``, or as a context manager
    that hooks ``optimizer.step`` (``with GradientRecorder(model, optimizer=opt) as rec: ...``; call
    ``rec.note_loss(loss)`` to log the loss). Rows are buffered in RAM and flushed ``chunk_steps`` at a time;
    with ``out=DIR`` each flush commits a Zarr chunk, the matching training state and the manifest (in the order
    described in ``modscope.training.store``), so a run killed at any moment keeps every flushed step and
    ``resume_training`` continues exactly after the last one. A NaN or inf gradient stops the run with a
    ModscopeError naming the step; it is never recorded.

    Args:
        model: the network. out: None (RAM) or a directory for the Zarr store.
        params: ``"matrices"`` (default: weight matrices / conv kernels), ``"all"``, names, or a predicate.
        every: keep one step in ``every``. chunk_steps: rows per flush / Zarr chunk.
        optimizer: hooked when used as a context manager; its state is saved at each flush for resuming.
    """

    def __init__(self, model: torch.nn.Module, out: str | Path | None = None,
                 params: str | list[str] | Callable = "matrices", every: int = 1, *, chunk_steps: int = 64,
                 optimizer: torch.optim.Optimizer | None = None):
        if every < 1:
            raise ModscopeError(f"every must be >= 1, got {every}")
        self.model = model
        self.names = select_params(model, params)
        self._params = dict(model.named_parameters())
        self.every = int(every)
        self.optimizer = optimizer
        shapes = [tuple(self._params[n].shape) for n in self.names]
        self._lock = None
        if out is not None:  # one writer per store, held until close(); a second recorder gets one clear line
            self._lock = directory_lock(out)
            self._lock.__enter__()
        try:
            self._open_store(out, shapes, chunk_steps)
        except BaseException:
            self._release()
            raise
        self.calls = self.store.steps[-1] + 1 if self.store.steps else 0
        self._buffer: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self._rows: list[tuple[int, float, float]] = []
        self._pending_loss = float("nan")
        self._hook = None

    def _open_store(self, out, shapes, chunk_steps: int) -> None:
        if out is not None and (Path(out) / MANIFEST).is_file():
            self.store = GradientStore.open(out)
            remove_orphans(out)  # this recorder is the store's writer: leftovers of a killed flush go
            self.store.remove_stale_states()
            if self.store.names != self.names or [self.store.shapes[n] for n in self.names] != shapes:
                raise ModscopeError(f"{out} holds gradients of other parameters ({self.store.names}); "
                                    "use a new --out directory or the same model and params")
        else:
            self.store = GradientStore(self.names, shapes, path=out, chunk_steps=chunk_steps)
            self.store.write_manifest()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    # ---- recording ----
    def step(self, loss: float | torch.Tensor | None = None, lr: float | None = None) -> None:
        """Record the current gradients (call after ``backward()``, before ``optimizer.step()``)."""
        if len(self._rows) >= self.store.chunk_steps:
            self.flush()  # here, not after appending: the weights now include the last buffered update
        t = self.calls
        self.calls += 1
        if t % self.every:
            return
        row = []
        for n in self.names:
            grad = self._params[n].grad
            if grad is None:
                raise ModscopeError(f"parameter '{n}' has no gradient at step {t}; call rec.step() after "
                                    "loss.backward(), or record only parameters that get gradients")
            values = grad.detach().to(torch.float32).reshape(-1).cpu().numpy().copy()
            if not np.isfinite(values).all():
                raise ModscopeError(f"the gradient of '{n}' at step {t} holds NaN or inf values (the first bad step; "
                                    "steps from it on were not recorded): lower the learning rate, or check the "
                                    "data and the loss")
            row.append(values)
        for n, values in zip(self.names, row, strict=True):
            self._buffer[n].append(values)
        if lr is None and self.optimizer is not None:
            lr = self.optimizer.param_groups[0]["lr"]
        loss = self._pending_loss if loss is None else float(torch.as_tensor(loss).detach())
        self._rows.append((t, loss, float("nan") if lr is None else float(lr)))
        self._pending_loss = float("nan")

    def note_loss(self, loss: float | torch.Tensor) -> None:
        """Remember the loss of the current step (context-manager use, where the hook cannot see it)."""
        self._pending_loss = float(torch.as_tensor(loss).detach())

    def checkpoint(self, step: int, logits: np.ndarray) -> None:
        """Store probe-batch logits (float32 ``[probe, classes]``) taken before the update of ``step``."""
        self.store.add_checkpoint(step, logits)

    def flush(self) -> None:
        """Commit buffered rows to the store (and the training state, when an optimizer is known)."""
        if not self._rows:
            return
        blocks = {n: np.stack(self._buffer[n]) for n in self.names}
        steps, losses, lrs = (list(c) for c in zip(*self._rows, strict=False))
        self._buffer = {n: [] for n in self.names}
        self._rows = []
        state = None
        if self.store.path is not None and self.optimizer is not None:
            # the weights now include the update of every buffered step: training resumes at step self.calls
            state = {"step": self.calls, "n_rows": self.store.n_steps + len(steps),
                     "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        self.store.append(blocks, steps, losses, lrs, state=state)

    def close(self) -> None:
        """Commit the buffered steps, remove the optimizer hook and release the store's lock."""
        try:
            self.flush()
        finally:
            self.detach()
            self._release()

    # ---- resuming and metadata ----
    def set_meta(self, meta: dict[str, Any]) -> None:
        """Attach the run's configuration; a resumed store must have been recorded with the same one."""
        if self.store.n_steps and self.store.meta and self.store.meta != meta:
            raise ModscopeError(f"{self.store.path} was recorded with {self.store.meta}, not {meta}; "
                                "use a new --out directory")
        self.store.meta = dict(meta)
        self.store.write_manifest()

    def resume_training(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
        """Load the saved model/optimizer state of a partly recorded run; returns the step to start from."""
        self.optimizer = optimizer
        if not self.store.n_steps or self.store.path is None:
            self.calls = 0
            self.store.checkpoint_steps = []
            return 0
        state = self._committed_state()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        self.calls = int(state["step"])
        # checkpoints taken after the committed rows are taken again by the resumed run
        self.store.checkpoint_steps = [s for s in self.store.checkpoint_steps if s < self.calls]
        return self.calls

    def _committed_state(self) -> dict:
        """The training state the manifest commits: its step is the one after the last committed row."""
        path, last = self.store.path, self.store.steps[-1]
        if self.store.state_file is not None:
            state = torch.load(path / self.store.state_file, weights_only=False)
            if state.get("n_rows") == self.store.n_steps:
                return state
        elif (path / LEGACY_TRAIN_STATE).is_file():
            state = torch.load(path / LEGACY_TRAIN_STATE, weights_only=False)
            if last < int(state["step"]) <= last + self.every:
                return state
        raise ModscopeError(f"{path} holds {self.store.n_steps} recorded steps but no training state matching them "
                            "(written by an older modscope, or damaged); record again into a new --out")

    # ---- context manager: hook optimizer.step ----
    def __enter__(self) -> GradientRecorder:
        if self.optimizer is None:
            raise ModscopeError("pass optimizer= to use GradientRecorder as a context manager, "
                                "or call rec.step() after backward() yourself")
        self._hook = self.optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.step())
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
