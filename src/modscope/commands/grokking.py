"""``modscope grokking RUN_DIR``: Fourier components of a modadd run, their ablation and the loss PCA (seed 004)."""

from __future__ import annotations

from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, emit, positive


def register(app: typer.Typer) -> None:
    @app.command("grokking")
    def grokking_cmd(
        run_dir: Path = typer.Argument(..., help="The --out directory of `modscope train modadd`."),
        components: int = typer.Option(5, "--components", help="Top singular directions per SVD."),
        max_rows: int = typer.Option(1000, "--max-rows", help="Gradient steps used (evenly thinned beyond this)."),
        seed: int = common.SEED_OPTION,
        out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Express the top gradient / weight-trajectory directions of the embedding in the Fourier basis of Z_p
        (sparse or dense against random directions), ablate each from the final weights, and PCA the per-example
        losses over checkpoints."""
        from modscope.training.grokking import grokking_report

        positive(components, "--components")
        positive(max_rows - 2, "--max-rows - 2")
        emit(out, grokking_report(run_dir, components=components, max_rows=max_rows, seed=seed, out=out), as_json)


def demo_grokking(ctx: DemoContext, out: Path) -> None:
    from modscope.training.grokking import grokking_report
    from modscope.training.modadd import train_modadd

    # default stays small for the demo's ~15-minute budget on 2 cores; --full is the README's p = 113 grokking run
    train_modadd(p=ctx.pick(23, 31, 113), steps=ctx.pick(300, 800, 5000), width=ctx.pick(64, 64, 256),
                 lr=ctx.pick(1e-2, 1e-2, 1e-3), recorder=out / "run" / "grads", every=ctx.pick(2, 4, 5),
                 checkpoints=ctx.pick(30, 50, 100))
    grokking_report(out / "run", out=out)


def demo_steps() -> list:
    """Grokking components in the Fourier basis (a small modadd run)."""
    return [DemoStep("grokking", "Grokking components in the Fourier basis", demo_grokking)]
