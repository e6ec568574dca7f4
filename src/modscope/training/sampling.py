"""Does the seed's sampling (400 random steps, 10 repeats) bias the singular-value count? Answered from one Gram."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.training.gram import GradGram, accepts_center, compute_gram
from modscope.training.spectrum import THRESHOLDS, counts_of_gram
from modscope.training.store import as_store


@dataclass(frozen=True)
class SamplingStudy(Result):
    """Threshold counts over repeated step samples against the count over all (non-skipped) steps.

    Attributes:
        scheme: ``random`` (uniform without replacement) or ``even`` (evenly spaced, random phase).
        size: steps per sample. repeats: samples drawn. skip_first: leading steps left out of everything.
        center: mean gradient of each sample subtracted first.
        sample_counts: {frac: int array [repeats]} of counts above ``frac * largest``.
        mean, sd: {frac: mean / sample standard deviation (ddof=1) of those counts}.
        all_steps_count: {frac: count over all steps after ``skip_first``} (the unsampled answer).
        n_steps: steps available after ``skip_first``.
    """

    scheme: str
    size: int
    repeats: int
    skip_first: int
    center: bool
    sample_counts: dict
    mean: dict
    sd: dict
    all_steps_count: dict
    n_steps: int

    def to_frame(self):
        """One row per threshold: mean and sd of the count over the sampled subsets, and the all-steps count."""
        import pandas as pd

        return pd.DataFrame({"threshold": list(self.mean), "mean": list(self.mean.values()),
                             "sd": [self.sd[t] for t in self.mean],
                             "all_steps": [self.all_steps_count.get(t) for t in self.mean]})

    def plot(self, ax=None):
        """Sampled counts per threshold (dots, mean +- sd) and the all-steps count (open square)."""
        ax = axes(ax)
        for i, frac in enumerate(THRESHOLDS):
            counts = np.asarray(self.sample_counts[frac])
            jitter = np.linspace(-0.12, 0.12, len(counts))
            ax.plot(i + jitter, counts, "o", color=TRAINED, alpha=0.5, ms=3)
            ax.errorbar(i + 0.25, self.mean[frac], yerr=self.sd[frac], fmt="_", color=TRAINED, capsize=3)
            ax.plot(i + 0.35, self.all_steps_count[frac], "s", mfc="none", color=NULL,
                    label="all steps" if i == 0 else None)
        ax.set_xticks(range(len(THRESHOLDS)), [f"> {f:.2f} of max" for f in THRESHOLDS])
        ax.set_ylabel("singular values counted")
        ax.set_title(f"{self.repeats} x {self.size} {self.scheme} steps"
                     f"{' (centred)' if self.center else ''}", fontsize=9)
        ax.legend()
        return ax


def sample_rows(n: int, size: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one sample: ``random`` without replacement, or ``even`` spacing with a random phase."""
    if scheme == "random":
        return np.sort(rng.choice(n, size=size, replace=False))
    if scheme == "even":
        stride = n / size
        return np.minimum((rng.uniform(0, stride) + stride * np.arange(size)).astype(np.int64), n - 1)
    raise ModscopeError(f"unknown sampling scheme '{scheme}'; use random or even")


@accepts_center
def sampling_study(store_or_gram, *, size: int = 400, repeats: int = 10, scheme: str = "random",
                   skip_first: int = 0, centre: bool = False, params=None, seed: int = 0) -> SamplingStudy:
    """Repeat the seed's sampled SVD ``repeats`` times and compare with the all-steps count.

    Every sample's spectrum is ``eigh`` of a sub-block ``G[S, S]`` of the full Gram, so the study costs
    one pass over the gradients however many samples are drawn.

    Args:
        store_or_gram: a GradGram (reused) or anything ``gradient_spectrum`` accepts.
        size: steps per sample (seed: 400). repeats: samples (seed: 10). scheme: ``random`` | ``even``.
        skip_first: leave out the first steps (the comment asking whether early steps dominate).
        centre: subtract each sample's mean gradient (``center``: old spelling, one release).
        seed: sampling RNG seed.
    Returns:
        SamplingStudy.
    """
    gg = store_or_gram if isinstance(store_or_gram, GradGram) else compute_gram(
        as_store(store_or_gram), params=params, per_param=False)
    n_total = gg.gram.shape[0]
    if skip_first < 0 or skip_first >= n_total - 1:
        raise ModscopeError(f"skip_first must be in 0..{n_total - 2}, got {skip_first}")
    gram = gg.gram[skip_first:, skip_first:]
    n = gram.shape[0]
    if not 2 <= size <= n:
        raise ModscopeError(f"sample size must be in 2..{n} (steps after skip_first), got {size}")
    if repeats < 2:
        raise ModscopeError(f"repeats must be >= 2 to report a spread, got {repeats}")
    rng = np.random.default_rng(seed)
    per_sample = []
    for _ in range(repeats):
        rows = sample_rows(n, size, scheme, rng)
        per_sample.append(counts_of_gram(gram[np.ix_(rows, rows)], centre))
    sample_counts = {f: np.array([c[f] for c in per_sample]) for f in THRESHOLDS}
    return SamplingStudy(
        scheme=scheme, size=size, repeats=repeats, skip_first=skip_first, center=centre,
        sample_counts=sample_counts, mean={f: float(v.mean()) for f, v in sample_counts.items()},
        sd={f: float(v.std(ddof=1)) for f, v in sample_counts.items()},
        all_steps_count=counts_of_gram(gram, centre), n_steps=n)
