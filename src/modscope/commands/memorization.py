"""``modscope memorization``: counterfactual memorization of MNIST examples from subset models (seed 002)."""

from __future__ import annotations

from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, emit, positive
from modscope.errors import ModscopeError


def register(app: typer.Typer) -> None:
    @app.command("memorization")
    def memorization_cmd(
        examples: int = typer.Option(2000, "--examples", help="MNIST training examples in the pool (plus planted "
                                     "duplicates)."),
        models: int = typer.Option(16, "--models", help="Subset models, each trained on a random half."),
        steps: int = typer.Option(400, "--steps", help="Adam steps (batch 64) per model: the fixed budget."),
        width: int = typer.Option(128, "--width", help="Hidden units of each MLP."),
        workers: int = typer.Option(2, "--workers", help=common.WORKERS_HELP),
        scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address (runs the models there)."),
        shuffled_null: bool = typer.Option(True, "--shuffled-null/--no-shuffled-null",
                                           help="Also run the label-shuffled null ensemble."),
        seed: int = common.SEED_OPTION, out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
        null: bool | None = common.old_spelling("--null/--no-null"),
    ) -> None:
        """Train M small MLPs on random halves, score each example in vs out (with a CI), planted checks and a
        label-shuffled null; with --out, finished models are kept and a rerun resumes."""
        from modscope.training.memorization import memorization_report

        shuffled_null = common.renamed(shuffled_null, null, "memorization --null", "--shuffled-null")
        for value, name in ((examples - 19, "--examples - 19"), (models - 1, "--models - 1"), (steps, "--steps"),
                            (width, "--width"), (workers, "--workers")):
            positive(value, name)
        client = None
        if scheduler:
            try:
                from dask.distributed import Client
            except ImportError:
                raise ModscopeError("--scheduler needs dask.distributed; install it or drop --scheduler") from None
            client = Client(scheduler)
        emit(out, memorization_report(examples, models=models, steps=steps, width=width, workers=workers,
                                      shuffled_null=shuffled_null, seed=seed, out=out, client=client), as_json)


def demo_memorization(ctx: DemoContext, out: Path) -> None:
    from modscope.training.memorization import memorization_report

    memorization_report(ctx.pick(400, 1000, 2000), models=ctx.pick(8, 16, 64), steps=ctx.pick(200, 300, 400),
                        width=ctx.pick(64, 128, 128), shuffled_null=ctx.size != "quick", out=out)


def demo_steps() -> list:
    """Counterfactual memorization on MNIST with planted examples."""
    return [DemoStep("memorization", "Counterfactual memorization", demo_memorization)]
