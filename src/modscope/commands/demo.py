"""``modscope demo``: every probe on the embedded model, resumable, with one overall progress display and a report."""

from __future__ import annotations

import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from modscope.commands.common import DemoContext, console, parse_csv
from modscope.errors import ModscopeError
from modscope.locking import directory_lock
from modscope.paths import write_json_atomic
from modscope.report.index import RUN_FILE, read_run

DONE_MARKER = ".done"  # in a step's directory: the step ran to the end (its results may be several result.json)

SIZES = ("quick", "default", "full")
# Seconds per step on 2 shared cores (quick, default, full), measured on demo runs; only used for the ETA.
ESTIMATE_S: dict[str, tuple[float, float, float]] = {
    "loss": (10, 20, 60), "mi": (15, 90, 400), "spectrum": (15, 90, 400), "similarity": (15, 60, 300),
    "anisotropy": (10, 40, 200), "streams": (10, 40, 200), "clusterability": (15, 60, 300), "sae": (20, 70, 600),
    "jacobian": (20, 120, 800), "gradients": (20, 90, 400), "calibration": (40, 60, 900), "clusters": (5, 15, 480),
    "grokking": (5, 10, 1000), "memorization": (5, 20, 120),
}
FALLBACK_S = (20.0, 90.0, 400.0)


def all_steps() -> list:
    from modscope.commands import modules

    return [step for module in modules() for step in getattr(module, "demo_steps", list)()]


def estimate(name: str, size: str) -> float:
    """Expected seconds of step ``name`` at ``size`` (the ETA's prior; corrected by the steps measured so far)."""
    return ESTIMATE_S.get(name, FALLBACK_S)[SIZES.index(size)]


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class EtaColumn(ProgressColumn):
    """Time left from the steps' expected durations, corrected by the pace of the steps so far.

    Rich's own estimate divides by the rate of completed steps, which means nothing when one step takes 10 s and
    the next 4 minutes. The task field ``finish`` is the expected end (``time.perf_counter()`` seconds) and
    ``after`` the expected seconds of the steps after the running one: a step running over its estimate shows at
    least ``after``, never a countdown stuck at 0:00.
    """

    def render(self, task) -> Text:
        finish, after = task.fields.get("finish"), task.fields.get("after", 0.0)
        if finish is None or task.finished:
            return Text("ETA -" if finish is None else "", style="progress.remaining")
        return Text(f"ETA {duration(max(finish - time.perf_counter(), after))}", style="progress.remaining")


def step_progress(display: Console) -> Progress:
    """The demo's one live display: a bar over the steps, steps done, elapsed time, ETA and the running step.

    Lines printed on ``display`` while it is live go above it. On a console that is not a terminal (a log file)
    rich draws nothing live, so the demo prints one line per step start instead (see ``_run_demo``).
    """
    return Progress(TextColumn("[bold]demo"), BarColumn(bar_width=24), MofNCompleteColumn(), TextColumn("steps"),
                    TimeElapsedColumn(), EtaColumn(), TextColumn("{task.description}"), console=display,
                    transient=False, auto_refresh=display.is_terminal, refresh_per_second=2)


def check_resumable(out: Path, size: str, model: str) -> None:
    """A finished step is only reused when the earlier run in ``out`` had the same model and size."""
    previous = read_run(out)
    if previous and (previous.get("size"), previous.get("model")) != (size, model):
        raise ModscopeError(f"{out} holds a {previous.get('size')} run of {previous.get('model')}; resuming it as a "
                            f"{size} run of {model} would mix the two: pass another --out, or --redo all")


def run_demo(out: Path, size: str = "default", model: str = "smollm2-135m", only: list[str] | None = None,
             redo: list[str] | None = None, steps: list | None = None, display: Console | None = None) -> dict:
    """Run every demo step into ``out/<step>``, then write ``out/index.html``; returns the run record.

    A step whose ``result.json`` exists is kept (so a re-run resumes) unless named in ``redo`` ("all" redoes all).
    A step that raises is recorded as failed (traceback in ``out/<step>/error.txt``) and the others still run.
    ``out/run.json`` (settings, versions, each step's status and seconds) is rewritten after every step, and the
    report is written even when the run is interrupted.

    ``out`` is locked for the whole run: a second demo into it is refused, naming this one.

    Args:
        size: "quick", "default" or "full" (``DemoContext.pick``). model: the trained model; its twin is the null.
        only: run just these step names. steps: the steps (default: every module's ``demo_steps()``).
        display: where progress goes (default: the CLI's stderr console).
    """
    with directory_lock(out):
        return _run_demo(out, size, model, only, redo, steps, display)


def _run_demo(out: Path, size: str, model: str, only: list[str] | None, redo: list[str] | None, steps: list | None,
              display: Console | None) -> dict:
    from modscope.report import build_index
    from modscope.report.page import versions

    display = display or console
    steps = all_steps() if steps is None else steps
    names = [s.name for s in steps]
    unknown = sorted((set(only or []) | set(redo or [])) - {"all"} - set(names))
    if unknown:
        raise ModscopeError(f"unknown demo step(s) {', '.join(unknown)}; the steps are: {', '.join(names)}")
    steps = [s for s in steps if not only or s.name in only]
    redo_all = "all" in (redo or [])
    if not redo_all:
        check_resumable(out, size, model)
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, size=size, model=model)
    earlier = {s["name"]: s for s in read_run(out).get("steps", [])}
    record = {"title": f"modscope demo: {model} vs its random-init twin", "model": model, "twin": f"random:{model}",
              "size": size, "started": _now(), "updated": _now(), "seconds": 0.0,
              "settings": {"model": model, "size": size}, "versions": versions(), "steps": []}
    todo = []
    for step in steps:
        kept = (out / step.name / DONE_MARKER).exists() and not (redo_all or step.name in (redo or []))
        before = earlier.get(step.name, {}) if kept else {}
        record["steps"].append({"name": step.name, "title": step.title, "status": "kept" if kept else "pending",
                                "seconds": before.get("seconds"), "cpu_seconds": before.get("cpu_seconds"),
                                "error": None})
        if not kept:
            todo.append(step)

    def save() -> None:
        record["updated"] = _now()
        record["seconds"] = sum(e["seconds"] or 0.0 for e in record["steps"])
        write_json_atomic(out / RUN_FILE, record)

    expected = sum(estimate(s.name, size) for s in todo)
    display.print(f"[bold]modscope demo[/bold] ({size}): {len(steps)} steps, {len(steps) - len(todo)} done earlier; "
                  f"about {duration(expected)} to go (estimate for 2 cores) → {out}", soft_wrap=True)
    start, spent, planned = time.perf_counter(), 0.0, 0.0
    save()
    bar = step_progress(display)
    task = bar.add_task("", total=len(todo), finish=start + expected, after=0.0)
    try:
        bar.start()
        for i, step in enumerate(todo):
            entry = next(e for e in record["steps"] if e["name"] == step.name)
            pace = min(max(spent / planned, 0.25), 10.0) if planned else 1.0
            now = time.perf_counter()
            after = sum(estimate(s.name, size) for s in todo[i + 1:]) * pace
            bar.update(task, description=f"{escape(step.title)} ({step.name})",
                       finish=now + estimate(step.name, size) * pace + after, after=after)
            bar.refresh()  # the new step shows at once, not at the next tick
            if not display.is_terminal:  # a log file: rich draws nothing live there, so one line per step
                display.print(f"{escape(f'[{i + 1}/{len(todo)}]')} {escape(step.title)} ({step.name}) · elapsed "
                              f"{duration(now - start)} · ETA {duration(estimate(step.name, size) * pace + after)}",
                              soft_wrap=True, highlight=False)
            entry["status"] = "running"
            save()
            t0, c0 = time.perf_counter(), cpu_seconds()
            try:
                step.run(ctx, out / step.name)
                # written only once the whole step returned: a step killed after some of its results is redone
                (out / step.name / DONE_MARKER).write_text(_now())
                entry["status"], entry["error"] = "done", None
                (out / step.name / "error.txt").unlink(missing_ok=True)
            except Exception as exc:  # one broken probe must not stop the others
                entry["status"], entry["error"] = "failed", f"{type(exc).__name__}: {exc}"
                (out / step.name).mkdir(parents=True, exist_ok=True)
                (out / step.name / "error.txt").write_text(traceback.format_exc())
                display.print(f"[red]step {step.name} failed[/red]: {escape(entry['error'])}")
            entry["seconds"] = time.perf_counter() - t0
            entry["cpu_seconds"] = cpu_seconds() - c0
            spent, planned = spent + entry["seconds"], planned + estimate(step.name, size)
            display.print(f"  {step.name}: {entry['status']} in {entry['seconds']:.1f} s "
                          f"(CPU {entry['cpu_seconds']:.1f} s)", highlight=False)
            bar.advance(task)
        bar.update(task, description="all steps finished")
    finally:
        bar.stop()
        for entry in record["steps"]:
            if entry["status"] == "running":
                entry["status"] = "pending"
        save()
        build_index(out, title=record["title"])
    return record


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory (re-run the command to resume)."),
        quick: bool = typer.Option(False, "--quick", help="Small settings (about 3 minutes)."),
        full: bool = typer.Option(False, "--full", help="The seeds' sizes (long)."),
        model: str = typer.Option("smollm2-135m", "--model", help="Model to study (its random twin is the null)."),
        only: str = typer.Option(None, "--only", help="Comma-separated step names to run."),
        redo: str = typer.Option(None, "--redo", help="Comma-separated step names to run again, or 'all'."),
        list_steps: bool = typer.Option(False, "--list", help="List the steps and their expected times, run none."),
    ) -> None:
        """Run every probe on the embedded model and its random twin; write OUT/index.html (one page, offline)."""
        if quick and full:
            raise ModscopeError("--quick and --full exclude each other; pass one of them (or neither for default)")
        size = "quick" if quick else "full" if full else "default"
        if list_steps:
            for step in all_steps():
                console.print(f"{step.name:16s} ~{duration(estimate(step.name, size))}  {escape(step.title)}",
                              soft_wrap=True)  # one line per step, however narrow the terminal
            return
        record = run_demo(out, size=size, model=model, only=parse_csv(only) or None, redo=parse_csv(redo) or None)
        console.print(f"report: [bold]{out / 'index.html'}[/bold] (open it in a browser; it works offline)")
        failed = [s["name"] for s in record["steps"] if s["status"] == "failed"]
        if failed:
            console.print(f"[red]{len(failed)} step(s) failed[/red]: {', '.join(failed)} (see {out}/<step>/error.txt; "
                          "re-run the same command to retry only those)")
            raise typer.Exit(1)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (worker pools), all threads."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
