"""Numerical rank from singular values: the float64 floor, a float32-meaningful threshold, the gap at the rank,
whether the count is exact or a lower bound, and when a trained model's rank differs from its twin's."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


def noise_floor(sigma_max: float, n_in: int, n_out: int, floor: float | None = None) -> tuple[float, str]:
    """The σ below which a direction is numerically zero, and the rule that set it.

    Default: ``max(n_in, n_out) · eps_float64 · σ₁``, the rank tolerance of ``numpy.linalg.matrix_rank`` (Golub &
    Van Loan §2.4.8; Press et al., Numerical Recipes §2.6): rounding in a float64 evaluation of J and its SVD moves
    singular values by about that much. A user ``floor`` (absolute, in σ units) replaces it.
    """
    if floor is not None:
        if floor < 0:
            raise ModscopeError(f"floor must be ≥ 0 (an absolute singular value), got {floor}")
        return float(floor), "user floor"
    return max(n_in, n_out) * EPS64 * float(sigma_max), "max(n_in, n_out)·eps64·σ₁"


def float32_floor(sigma_max: float, width: int) -> tuple[float, str]:
    """``√d · eps_float32 · σ₁`` with d the width each product sums over: the relative size of the rounding error
    of a length-d float32 dot product (random-walk bound, Higham, Accuracy and Stability of Numerical Algorithms
    §3.1 and Higham & Mary 2019). A direction whose gain is below it could not be told apart from zero in the
    float32 model the Jacobian describes, even though the float64 copy resolves it."""
    return math.sqrt(width) * EPS32 * float(sigma_max), f"√d·eps32·σ₁, d = {width}"


def count_above(values: np.ndarray, level: float, complete: bool) -> tuple[int, str]:
    """(count of values above ``level``, its kind): ``exact`` when every value is known or the count stops inside
    the known ones; ``lower bound`` when only the top values are known and all of them are above ``level``."""
    rank = int((np.asarray(values) > level).sum())
    return rank, "exact" if complete or rank < len(values) else "lower bound"


def gap_at(values: np.ndarray, rank: int) -> float:
    """σ_r / σ_{r+1} (sorted descending, r = ``rank``): how far the last counted value stands above the first
    uncounted one (a clean rank has a gap of many decades; inf when σ_{r+1} = 0). nan when r = 0 or σ_{r+1} was
    not computed (full rank, or a top-k run whose values all count)."""
    values = np.asarray(values, dtype=np.float64)
    if rank <= 0 or rank >= len(values):
        return float("nan")
    below = float(values[rank])
    return float("inf") if below <= 0 else float(values[rank - 1]) / below


def rank_text(rank: int, kind: str) -> str:
    """The rank as a report should print it: ``≥ 64`` for a lower bound, ``≈ 300`` for an estimate, else ``2190``."""
    return {"lower bound": f"≥ {rank}", "estimate": f"≈ {rank}"}.get(kind, str(rank))


@dataclass(frozen=True)
class RankComparison(Result):
    """Trained vs random-init twin rank of the same map, read with its float32 band.

    Each model's rank lies in a band [float32_rank, rank]: the count above √d·eps32·σ₁ (what a float32 model can
    resolve) up to the count above the float64 floor. A difference between the two models only counts where the
    bands do not overlap.

    Attributes:
        label: which map (part, layer, tokens). size: full rank min(n_in, n_out).
        trained_rank, trained_float32_rank, twin_rank, twin_float32_rank: the two bands.
        exact: both ranks are exact (not top-k lower bounds nor estimates).
        tight_pass: exact, the trained map is rank deficient and its band lies wholly below the twin's.
        reason: one sentence saying why (or why not).
    """

    label: str
    size: int
    trained_rank: int
    trained_float32_rank: int
    twin_rank: int
    twin_float32_rank: int
    exact: bool
    tight_pass: bool
    reason: str

    def plot(self, ax=None):
        from modscope import figures as style

        ax = style.axes(ax)
        for i, (low, high, name) in enumerate(((self.trained_float32_rank, self.trained_rank, "trained"),
                                               (self.twin_float32_rank, self.twin_rank, "twin"))):
            ax.plot([i, i], [low, high], lw=6, color=style.TRAINED if i == 0 else style.NULL, label=name)
        ax.set_ylabel("rank (float32 band to float64 floor)")
        ax.legend(fontsize=7)
        return ax


def compare_ranks(label: str, trained, twin) -> RankComparison:
    """Is there a tight pass in ``trained`` that its random twin does not have? Both are JacobianSpectrum-like
    (``rank``, ``float32_rank``, ``rank_kind``, ``float32_rank_kind``, ``full_size``)."""
    exact = all(s.rank_kind == "exact" and s.float32_rank_kind == "exact" for s in (trained, twin))
    t_low, t_high, w_low, w_high = trained.float32_rank, trained.rank, twin.float32_rank, twin.rank
    if not exact:
        tight, reason = False, "not exact (a top-k lower bound or an estimate): no rank difference can be stated"
    elif t_high >= trained.full_size:
        tight, reason = False, "the trained map is full rank"
    elif t_high < w_low:
        tight, reason = True, (f"trained rank {t_low}–{t_high} lies below the twin's {w_low}–{w_high} "
                               "even at the float32 threshold")
    elif w_high < t_low:
        tight, reason = False, f"the twin is narrower ({w_low}–{w_high}) than the trained map ({t_low}–{t_high})"
    elif (t_low, t_high) == (w_low, w_high):
        tight, reason = False, (f"trained and twin have the same rank ({t_low}–{t_high}): the deficiency is "
                                "structural (the architecture), not learned")
    else:
        tight, reason = False, (f"trained {t_low}–{t_high} and twin {w_low}–{w_high} overlap within the float32 "
                                "band: no difference beyond what float32 rounding could hide")
    return RankComparison(label, trained.full_size, t_high, t_low, w_high, w_low, exact, tight, reason)
