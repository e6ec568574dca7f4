"""Null conditions for MNIST training: data or model changes that should remove "interesting" structure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError

NULL_KINDS = {
    "noise": "noise:A mixes uniform noise into each image, x <- (1-A) x + A u, u ~ U(0,1); A in [0,1]",
    "pixel-shuffle": "pixel-shuffle permutes the 784 pixels of each image independently",
    "row-shuffle": "row-shuffle permutes the 28 rows of each image independently",
    "label-shuffle": "label-shuffle replaces the labels by a random permutation of them",
    "classes": "classes:K keeps only digits 0..K-1 (K in 2..10)",
    "downscale": "downscale:S average-pools each image to SxS and upsamples it back to 28x28",
    "init-scale": "init-scale:S multiplies the initial weights by S",
    "width": "width:W sets every hidden layer of the MLP to W units (or CNN channels)",
}


@dataclass(frozen=True)
class NullCondition:
    """One null condition parsed from text such as ``noise:0.5`` or ``pixel-shuffle``.

    Attributes:
        kind: one of ``NULL_KINDS``.
        value: the condition's parameter (noise amount, class count, image side, init scale, width),
            or None for the parameter-free shuffles.
    """

    kind: str
    value: float | None = None

    @property
    def label(self) -> str:
        if self.value is None:
            return self.kind
        value = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.kind}:{value}"

    @property
    def changes_data(self) -> bool:
        return self.kind in ("noise", "pixel-shuffle", "row-shuffle", "label-shuffle", "classes", "downscale")


def parse_null(text: str | NullCondition | None) -> NullCondition | None:
    """Parse ``kind[:value]``; None or ``none`` means the unchanged run."""
    if text is None or isinstance(text, NullCondition):
        return text
    text = text.strip()
    if text in ("", "none"):
        return None
    kind, _, raw = text.partition(":")
    if kind not in NULL_KINDS:
        known = "; ".join(NULL_KINDS.values())
        raise ModscopeError(f"unknown null condition '{text}'; use one of: {known}")
    needs_value = kind not in ("pixel-shuffle", "row-shuffle", "label-shuffle")
    if needs_value and not raw:
        raise ModscopeError(f"null condition '{kind}' needs a value: {NULL_KINDS[kind]}")
    if not needs_value:
        if raw:
            raise ModscopeError(f"null condition '{kind}' takes no value, got '{text}'")
        return NullCondition(kind)
    try:
        value = float(raw)
    except ValueError:
        raise ModscopeError(f"null condition '{text}': value must be a number; {NULL_KINDS[kind]}") from None
    _check_value(kind, value, text)
    return NullCondition(kind, value)


def _check_value(kind: str, value: float, text: str) -> None:
    ok = {
        "noise": 0.0 <= value <= 1.0,
        "classes": value.is_integer() and 2 <= value <= 10,
        "downscale": value.is_integer() and 1 <= value <= 28,
        "init-scale": value > 0,
        "width": value.is_integer() and value >= 1,
    }[kind]
    if not ok:
        raise ModscopeError(f"null condition '{text}' out of range: {NULL_KINDS[kind]}")


def apply_null_to_data(
    images: np.ndarray, labels: np.ndarray, null: NullCondition | None, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images, labels) changed by a data null; model nulls and None return the inputs unchanged.

    Args:
        images: float32 [N, 784] in [0, 1]. labels: int64 [N].
        null: the condition. seed: seeds the noise / permutations (same seed -> same data).
    Returns:
        (images, labels), possibly fewer rows for ``classes``.
    """
    if null is None or not null.changes_data:
        return images, labels
    rng = np.random.default_rng(seed + 7919)
    kind, value = null.kind, null.value
    if kind == "noise":
        noise = rng.random(images.shape, dtype=np.float32)
        return ((1.0 - value) * images + value * noise).astype(np.float32), labels
    if kind == "pixel-shuffle":
        order = np.argsort(rng.random(images.shape), axis=1)
        return np.take_along_axis(images, order, axis=1), labels
    if kind == "row-shuffle":
        rows = images.reshape(-1, 28, 28)
        order = np.argsort(rng.random(rows.shape[:2]), axis=1)
        return np.take_along_axis(rows, order[:, :, None], axis=1).reshape(len(images), 784), labels
    if kind == "label-shuffle":
        return images, rng.permutation(labels)
    if kind == "classes":
        keep = labels < int(value)
        return images[keep], labels[keep]
    side = int(value)  # downscale
    return _downscale(images, side), labels


def _downscale(images: np.ndarray, side: int) -> np.ndarray:
    """Area-average to side x side (on the nearest multiple grid) and repeat back up to 28 x 28."""
    grid = np.linspace(0, 28, side + 1).round().astype(int)
    pix = images.reshape(-1, 28, 28)
    out = np.empty_like(pix)
    for i in range(side):
        for j in range(side):
            r0, r1, c0, c1 = grid[i], grid[i + 1], grid[j], grid[j + 1]
            out[:, r0:r1, c0:c1] = pix[:, r0:r1, c0:c1].mean(axis=(1, 2), keepdims=True)
    return out.reshape(len(images), 784)
