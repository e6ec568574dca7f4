"""CLI for the calibration study: ``modscope calibrate`` (how often each verdict rule fires when nothing is there)."""

from __future__ import annotations

from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, console, emit, parse_csv
from modscope.errors import ModscopeError
from modscope.report.numbers import plural

QUESTION = ("How often does each decision rule of the report claim an effect on simulated data with none "
            "(Gaussian, heavy-tailed rows, spread variances, a massive coordinate, n close to d), and how often does "
            "it find a planted one?")


def describe(result) -> tuple[list[str], str]:
    """(headline sentences, verdict) written from a CalibrationResult."""
    table = result.to_frame()
    headline = []
    for i, rule in enumerate(result.rules):
        part = table[table.rule == rule]
        worst = part.loc[part.fpr.idxmax()] if part.trials.sum() else None
        if worst is None:
            continue
        status = "" if result.in_verdicts[i] else " [withdrawn from verdicts]"
        headline.append(f"{rule}: worst false-positive rate {worst.fpr:.3f} [{worst.fpr_lo:.3f}, {worst.fpr_hi:.3f}] "
                        f"({worst.regime}) vs nominal {result.nominal[i]:.3g}; power {part.power.mean():.2f} on "
                        f"{result.effect[i]}{status}")
    failures = result.failures()
    live = sum(result.in_verdicts)
    if failures:
        cells = ", ".join(f"{rule}/{regime} {rate:.2f}" for rule, regime, rate in failures)
        verdict = (f"{len(failures)} rule × regime cells of the {live} rules in verdicts fire above nominal (beyond "
                   f"the 99% binomial margin of {result.reps} trials): {cells}.")
    else:
        verdict = (f"Every one of the {live} rules in verdicts stays within its nominal false-positive rate in all "
                   f"{len(result.regimes)} regimes ({result.reps} trials each, 99% binomial margin); "
                   f"{plural(len(result.rules) - live, 'rule')} shown for reference "
                   f"{'is' if len(result.rules) - live == 1 else 'are'} withdrawn from verdicts.")
    return headline, verdict


def write_page(out: Path, result, settings: dict) -> None:
    from modscope.report import write_probe

    headline, verdict = describe(result)
    write_probe(out, probe="calibration", title="Calibration of the report's decision rules", question=QUESTION,
                result=result, headline=headline, verdict=verdict, figures={"fpr": result.plot().figure},
                tables={"false-positive rate [95% CI] per regime": result.wide(), "all cells": result.to_frame()},
                settings=settings)


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to ``app``."""

    @app.command("calibrate")
    def calibrate_command(
        quick: bool = typer.Option(False, "--quick", help="Small sizes (minutes on 2 cores)."),
        rules: str = typer.Option("", "--rules", help="Comma-separated rule names (default: all)."),
        regimes: str = typer.Option("", "--regimes", help="Comma-separated regimes (default: all)."),
        reps: int = typer.Option(0, "--reps", help="Trials per rule × regime (default: from the sizes)."),
        seed: int = common.SEED_OPTION,
        out: Path | None = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """False-positive rate and power of every verdict rule on simulated data with known truth."""
        from modscope.calibration import calibrate
        if reps < 0:
            raise ModscopeError(f"--reps must be >= 0, got {reps}")
        result = calibrate(quick=quick, rules=parse_csv(rules) or None, regimes=parse_csv(regimes) or None,
                           reps=reps or None, seed=seed, progress=lambda line: console.print(f"  {line}"))
        settings = {"quick": quick, "rules": result.rules, "regimes": result.regimes, "reps": result.reps,
                    "seed": seed, **result.sizes}
        if out is not None:
            write_page(out, result, settings)
        verdict = describe(result)[1]
        emit(out, {"settings": settings, "result": result.to_json(), "verdict": verdict}, as_json,
             text=(result.wide().to_string(index=False), verdict))


def demo_steps() -> list[DemoStep]:
    """``calibrate`` (quick sizes in the quick and default demo, default sizes in the full demo)."""

    def run(ctx: DemoContext, out_dir: Path) -> None:
        from modscope.calibration import calibrate

        quick = ctx.size != "full"
        result = calibrate(quick=quick, reps=ctx.pick(40, 60, None), seed=0)
        write_page(out_dir, result, {"quick": quick, "reps": result.reps, **result.sizes})

    return [DemoStep("calibration", "Calibration: false-positive rate of every verdict rule", run)]
