"""Calibration study: every decision rule of the report run on simulated data with known truth.

This is a *study*, not a probe: it exercises the pure cores of several probes (stats, geometry, weights) on
the same simulated data, so it lives outside them; the "probes never import each other" rule is kept because
no probe imports this package. The simulation is ``modscope.stats.simulate``, the rates and intervals
``modscope.stats.calibration``.

Every rule is tested at the decision it makes in the report: a p-value below α = 0.05, or for verdicts that
say "above the null" z > 3 (nominal one-sided α = 0.00135).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modscope.stats.calibration import CalibrationResult, Rule, run_rules
from modscope.stats.simulate import REGIMES, check_regime


@dataclass(frozen=True)
class Sizes:
    """Simulation sizes. d: columns per side (MI) or in all (spectra, blocks). n: rows. reps: trials per cell.
    permutations: permutation/shuffle count of every null. curve_n: rows of the MI-vs-n curve's largest n."""

    d: int
    n: int
    reps: int
    permutations: int
    curve_d: int
    curve_n: int
    separation_n: int
    widths: tuple[int, ...]


QUICK = Sizes(d=8, n=300, reps=100, permutations=39, curve_d=8, curve_n=2000, separation_n=40, widths=(8, 8, 8))
DEFAULT = Sizes(d=32, n=1000, reps=200, permutations=99, curve_d=32, curve_n=20000, separation_n=80,
                widths=(24, 24, 24))


def calibrate(*, quick: bool = False, rules: list[str] | None = None, regimes: list[str] | None = None,
              reps: int | None = None, seed: int = 0, sizes: Sizes | None = None,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """False-positive rate (no effect) and power (planted effect) of each rule in each regime.

    Args:
        quick: small sizes (``QUICK``; minutes on 2 cores) instead of ``DEFAULT``.
        rules: rule names to run (default all, see ``modscope.calibration.rules.RULES``).
        regimes: regimes (default all of ``modscope.stats.simulate.REGIMES``).
        reps: trials per (rule, regime) and kind (default from the sizes). seed: base seed.
        sizes: explicit sizes (overrides ``quick``). progress: called with one line per finished rule.

    Returns:
        CalibrationResult.
    """
    from modscope.calibration.rules import make_rules, select

    sizes = sizes or (QUICK if quick else DEFAULT)
    chosen = select(make_rules(sizes), rules)
    regimes = list(regimes or REGIMES)
    for regime in regimes:
        check_regime(regime)
    return run_rules(chosen, regimes, reps=reps or sizes.reps, seed=seed, sizes=vars(sizes).copy(),
                     progress=progress)


__all__ = ["DEFAULT", "QUICK", "Rule", "Sizes", "calibrate"]
