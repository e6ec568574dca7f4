"""The one deterministic mini-batch training loop shared by the trainers and the projected-gradient replay."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch


def batch_schedule(n_examples: int, batch_size: int, epochs: int, *, seed: int = 0,
                   max_steps: int | None = None) -> list[np.ndarray]:
    """The example indices of every step: one fresh permutation per epoch, last partial batch dropped.

    Args:
        n_examples: training set size. batch_size: examples per step. epochs: passes over the data.
        seed: seeds the permutations (same seed -> same order). max_steps: stop after this many steps.
    Returns:
        list of int64 index arrays, one per step, each of length ``batch_size``.
    """
    rng = np.random.default_rng(seed + 1)
    orders = (rng.permutation(n_examples) for _ in range(epochs))  # drawn lazily: max_steps may end it early
    steps = (order[b * batch_size:(b + 1) * batch_size] for order in orders for b in range(n_examples // batch_size))
    return list(itertools.islice(steps, None if max_steps is None else max(0, max_steps)))


def make_optimizer(params, name: str, lr: float) -> torch.optim.Optimizer:
    """``sgd`` (plain, so each update is -lr times the gradient) or ``adam``."""
    optimizers = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
    if name not in optimizers:
        from modscope.errors import ModscopeError

        raise ModscopeError(f"unknown optimizer '{name}'; use sgd or adam")
    return optimizers[name](params, lr=lr)


def run_steps(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batches: list[np.ndarray],
    *,
    grad_transform: Callable[[int], None] | None = None,
    recorder=None,
    probe_inputs: torch.Tensor | None = None,
    checkpoint_every: int = 0,
    start_step: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Cross-entropy training over ``batches[start_step:]``; returns the per-step losses (float64 [steps]).

    Args:
        grad_transform: called with the step index after ``backward()`` and before the optimizer step;
            edits ``p.grad`` in place (the replay's projection).
        recorder: a GradientRecorder; its ``step(loss=, lr=)`` runs after the transform.
        probe_inputs: fixed batch whose logits the recorder checkpoints every ``checkpoint_every`` steps.
        start_step: first step to run (resuming). on_step: called after each step (progress, saving).
    """
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    model.train()
    for t in range(start_step, len(batches)):
        due = checkpoint_every and t % checkpoint_every == 0
        if recorder is not None and probe_inputs is not None and due:
            _checkpoint(model, recorder, probe_inputs, t)
        idx = torch.from_numpy(batches[t])
        optimizer.zero_grad(set_to_none=False)
        loss = loss_fn(model(inputs[idx]), targets[idx])
        loss.backward()
        if grad_transform is not None:
            grad_transform(t)
        if recorder is not None:
            recorder.step(loss=loss.item(), lr=float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(t)
    if recorder is not None and probe_inputs is not None and checkpoint_every:
        _checkpoint(model, recorder, probe_inputs, len(batches))
    return np.asarray(losses, dtype=np.float64)


def _checkpoint(model: torch.nn.Module, recorder, probe_inputs: torch.Tensor, step: int) -> None:
    with torch.no_grad():
        was_training = model.training
        model.eval()
        logits = model(probe_inputs).numpy()
        model.train(was_training)
    recorder.checkpoint(step=step, logits=logits)


@torch.no_grad()
def accuracy(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch: int = 4096) -> float:
    """Fraction of ``inputs`` whose arg-max logit equals the target."""
    model.eval()
    correct = 0
    for i in range(0, len(inputs), batch):
        correct += int((model(inputs[i:i + batch]).argmax(-1) == targets[i:i + batch]).sum())
    model.train()
    return correct / max(len(inputs), 1)
