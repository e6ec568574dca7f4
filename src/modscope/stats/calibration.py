"""Calibration maths: false-positive rate and power of a decision rule on simulated data, with binomial CIs.

A *rule* is a decision the report makes ("MI above the null", "k directions above the null", ...). On data
with no effect (known truth) it should fire at most at its nominal rate α; on a planted effect of stated size
it should fire often (its power). ``run_rules`` repeats each rule's two trials ``reps`` times per regime and
reports the rates with exact Clopper–Pearson intervals (Clopper & Pearson 1934). The rules themselves, which
call the probes' pure cores, live in ``modscope.calibration`` (a study, so that no probe imports another).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import beta

from modscope.results import Result

Trial = Callable[[str, np.random.Generator], bool | None]


@dataclass(frozen=True)
class Rule:
    """One decision rule of the report and how to exercise it.

    Attributes:
        name: short id, e.g. ``mi_p``. what: the decision in words, with its threshold.
        nominal: the false-positive rate the rule claims (α).
        null_trial: (regime, rng) -> did the rule fire on data with no effect (None: trial not applicable).
        power_trial: (regime, rng) -> did the rule find the planted effect (None: not applicable here).
        effect: the planted effect of ``power_trial``, in words with its size.
        in_verdicts: False when the report no longer bases a verdict on the rule (it is shown for reference).
    """

    name: str
    what: str
    nominal: float
    null_trial: Trial
    power_trial: Trial | None
    effect: str
    in_verdicts: bool = True


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval of k successes in n trials (Clopper & Pearson 1934)."""
    if n == 0:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


def binomial_upper(nominal: float, n: int, level: float = 0.99) -> float:
    """The largest false-positive *fraction* of n trials still consistent with a true rate ``nominal``:
    the ``level`` quantile of Binomial(n, nominal) / n (a test allows this much before calling a rule broken)."""
    from scipy.stats import binom

    return float(binom.ppf(level, n, nominal)) / n


@dataclass(frozen=True)
class CalibrationResult(Result):
    """False-positive rate and power of every rule in every regime.

    Attributes:
        rules, regimes: names in table order. nominal: α per rule. what, effect: each rule's decision and effect.
        in_verdicts: per rule, whether the report still bases a verdict on it.
        reps: trials per (rule, regime) and per kind. fp, fp_n: false positives and valid null trials [rule, regime].
        power, power_n: detections and valid planted trials [rule, regime] (power_n = 0: not applicable).
        seconds: wall time per rule. sizes: the simulation sizes (d, n, permutations...).
    """

    rules: list[str]
    regimes: list[str]
    nominal: list[float]
    what: list[str]
    effect: list[str]
    in_verdicts: list[bool]
    reps: int
    fp: np.ndarray
    fp_n: np.ndarray
    power: np.ndarray
    power_n: np.ndarray
    seconds: list[float]
    sizes: dict = field(default_factory=dict)

    def fpr(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.fp / self.fp_n

    def failures(self, level: float = 0.99) -> list[tuple[str, str, float]]:
        """(rule, regime, FPR) of every cell above ``binomial_upper(nominal, trials)`` (rules in verdicts)."""
        t = self.to_frame(level)
        return [(r.rule, r.regime, float(r.fpr)) for r in t[t.in_verdicts & ~t.ok].itertuples()]

    def to_frame(self, level: float = 0.99) -> pd.DataFrame:
        """One row per (rule, regime): FPR with its 95 % Clopper–Pearson CI vs nominal, and power; ``ok``: the FPR
        is within ``binomial_upper(nominal, trials, level)``."""
        rows = []
        for i, rule in enumerate(self.rules):
            for j, regime in enumerate(self.regimes):
                k, n = int(self.fp[i, j]), int(self.fp_n[i, j])
                lo, hi = clopper_pearson(k, n)
                pk, pn = int(self.power[i, j]), int(self.power_n[i, j])
                rows.append({"rule": rule, "regime": regime, "nominal": self.nominal[i],
                             "fpr": k / n if n else math.nan, "fpr_lo": lo, "fpr_hi": hi, "trials": n,
                             "power": pk / pn if pn else math.nan, "in_verdicts": self.in_verdicts[i],
                             "ok": (not n) or k / n <= binomial_upper(self.nominal[i], n, level)})
        return pd.DataFrame(rows)

    def wide(self) -> pd.DataFrame:
        """FPR per rule (rows) × regime (columns), as ``rate [lo, hi]`` strings, with nominal and power."""
        t = self.to_frame()
        out = pd.DataFrame({"rule": self.rules, "nominal": self.nominal})
        for regime in self.regimes:
            part = t[t.regime == regime].set_index("rule").loc[self.rules]
            out[regime] = [f"{r.fpr:.3f} [{r.fpr_lo:.3f}, {r.fpr_hi:.3f}]" if r.trials else "-"
                           for r in part.itertuples()]
        power = t.groupby("rule", sort=False)["power"].mean().loc[self.rules]
        out["power (mean over regimes)"] = [f"{p:.2f}" if math.isfinite(p) else "-" for p in power]
        out["in verdicts"] = ["yes" if v else "withdrawn" for v in self.in_verdicts]
        return out

    def plot(self, ax=None):
        from modscope import figures as style

        ax = style.axes(ax, figsize=(8.0, 0.45 * len(self.rules) + 1.6))
        t = self.to_frame()
        offsets = np.linspace(-0.3, 0.3, len(self.regimes))
        colours = ["#1f5fa8", "#d9822b", "#3a9a5b", "#b03a48", "#7b5ea7", "#555555"]
        for j, regime in enumerate(self.regimes):
            part = t[t.regime == regime].set_index("rule").loc[self.rules]
            y = np.arange(len(self.rules)) + offsets[j]
            err = np.vstack([part.fpr - part.fpr_lo, part.fpr_hi - part.fpr]).clip(0)
            ax.errorbar(part.fpr, y, xerr=err, fmt="o", ms=3.5, lw=0.9, color=colours[j % len(colours)],
                        label=regime)
        for i, nominal in enumerate(self.nominal):
            ax.plot([nominal, nominal], [i - 0.45, i + 0.45], color="k", lw=1.2)
        ax.set_yticks(np.arange(len(self.rules)),
                      [r if v else f"{r} (withdrawn)" for r, v in zip(self.rules, self.in_verdicts, strict=True)])
        ax.invert_yaxis()
        ax.set(xscale="symlog", xlim=(0, 1.05), xlabel="false-positive rate (95% CI); black bar = nominal α",
               title=f"Calibration: {self.reps} trials per rule × regime, no effect")
        ax.set_xscale("symlog", linthresh=0.01)
        ax.legend(fontsize=7, loc="lower right")
        return ax


def run_rules(rules: Sequence[Rule], regimes: Sequence[str], *, reps: int, seed: int = 0, sizes: dict | None = None,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Run every rule's null and planted trials ``reps`` times in every regime (trial t of rule r, regime g and
    kind k uses the generator seeded [seed, r, g, k, t], so results do not depend on which rules were chosen)."""
    shape = (len(rules), len(regimes))
    fp, fp_n, power, power_n = (np.zeros(shape, dtype=np.int64) for _ in range(4))
    seconds = []
    for i, rule in enumerate(rules):
        start = time.perf_counter()
        key = sum(ord(c) * 31**p for p, c in enumerate(rule.name)) % 2**31
        for j, regime in enumerate(regimes):
            for kind, trial, hits, count in ((0, rule.null_trial, fp, fp_n), (1, rule.power_trial, power, power_n)):
                if trial is None:
                    continue
                for t in range(reps):
                    outcome = trial(regime, np.random.default_rng([seed, key, j, kind, t]))
                    if outcome is None:
                        break
                    hits[i, j] += bool(outcome)
                    count[i, j] += 1
        seconds.append(time.perf_counter() - start)
        if progress:
            progress(f"{rule.name}: {seconds[-1]:.1f} s")
    return CalibrationResult(rules=[r.name for r in rules], regimes=list(regimes), nominal=[r.nominal for r in rules],
                             what=[r.what for r in rules], effect=[r.effect for r in rules],
                             in_verdicts=[r.in_verdicts for r in rules], reps=reps, fp=fp, fp_n=fp_n, power=power,
                             power_n=power_n, seconds=seconds, sizes=dict(sizes or {}))
