"""``modscope demo``: runs every step into its own directory, resumes, survives a failing probe, one report."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from modscope.cli import app
from modscope.commands.common import DemoStep
from modscope.commands.demo import run_demo
from modscope.errors import ModscopeError
from modscope.figures import axes
from modscope.report import write_probe


def terminal() -> Console:
    """A console that believes it is a terminal (so rich would draw live displays), writing into a buffer."""
    return Console(file=io.StringIO(), force_terminal=True, width=120)


def probe_step(name: str, calls: list[str], *, fail: bool = False, own_progress: bool = False) -> DemoStep:
    def run(ctx, out):
        calls.append(name)
        if own_progress:  # probes draw their own bars (capture does, on its own console)
            with Progress(console=Console(stderr=True, force_terminal=True)) as bar:
                task = bar.add_task("inner", total=3)
                for _ in range(3):
                    bar.advance(task)
        if fail:
            raise RuntimeError(f"{name} broke")
        ax = axes(figsize=(2, 2))
        ax.plot([1.0, 2.0, 3.0])
        write_probe(out, probe=name, title=f"probe {name}", question=f"does {name} work?", result={"size": ctx.size},
                    headline=[f"{name}: 1.5 nats (null 0.1 ± 0.2)"], verdict=f"{name} works",
                    figures={"curve": ax.figure})

    return DemoStep(name, f"the {name} probe", run)


def steps(calls, *, fail_b: bool = True) -> list[DemoStep]:
    return [probe_step("a", calls, own_progress=True), probe_step("b", calls, fail=fail_b), probe_step("c", calls)]


def test_demo_runs_every_step_records_times_and_writes_one_report(tmp_path):
    calls, display = [], terminal()
    record = run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps(calls), display=display)
    assert calls == ["a", "b", "c"]
    assert [(s["name"], s["status"]) for s in record["steps"]] == [("a", "done"), ("b", "failed"), ("c", "done")]
    assert record["steps"][1]["error"] == "RuntimeError: b broke"
    assert "RuntimeError: b broke" in (tmp_path / "b" / "error.txt").read_text()
    assert json.loads((tmp_path / "run.json").read_text())["steps"] == record["steps"]
    assert all(s["seconds"] >= 0 for s in record["steps"])
    page = (tmp_path / "index.html").read_text()
    assert page.count("<section class='probe") == 3 and "failed: RuntimeError: b broke" in page
    assert json.loads((tmp_path / "a" / "result.json").read_text())["result"] == {"size": "quick"}


def test_one_rich_progress_shows_steps_done_elapsed_eta_and_each_steps_times(tmp_path):
    display = terminal()
    record = run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps([]), display=display)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", display.file.getvalue())  # the terminal's colour codes
    assert "3/3 steps" in text and "all steps finished" in text
    assert all(f"the {name} probe ({name})" in text for name in "abc")  # each running step is shown
    assert "0/3 steps" in text or "1/3 steps" in text  # the live bar was drawn before the end
    for entry in record["steps"]:  # each step's wall and CPU seconds, printed and recorded
        assert entry["cpu_seconds"] >= 0 and f"{entry['name']}: {entry['status']} in" in text
    assert "[####" not in text  # no hand-drawn ASCII bar any more


def test_progress_in_a_log_file_is_one_plain_line_per_step(tmp_path):
    log = Console(file=io.StringIO(), width=200)
    run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps([], fail_b=False), display=log)
    lines = log.file.getvalue().splitlines()
    starts = [line for line in lines if line.startswith("[")]
    assert [line.split(" ·")[0] for line in starts] == ["[1/3] the a probe (a)", "[2/3] the b probe (b)",
                                                        "[3/3] the c probe (c)"]
    assert all("ETA" in line for line in starts) and "\x1b" not in log.file.getvalue()
    assert "3/3 steps" in lines[-1]  # rich prints the finished bar once at the end


def test_rerun_resumes_keeping_finished_steps_and_retrying_failed_ones(tmp_path):
    run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps([]), display=terminal())
    calls = []
    record = run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps(calls, fail_b=False), display=terminal())
    assert calls == ["b"]
    assert [s["status"] for s in record["steps"]] == ["kept", "done", "kept"]
    assert not (tmp_path / "b" / "error.txt").exists()
    calls.clear()
    run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps(calls), redo=["c"], display=terminal())
    assert calls == ["c"]


def test_interrupted_step_is_left_pending_and_the_report_still_written(tmp_path):
    def interrupt(ctx, out):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path, size="quick", model="tiny-gpt2", display=terminal(),
                 steps=[probe_step("a", []), DemoStep("b", "interrupted", interrupt), probe_step("c", [])])
    run = json.loads((tmp_path / "run.json").read_text())
    assert [s["status"] for s in run["steps"]] == ["done", "pending", "pending"]
    assert "not run yet" in (tmp_path / "index.html").read_text()


def test_resuming_with_another_size_or_unknown_steps_is_refused(tmp_path):
    run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=steps([]), display=terminal())
    with pytest.raises(ModscopeError, match="quick run of tiny-gpt2"):
        run_demo(tmp_path, size="default", model="tiny-gpt2", steps=steps([]), display=terminal())
    with pytest.raises(ModscopeError, match="unknown demo step.*the steps are: a, b, c"):
        run_demo(tmp_path, size="quick", model="tiny-gpt2", only=["zzz"], steps=steps([]), display=terminal())


def test_the_loss_step_runs_on_a_tiny_model(tmp_path):
    record = run_demo(tmp_path, size="quick", model="tiny-gpt2", only=["loss"], display=terminal())
    assert record["steps"][0]["status"] == "done", record["steps"][0]["error"]
    payload = json.loads((tmp_path / "loss" / "result.json").read_text())
    assert payload["probe"] == "loss" and payload["figures"]
    assert "loss" in (tmp_path / "index.html").read_text()


def test_cli_rejects_quick_with_full_and_lists_steps():
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--quick", "--full"])
    assert isinstance(result.exception, ModscopeError)
    listed = runner.invoke(app, ["demo", "--list", "--quick"])
    assert listed.exit_code == 0 and "loss" in listed.output


def test_a_step_that_died_after_writing_some_results_is_redone(tmp_path):
    def partial(ctx, out):  # e.g. killed by the OS after its first of two result directories
        write_probe(out / "first", probe="first", title="first half", question="q?", result={})
        raise RuntimeError("killed")

    run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=[DemoStep("two", "two results", partial)],
             display=terminal())
    (tmp_path / "run.json").unlink()  # the run record need not survive (a kill, or another run into the same dir)
    calls = []
    record = run_demo(tmp_path, size="quick", model="tiny-gpt2", steps=[probe_step("two", calls)], display=terminal())
    assert calls == ["two"] and record["steps"][0]["status"] == "done"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork and SIGKILL")
def test_a_demo_sigkilled_inside_a_step_redoes_that_step_and_its_lock_dies_with_it(tmp_path):
    import multiprocessing
    import os
    import signal

    def killed(ctx, out):  # part of the step's results, then the process is killed (no exception, no cleanup)
        write_probe(out / "first", probe="first", title="first half", question="q?", result={})
        os.kill(os.getpid(), signal.SIGKILL)

    child = multiprocessing.get_context("fork").Process(target=run_demo, args=(tmp_path,), kwargs=dict(
        size="quick", model="tiny-gpt2", steps=[probe_step("a", []), DemoStep("two", "killed", killed)],
        display=terminal()))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    calls = []
    record = run_demo(tmp_path, size="quick", model="tiny-gpt2",
                      steps=[probe_step("a", calls), probe_step("two", calls)], display=terminal())
    assert calls == ["two"] and [s["status"] for s in record["steps"]] == ["kept", "done"]
