"""The seeded MNIST trainer of seed 004 (data and architectures: ``modscope.models.mnist``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.models.mnist import DEFAULT_WIDTHS, load_mnist, make_cnn, make_mlp
from modscope.paths import cache_dir
from modscope.training.loop import accuracy, batch_schedule, make_optimizer, run_steps
from modscope.training.nulls import NullCondition, apply_null_to_data, parse_null
from modscope.training.recorder import GradientRecorder
from modscope.training.store import save_npz_atomic

DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}


def build_model(arch: str, null: NullCondition | None = None, seed: int = 0) -> torch.nn.Module:
    """The MLP or CNN, with the model nulls (``width:W``, ``init-scale:S``) applied."""
    if arch not in ("mlp", "cnn"):
        raise ModscopeError(f"unknown arch '{arch}'; use mlp or cnn")
    width = int(null.value) if null is not None and null.kind == "width" else None
    model = (make_mlp(DEFAULT_WIDTHS if width is None else (784, width, width, 10), seed=seed) if arch == "mlp"
             else make_cnn(16 if width is None else width, seed=seed))
    if null is not None and null.kind == "init-scale":
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim >= 2:
                    p.mul_(null.value)
    return model


def _make_recorder(recorder, model: torch.nn.Module, params) -> GradientRecorder | None:
    if recorder is None or recorder is False:
        return None
    if recorder is True or isinstance(recorder, (str, Path)):
        return GradientRecorder(model, out=None if recorder is True else recorder, params=params)
    if isinstance(recorder, GradientRecorder):
        raise ModscopeError("train_mnist builds the model itself: pass recorder=True, a directory, or a "
                            "factory `lambda model: GradientRecorder(model, ...)`, not a recorder instance")
    return recorder(model)


@dataclass
class TrainRun:
    """One finished training run (mutable: it holds the live model).

    Attributes:
        model: the trained network. config: everything needed to rerun it (arch, epochs, batch_size, lr,
            seed, null, n_train, max_steps, optimizer). losses: training loss per step (nats, float64).
        valid_accuracy / test_accuracy: final accuracy (fraction) on the valid / test split.
        init_state: the initial ``state_dict`` (for replay). recorder: the GradientRecorder, if any.
    """

    model: torch.nn.Module
    config: dict[str, Any]
    losses: np.ndarray
    valid_accuracy: float
    test_accuracy: float
    init_state: dict[str, torch.Tensor] = field(repr=False)
    recorder: Any = None

    @property
    def n_steps(self) -> int:
        return len(self.losses)

    @property
    def accuracy(self) -> float:
        """Final test accuracy (fraction); same as ``test_accuracy``."""
        return self.test_accuracy

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


@dataclass(frozen=True)
class MnistTask:
    """The tensors and batch order of one configured run (shared by ``train_mnist`` and the replay)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    batches: list
    probe_inputs: torch.Tensor
    valid: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def prepare_task(config: dict[str, Any]) -> MnistTask:
    """Load, subset and null-transform the data and fix the batch order for ``config``."""
    null = parse_null(config.get("null"))
    images, labels = load_mnist("train")
    n_train = config.get("n_train")
    if n_train is not None:
        images, labels = images[:n_train], labels[:n_train]
    images, labels = apply_null_to_data(images, labels, null, seed=config["seed"])
    if len(images) < config["batch_size"]:
        raise ModscopeError(f"only {len(images)} training examples for batch size {config['batch_size']}; "
                            "use a larger --n-train or a smaller --batch-size")
    batches = batch_schedule(len(images), config["batch_size"], config["epochs"], seed=config["seed"],
                             max_steps=config.get("max_steps"))
    held = []
    for split in ("valid", "test"):
        x, y = load_mnist(split)
        if null is not None and null.kind in ("classes", "downscale", "noise"):
            x, y = apply_null_to_data(x, y, null, seed=config["seed"] + 1)
        held.append((torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))))
    probe = torch.from_numpy(np.ascontiguousarray(load_mnist("valid")[0][: config.get("probe_size", 256)]))
    return MnistTask(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.copy()),
                     batches, probe, held[0], held[1])


def train_mnist(
    arch: str = "mlp",
    epochs: int = 2,
    batch_size: int = 64,
    lr: float | None = None,
    seed: int = 0,
    null: str | NullCondition | None = None,
    recorder=None,
    *,
    optimizer: str = "sgd",
    n_train: int | None = None,
    max_steps: int | None = None,
    checkpoint_every: int = 0,
    probe_size: int = 256,
    record_params: str | list[str] = "all",
) -> TrainRun:
    """Train the MNIST MLP (784-256-128-10, 235k parameters) or CNN with cross-entropy, deterministically.

    Args:
        arch: ``mlp`` or ``cnn``. epochs, batch_size: as usual (2 epochs x 50k / 64 = 1562 steps).
        lr: learning rate (default 0.1 for sgd, 1e-3 for adam). seed: seeds init, batch order and nulls.
        null: a null condition (``noise:0.5``, ``pixel-shuffle``, ``width:32``, ... see ``NULL_KINDS``).
        recorder: None, True (record in RAM), a directory (Zarr store, resumable), or a factory
            ``callable(model) -> GradientRecorder``. record_params: ``all``/``matrices``/names.
        optimizer: ``sgd`` (update = -lr * gradient) or ``adam``.
        n_train: use only the first n training images. max_steps: stop early.
        checkpoint_every: record probe-batch logits every this many steps (0: never).
    Returns:
        TrainRun.
    """
    null_c = parse_null(null)
    if epochs < 1 or batch_size < 1:
        raise ModscopeError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    lr = DEFAULT_LR.get(optimizer, 0.1) if lr is None else lr
    config = {"arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "null": null_c.label if null_c else None, "n_train": n_train, "max_steps": max_steps,
              "optimizer": optimizer, "probe_size": probe_size}
    task = prepare_task(config)
    model = build_model(arch, null_c, seed=seed)
    init_state = copy.deepcopy(model.state_dict())
    rec = _make_recorder(recorder, model, record_params)
    opt = make_optimizer(model.parameters(), optimizer, lr)
    start = 0
    if rec is not None:
        rec.set_meta(config)
        start = rec.resume_training(model, opt)
    losses = run_steps(model, opt, task.inputs, task.targets, task.batches, recorder=rec,
                       probe_inputs=task.probe_inputs if checkpoint_every else None,
                       checkpoint_every=checkpoint_every, start_step=start)
    if rec is not None:
        rec.close()
        losses = np.asarray(rec.store.losses, dtype=np.float64) if start else losses
    return TrainRun(model, config, losses, accuracy(model, *task.valid), accuracy(model, *task.test),
                    init_state, rec)


@dataclass(frozen=True)
class MnistWeights:
    """The MNIST MLP's weight matrices (``[n_in, n_out]``, float32) after training and at initialisation.

    Attributes:
        trained: weights after ``epochs`` of SGD. init: the same network's initial weights (its random twin).
        test_accuracy: accuracy of the trained network on the 10k test images (fraction).
        epochs, seed: the training run that produced them.
    """

    trained: list[np.ndarray]
    init: list[np.ndarray]
    test_accuracy: float
    epochs: int
    seed: int


def mnist_mlp_weights(*, epochs: int = 1, seed: int = 0, refresh: bool = False) -> MnistWeights:
    """Train the MNIST MLP once per (seed, epochs) and cache its weights (clusterability's ``mnist-mlp``).

    The cache file is ``cache_dir("mnist-mlp")/seed{seed}-epochs{epochs}.npz``; later calls read it (~ms).

    Args:
        epochs: training epochs (1 epoch of SGD reaches ~95% test accuracy). seed: init and batch-order seed.
        refresh: retrain even if cached.

    Returns:
        :class:`MnistWeights`.
    """
    if epochs < 1:
        raise ModscopeError(f"epochs must be >= 1, got {epochs}")
    path = cache_dir("mnist-mlp") / f"seed{seed}-epochs{epochs}.npz"
    if path.exists() and not refresh:
        with np.load(path) as data:
            n = int(data["n_layers"])
            return MnistWeights([data[f"trained_{i}"] for i in range(n)], [data[f"init_{i}"] for i in range(n)],
                                float(data["test_accuracy"]), epochs, seed)
    run = train_mnist(arch="mlp", epochs=epochs, seed=seed)
    # A state dict lists the Linear weights in module order; each is stored [n_in, n_out] as clusterability reads it.
    trained, init = ([t.detach().float().numpy().T.copy() for key, t in state.items()
                      if key.endswith("weight") and t.ndim == 2] for state in (run.model.state_dict(), run.init_state))
    arrays = {f"trained_{i}": w for i, w in enumerate(trained)} | {f"init_{i}": w for i, w in enumerate(init)}
    save_npz_atomic(path, n_layers=len(trained), test_accuracy=run.test_accuracy, **arrays)
    return MnistWeights(trained, init, float(run.test_accuracy), epochs, seed)
