"""``modscope demo``: every probe on the embedded model, resumable, then one HTML report."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from modscope.commands.common import DemoContext, console
from modscope.report.page import RESULT_FILE


def all_steps() -> list:
    from modscope.commands import modules

    return [step for module in modules() for step in module.demo_steps()]


def run_demo(out: Path, size: str = "default", model: str = "smollm2-135m", only: list[str] | None = None) -> Path:
    """Run every demo step into ``out/<step>`` (finished steps are skipped, so a re-run resumes), then the index."""
    from modscope.report import build_index

    ctx = DemoContext(out=out, size=size, model=model)
    steps = [s for s in all_steps() if not only or s.name in only]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i, step in enumerate(steps, 1):
        step_dir = out / step.name
        prefix = f"[{i}/{len(steps)}] {step.title}"
        if (step_dir / RESULT_FILE).exists():
            console.print(f"{prefix}: done earlier, kept")
            continue
        t0 = time.perf_counter()
        console.print(f"{prefix} ...")
        step.run(ctx, step_dir)
        console.print(f"{prefix}: {time.perf_counter() - t0:.0f} s (total {time.perf_counter() - start:.0f} s)")
    return build_index(out, title=f"modscope demo: {model} vs its random-init twin")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory (re-run to resume)."),
        quick: bool = typer.Option(False, "--quick", help="Small settings (about 3 minutes)."),
        full: bool = typer.Option(False, "--full", help="The seeds' sizes (long)."),
        model: str = typer.Option("smollm2-135m", "--model", help="Model to study (its random twin is the null)."),
        only: str = typer.Option(None, "--only", help="Comma-separated step names to run."),
    ) -> None:
        """Run every probe on the embedded model and its random twin; write OUT/index.html."""
        from modscope.commands.common import parse_csv

        size = "quick" if quick else "full" if full else "default"
        index = run_demo(out, size=size, model=model, only=parse_csv(only) or None)
        console.print(f"report: [bold]{index}[/bold]")


def demo_steps() -> list:
    return []
