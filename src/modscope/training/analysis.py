"""All the seed-004 analyses of one recorded run from a single pass over its gradients."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from modscope.results import Result
from modscope.training.gram import compute_gram
from modscope.training.profiles import LogitPCA, TimeProfiles, logit_pca, time_profiles
from modscope.training.randomwalk import PC1_RANDOM_WALK, RandomWalkNull, random_walk_null, trajectory_pc_fractions
from modscope.training.residual import HeldoutResidual, heldout_residual
from modscope.training.sampling import sampling_study
from modscope.training.spectrum import GradSpectrum, spectrum_from_gram
from modscope.training.store import as_store


@dataclass(frozen=True)
class GradientAnalysis(Result):
    """The spectrum (plain and centred), sampling studies, held-out residual, time profiles, logit PCA and
    the random-walk null of one recorded run.

    Attributes:
        spectrum / centred: GradSpectrum over all steps without / with the mean gradient subtracted.
        sampling: {"random", "even", "random-centred", "random-skip"}: SamplingStudy each (the seed's
            400 x 10 protocol; ``random-skip`` leaves out the first ``skip_first`` steps).
        residual: HeldoutResidual (fit on ``sample_size`` random steps). profiles: TimeProfiles (top 10).
        logits: LogitPCA over checkpoints, or None when the run kept no checkpoints.
        trajectory_pc: variance fractions of the top 5 PCs of the weight trajectory, from the Gram; NaN
            unless the run used plain SGD and recorded every step (otherwise updates are not -lr * gradient).
        random_walk: RandomWalkNull with as many steps (its trajectory PC1 -> 6/pi^2 = 0.608).
    """

    spectrum: GradSpectrum
    centred: GradSpectrum
    sampling: dict
    residual: HeldoutResidual
    profiles: TimeProfiles
    logits: LogitPCA | None
    trajectory_pc: np.ndarray
    random_walk: RandomWalkNull

    def plot(self, ax=None):
        return self.spectrum.plot(ax)


def analyse_gradients(source, *, sample_size: int = 400, repeats: int = 10, skip_first: int | None = None,
                      method: str = "gram", params=None, seed: int = 0,
                      null_dim: int | None = None) -> GradientAnalysis:
    """Run every analysis of the issue on a recorded store (one Gram; everything else reuses it).

    Args:
        source: GradientStore / recorder / TrainRun / directory. sample_size, repeats: the sampling protocol
            (clipped to half the steps for short runs). skip_first: steps left out in ``random-skip``
            (default 10% of the run). method: ``gram`` or ``dask`` (how the Gram is computed).
        null_dim: parameters simulated by the random-walk null (default 4 x steps, within 2048..8192; its
            counts approach min(steps, dim) once dim >> steps, as for the real run's 10^5 parameters).
    """
    store = as_store(source)
    gg = compute_gram(store, params=params, engine="dask" if method == "dask" else "local")
    n = gg.gram.shape[0]
    size = max(2, min(sample_size, n // 2))
    skip = n // 10 if skip_first is None else skip_first
    study = functools.partial(sampling_study, gg, repeats=repeats, seed=seed)
    sampling = {"random": study(size=size), "even": study(size=size, scheme="even"),
                "random-centred": study(size=size, centre=True),
                "random-skip": study(size=min(size, n - skip), skip_first=skip)}
    spectrum = spectrum_from_gram(gg, method=method)
    lrs = np.asarray(store.lrs, dtype=np.float64)
    lrs = None if np.isnan(lrs).any() else lrs[np.searchsorted(store.steps, gg.steps)]
    # the weight trajectory is L diag(lr) A only for plain SGD with every step recorded
    every_step = list(gg.steps) == list(range(len(store.steps))) == list(store.steps)
    plain_sgd = store.meta.get("optimizer", "sgd") == "sgd" and store.meta.get("task") != "modadd"
    trajectory = trajectory_pc_fractions(gg.gram, lrs) if every_step and plain_sgd else np.full(5, np.nan)
    ckpt = store.checkpoint_logits
    return GradientAnalysis(
        spectrum=spectrum, centred=spectrum_from_gram(gg, centre=True, method=method), sampling=sampling,
        residual=heldout_residual(gg, fit_size=max(2, min(sample_size, n - 1, int(0.75 * n))), seed=seed),
        profiles=time_profiles(spectrum, k=10),
        logits=logit_pca(ckpt, store.checkpoint_steps) if len(ckpt) >= 3 else None,
        trajectory_pc=trajectory,
        random_walk=random_walk_null(n, null_dim or min(8192, max(2048, 4 * n)), seed=seed))


__all__ = ["GradientAnalysis", "PC1_RANDOM_WALK", "analyse_gradients"]
