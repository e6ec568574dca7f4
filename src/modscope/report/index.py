"""The run report: one self-contained ``index.html`` over every probe directory of a run (figures embedded)."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from modscope.report.numbers import duration
from modscope.report.page import ENV, RESULT_FILE, versions

RUN_FILE = "run.json"  # written by ``modscope demo``: settings, versions and each step's status and time


def find_results(root: str | Path) -> list[tuple[Path, dict]]:
    """Every probe result under ``root`` (sorted by path), as (directory, parsed result.json)."""
    found = []
    for path in sorted(Path(root).rglob(RESULT_FILE)):
        try:
            found.append((path.parent, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return found


def read_run(root: str | Path) -> dict[str, Any]:
    """The run record ``root/run.json`` written by the demo, or {} when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(root) / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def build_index(root: str | Path, *, title: str | None = None) -> Path:
    """Write ``root/index.html``: one self-contained page with a section per probe under ``root``.

    Each section shows the probe's question, verdict, key figure (its first figure, embedded as base64), headline
    numbers with their nulls, and links to the probe's own page and JSON. Sections follow the step order of
    ``root/run.json`` when the demo wrote one (failed and not-yet-run steps get a section saying so); results not in
    it follow in path order. The run's settings, step times and package versions close the page.

    Returns:
        The path of the written page.
    """
    root = Path(root)
    run = read_run(root)
    results = {d: r for d, r in find_results(root) if d != root}
    entries: list[tuple[str, dict | None, dict]] = []  # (relative dir, result or None, step record)
    for step in run.get("steps", []):
        # a step may write one result into its directory or several into sub-directories (e.g. jacobian)
        step_dir = root / step["name"]
        mine = [d for d in results if d == step_dir or step_dir in d.parents]
        found = [(d.relative_to(root).as_posix(), results.pop(d), step) for d in mine]
        entries += found or [(step["name"], None, step)]
    entries += [(d.relative_to(root).as_posix(), r, {}) for d, r in results.items()]
    title = title or run.get("title") or "modscope report"

    sections = [_entry(root, rel, result, step) for rel, result, step in entries]
    settings = {"model": run.get("model"), "twin": run.get("twin"), "size": run.get("size"),
                "started": run.get("started"), "updated": run.get("updated"),
                "total time": duration(run.get("seconds")), **(run.get("settings") or {})}
    out = root / "index.html"
    out.write_text(ENV.get_template("index.html").render(
        title=title, run_line=_run_line(run, len(entries)), entries=sections, steps=run.get("steps", []),
        settings={k: v for k, v in settings.items() if v not in (None, "", {})},
        versions=run.get("versions") or results_versions(entries),
        written=datetime.now().astimezone().isoformat(timespec="seconds")))
    return out


def _entry(root: Path, rel: str, result: dict | None, step: dict) -> dict:
    """What the page shows of one probe (its result) or of one step without a result (failed or not run yet)."""
    entry = {"rel": rel, "sid": "p-" + re.sub(r"[^A-Za-z0-9_-]+", "-", rel).strip("-"), "result": result,
             "error": step.get("error") or ""}
    if result is None:
        return {**entry, "name": step.get("title", rel), "status": step.get("status", "pending"),
                "verdict": _not_done_line(step)}
    figures = result.get("figures") or []
    key = root / rel / figures[0] if figures else None
    return {**entry, "name": result["title"], "status": "done", "verdict": result.get("verdict", ""),
            "figure": base64.b64encode(key.read_bytes()).decode() if key is not None and key.exists() else None,
            "figure_alt": f"{result.get('title', rel)}: {figures[0]}" if figures else "",
            "more": [f.removesuffix(".png") for f in figures[1:]],
            "settings": json.dumps(result.get("settings", {}), indent=1)}


def results_versions(entries: list[tuple[str, dict | None, dict]]) -> dict:
    """The versions stored with the results (the first probe's), else those of this process."""
    return next((r["versions"] for _, r, _ in entries if r and r.get("versions")), None) or versions()


def _not_done_line(step: dict) -> str:
    if step.get("status") == "failed":
        return f"failed: {(step.get('error') or '').strip().splitlines()[-1] if step.get('error') else 'error'}"
    if step.get("status") == "running":
        return "running now (if the demo was stopped, re-run it to resume)"
    return "not run yet (re-run the demo to resume)"


def _run_line(run: dict, n: int) -> str:
    if not run:
        return f"{n} probe result(s)"
    failed = sum(s.get("status") == "failed" for s in run.get("steps", []))
    parts = [f"{run.get('model', '?')} vs {run.get('twin', 'its random-init twin')}", f"{run.get('size')} size",
             f"{n} probes" + (f", {failed} failed" if failed else ""), f"total time {duration(run.get('seconds'))}"]
    if run.get("updated"):
        parts.append(f"updated {run['updated']}")
    return " · ".join(parts)
