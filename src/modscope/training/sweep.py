"""Run the same MNIST training under a list of null conditions and compare the singular-value counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.training.gram import accepts_center, compute_gram
from modscope.training.mnist import train_mnist
from modscope.training.nulls import parse_null
from modscope.training.spectrum import THRESHOLDS, spectrum_from_gram

DEFAULT_NULLS = ("none", "noise:0.5", "noise:1", "pixel-shuffle", "row-shuffle", "label-shuffle", "classes:2",
                 "downscale:7", "init-scale:10", "width:32")


@dataclass(frozen=True)
class SweepResult(Result):
    """Threshold counts of the gradient spectrum per training condition (all steps, same seed and length).

    Attributes:
        conditions: condition labels (``none`` is the unchanged run).
        counts: {frac: int array [conditions]} counts above ``frac * largest`` (centred if ``center``).
        n_steps, n_params: int arrays [conditions] (``width`` changes n_params; ``classes`` the data).
        final_loss: mean training loss of the last 10% of steps (nats). valid_accuracy: fraction.
        center: whether the mean gradient was subtracted.
        spectra: list of normalised singular-value arrays (not in JSON).
    """

    conditions: list
    counts: dict
    n_steps: np.ndarray
    n_params: np.ndarray
    final_loss: np.ndarray
    valid_accuracy: np.ndarray
    center: bool
    spectra: list = field(repr=False)

    _json_exclude = ("spectra",)
    _frame_columns = ("conditions", "n_steps", "n_params", "final_loss", "valid_accuracy")

    def plot(self, ax=None, *, frac: float = 0.10):
        """Count above ``frac`` of the largest per condition (bar), the unchanged run highlighted."""
        ax = axes(ax, figsize=(6.5, 3.6))
        counts = np.asarray(self.counts[frac])
        colours = [TRAINED if c == "none" else NULL for c in self.conditions]
        ax.bar(range(len(counts)), counts, color=colours)
        ax.set_xticks(range(len(counts)), self.conditions, rotation=40, ha="right", fontsize=7)
        ax.set_ylabel(f"singular values > {frac:.2f} of max")
        return ax

    def plot_spectra(self, ax=None):
        ax = axes(ax)
        for cond, spec in zip(self.conditions, self.spectra, strict=True):
            ax.semilogy(np.arange(1, len(spec) + 1), np.maximum(spec, 1e-8), lw=1.6 if cond == "none" else 0.8,
                        color=TRAINED if cond == "none" else None, label=cond)
        for frac in THRESHOLDS:
            ax.axhline(frac, color=NULL, ls="--", lw=0.6)
        ax.set(xlabel="singular value index", ylabel="singular value / largest")
        ax.legend(fontsize=6, ncol=2)
        return ax


@accepts_center
def run_sweep(conditions=DEFAULT_NULLS, *, centre: bool = False,
              progress: Callable[[str], None] | None = None, **train_kwargs) -> SweepResult:
    """Train once per condition (recording all parameters in RAM) and count singular values.

    Args:
        conditions: null labels (see ``modscope.training.nulls.NULL_KINDS``); ``none`` = unchanged.
        centre: subtract the mean gradient (``center``: old spelling, one release).
        progress: called with each condition's label before it runs.
        train_kwargs: passed to ``train_mnist`` (``max_steps``, ``epochs``, ``seed``, ``arch``, ...).
    Returns:
        SweepResult.
    """
    labels = [c if isinstance(c, str) else c.label for c in conditions]
    for label in labels:
        parse_null(label)  # fail before any training
    rows = []
    for label in labels:
        if progress is not None:
            progress(label)
        run = train_mnist(null=None if label == "none" else label, recorder=True, **train_kwargs)
        spec = spectrum_from_gram(compute_gram(run.recorder.store, per_param=False), centre=centre)
        tail = max(1, run.n_steps // 10)
        rows.append((spec, run.n_steps, run.n_params, float(np.mean(run.losses[-tail:])), run.valid_accuracy))
        del run
    return SweepResult(
        conditions=labels, counts={f: np.array([r[0].counts[f] for r in rows]) for f in THRESHOLDS},
        n_steps=np.array([r[1] for r in rows]), n_params=np.array([r[2] for r in rows]),
        final_loss=np.array([r[3] for r in rows]), valid_accuracy=np.array([r[4] for r in rows]),
        center=centre, spectra=[r[0].normalized for r in rows])
