"""Modular addition (a + b mod p), the grokking task of the seed's comments, with a one-hidden-layer MLP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.training.recorder import GradientRecorder
from modscope.training.store import save_npz_atomic


def make_modadd_mlp(p: int, width: int = 256, seed: int = 0) -> torch.nn.Sequential:
    """``onehot(a) ++ onehot(b)`` [2p] -> Linear(width) -> ReLU -> Linear(p) (Gromov 2023's grokking MLP)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2 * p, width), torch.nn.ReLU(), torch.nn.Linear(width, p))


def modadd_data(p: int, train_frac: float, seed: int = 0):
    """All p^2 pairs as one-hot inputs [p^2, 2p], labels (a + b) mod p, and a seeded train/test split."""
    a, b = np.divmod(np.arange(p * p), p)
    inputs = np.concatenate([np.eye(p, dtype=np.float32)[a], np.eye(p, dtype=np.float32)[b]], axis=1)
    labels = (a + b) % p
    order = np.random.default_rng(seed + 1).permutation(p * p)
    n_train = int(round(train_frac * p * p))
    return torch.from_numpy(inputs), torch.from_numpy(labels.astype(np.int64)), order[:n_train], order[n_train:]


@dataclass
class ModaddRun:
    """One modular-addition run (mutable: holds the live model).

    Attributes:
        model, config. train_losses / test_losses: float64 [steps] (nats). train_accuracy / test_accuracy:
            float64 [steps] (fraction correct). grok_step: first step with test accuracy >= 0.95 (None if
            never). recorder: the GradientRecorder, if any.
    """

    model: torch.nn.Module
    config: dict[str, Any]
    train_losses: np.ndarray
    test_losses: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    grok_step: int | None
    recorder: Any = field(default=None, repr=False)
    checkpoint_steps: np.ndarray | None = None
    probe_index: np.ndarray | None = None
    probe_logits: np.ndarray | None = field(default=None, repr=False)
    embedding_snapshots: np.ndarray | None = field(default=None, repr=False)


CHECKPOINTS_FILE = "modadd_checkpoints.npz"


def probe_pairs(p: int, train_idx: np.ndarray, test_idx: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A fixed seeded probe of at most ``size`` pairs, half from the train split and half from the test split."""
    rng = np.random.default_rng(seed + 2)
    half = size // 2
    return np.concatenate([rng.choice(train_idx, min(half, len(train_idx)), replace=False),
                           rng.choice(test_idx, min(size - half, len(test_idx)), replace=False)])


def train_modadd(p: int = 113, steps: int = 5000, *, train_frac: float = 0.5, width: int = 256,
                 lr: float = 1e-3, weight_decay: float = 1.0, seed: int = 0,
                 recorder: bool | str | Path | None = None, every: int = 1,
                 params: str = "all", checkpoints: int = 100, probe_size: int = 512) -> ModaddRun:
    """Full-batch AdamW on a fraction of all (a, b) pairs; test accuracy jumps long after train accuracy.

    Args:
        p: modulus. steps: optimizer steps. train_frac: share of the p^2 pairs trained on.
        width: hidden units. lr, weight_decay: AdamW (weight decay drives grokking; Power et al. 2022).
        recorder: None, True (RAM) or a directory (Zarr). every: record one step in ``every``.
        checkpoints: evenly spaced checkpoints (0: none) at which the logits of a fixed probe of ``probe_size``
            pairs (half train, half test) and the first-layer weight are kept (``run.probe_logits``,
            ``run.embedding_snapshots``; in ``DIR/modadd_checkpoints.npz`` with a directory recorder).
    Returns:
        ModaddRun.
    """
    if p < 3 or not 0 < train_frac < 1 or steps < 1:
        raise ModscopeError(f"need p >= 3, 0 < train_frac < 1, steps >= 1; got {p}, {train_frac}, {steps}")
    inputs, labels, train_idx, test_idx = modadd_data(p, train_frac, seed)
    model = make_modadd_mlp(p, width, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    config = {"task": "modadd", "p": p, "steps": steps, "train_frac": train_frac, "width": width, "lr": lr,
              "weight_decay": weight_decay, "seed": seed}
    rec = None
    if recorder is not None and recorder is not False:
        out = None if recorder is True else recorder
        rec = GradientRecorder(model, out=out, params=params, every=every, optimizer=opt)
        if rec.store.n_steps:
            raise ModscopeError(f"{out} already holds a recording; modadd runs do not resume, use a new --out")
        rec.set_meta(config)
    x_tr, y_tr = inputs[train_idx], labels[train_idx]
    x_te, y_te = inputs[test_idx], labels[test_idx]
    loss_fn = torch.nn.CrossEntropyLoss()
    hist = np.zeros((4, steps))
    probe = probe_pairs(p, train_idx, test_idx, probe_size, seed) if checkpoints > 0 else None
    due = set(np.unique(np.linspace(0, steps, min(checkpoints, steps + 1)).round().astype(int)).tolist()) \
        if checkpoints > 0 else set()
    ckpt_steps, ckpt_logits, snapshots = [], [], []

    def checkpoint(step: int) -> None:
        with torch.no_grad():
            logits = model(inputs[probe]).numpy().astype(np.float32)
        ckpt_steps.append(step)
        ckpt_logits.append(logits)
        snapshots.append(model[0].weight.detach().numpy().astype(np.float32).copy())
        if rec is not None:
            rec.checkpoint(step=step, logits=logits)

    for t in range(steps):
        if t in due:
            checkpoint(t)
        opt.zero_grad()
        logits = model(x_tr)
        loss = loss_fn(logits, y_tr)
        loss.backward()
        if rec is not None:
            rec.step(loss=loss)
        opt.step()
        with torch.no_grad():
            test_logits = model(x_te)
            hist[:, t] = (loss.item(), loss_fn(test_logits, y_te).item(),
                          (logits.argmax(-1) == y_tr).float().mean().item(),
                          (test_logits.argmax(-1) == y_te).float().mean().item())
    if steps in due:
        checkpoint(steps)
    if rec is not None:
        rec.close()
    grokked = np.flatnonzero(hist[3] >= 0.95)
    run = ModaddRun(model, config, hist[0], hist[1], hist[2], hist[3], int(grokked[0]) if grokked.size else None,
                    rec)
    if ckpt_steps:
        run.checkpoint_steps, run.probe_index = np.asarray(ckpt_steps), probe
        run.probe_logits, run.embedding_snapshots = np.stack(ckpt_logits), np.stack(snapshots)
        if recorder is not None and recorder is not True and recorder is not False:  # next to the gradients
            save_npz_atomic(Path(recorder) / CHECKPOINTS_FILE, **{key: getattr(run, key) for key in (
                "checkpoint_steps", "probe_index", "probe_logits", "embedding_snapshots", "train_losses",
                "test_losses", "train_accuracy", "test_accuracy")})
    return run
