"""When in training does each singular direction act? Time profiles, and PCA of logits over checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import CATEGORY_CMAP, TRAINED, axes
from modscope.results import Result
from modscope.training.fourier import pca_path, turning_points


@dataclass(frozen=True)
class TimeProfiles(Result):
    """Loadings per step of the top-k step-space singular vectors ``u_i`` of the gradient matrix.

    Attributes:
        steps: int [steps], training step of each loading. profiles: float64 [k, steps], unit vectors.
        singular_values: float64 [k]. centroid_step: float [k], ``sum_t t u_it^2`` (the step around which
            the direction acts). early_mass: float [k], share of ``u_i^2`` in the first 10% of steps
            (0.1 for a direction spread evenly over time).
    """

    steps: np.ndarray
    profiles: np.ndarray = field(repr=False)
    singular_values: np.ndarray
    centroid_step: np.ndarray
    early_mass: np.ndarray

    _json_exclude = ("profiles", "steps")
    _frame_columns = ("singular_values", "centroid_step", "early_mass")

    def plot(self, ax=None, *, show: int = 5):
        ax = axes(ax)
        cmap = __import__("matplotlib").colormaps[CATEGORY_CMAP]
        for i in range(min(show, len(self.profiles))):
            ax.plot(self.steps, self.profiles[i], lw=0.8, color=cmap(i), label=f"u{i + 1}")
        ax.set(xlabel="training step", ylabel="loading (unit vector)")
        ax.legend(fontsize=7, ncol=min(show, 5))
        return ax


def time_profiles(spectrum, k: int = 10) -> TimeProfiles:
    """Summarise the top ``k`` time profiles of a GradSpectrum (``spectrum.time_profiles`` rows)."""
    k = min(k, spectrum.time_profiles.shape[0])
    if k < 1:
        raise ModscopeError("the spectrum kept no time profiles; compute it with method='gram'")
    prof = spectrum.time_profiles[:k]
    steps = np.asarray(spectrum.steps, dtype=np.float64)
    weight = prof**2
    early = steps <= steps.min() + 0.1 * (steps.max() - steps.min())
    return TimeProfiles(steps=np.asarray(spectrum.steps), profiles=prof,
                        singular_values=spectrum.singular_values[:k], centroid_step=weight @ steps,
                        early_mass=weight[:, early].sum(axis=1))


@dataclass(frozen=True)
class LogitPCA(Result):
    """PCA of probe-batch logits across checkpoints (Olsson et al. 2022, "In-context learning and induction
    heads", sec. on per-token loss PCA; Nanda et al. 2023 for logit trajectories).

    Each checkpoint is one point: its logits on a fixed probe batch, flattened. Rows are centred over
    checkpoints before the SVD.

    Attributes:
        checkpoint_steps: int [checkpoints]. coords: float64 [checkpoints, 2], scores on PC1 and PC2.
        explained: float64 [<= 10], variance fraction of each leading PC (unitless).
        turning_step: checkpoint step where the trajectory turns most sharply (largest angle between
            successive displacement vectors in the PC1-PC2 plane), a candidate phase change.
    """

    checkpoint_steps: np.ndarray
    coords: np.ndarray
    explained: np.ndarray
    turning_step: int

    def plot(self, ax=None):
        ax = axes(ax)
        ax.plot(self.coords[:, 0], self.coords[:, 1], "-", color=TRAINED, lw=0.8, alpha=0.6)
        sc = ax.scatter(self.coords[:, 0], self.coords[:, 1], c=self.checkpoint_steps, cmap="viridis", s=12)
        ax.figure.colorbar(sc, ax=ax, label="step")
        ax.set(xlabel=f"logit PC1 ({self.explained[0]:.0%})",
               ylabel=f"logit PC2 ({self.explained[1]:.0%})" if len(self.explained) > 1 else "PC2")
        return ax


def logit_pca(logits: np.ndarray, checkpoint_steps) -> LogitPCA:
    """PCA of ``logits`` float [checkpoints, probe, classes] over checkpoints."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[0] < 3:
        raise ModscopeError(f"need logits [checkpoints >= 3, probe, classes], got shape {logits.shape}; "
                            "train with checkpoint_every > 0 (`--checkpoint-every`)")
    coords, explained = pca_path(logits.reshape(len(logits), -1))
    steps = np.asarray(checkpoint_steps)
    return LogitPCA(checkpoint_steps=steps, coords=coords, explained=explained[:10],
                    turning_step=int(steps[turning_points(coords, n=1)[0]]))
