"""The run report: one self-contained ``index.html`` over every probe directory of a run (figures embedded)."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from modscope.report.numbers import fmt
from modscope.report.page import CSS, RESULT_FILE, img_tag, versions

RUN_FILE = "run.json"  # written by ``modscope demo``: settings, versions and each step's status and time
INDEX_CSS = """
body{max-width:1320px;display:grid;grid-template-columns:230px minmax(0,1fr);gap:2em;margin-top:0}
nav.toc{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding:1.2em 0;font-size:.88em}
nav.toc a{display:block;margin:.15em 0;color:var(--ink);text-decoration:none;padding:.1em .4em;border-radius:4px}
nav.toc a:hover{background:#eef2f7}nav.toc .status{font-size:.8em;color:var(--muted)}
nav.toc .failed{color:#b3261e}main{padding-top:1em;min-width:0}
header .sub{color:var(--muted)}.legend span{display:inline-block;margin-right:1.2em}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-.1em;margin-right:.3em}
section.probe{border:1px solid var(--line);border-radius:8px;padding:.2em 1.2em 1em;margin:1.5em 0;background:#fff}
section.probe h2{border:0;margin-top:.6em}section.probe h2 small{font-weight:normal;color:var(--muted);font-size:.6em}
section.failed{border-color:#e8b4b0;background:#fff8f7}section.failed .verdict{border-color:#b3261e;background:#fdecea}
section.pending{opacity:.7}.figure{text-align:center;margin:.8em 0}.figure img{max-height:560px}
ul.headline li{margin:.15em 0}table.numbers td:first-child,table.numbers td:nth-child(4),table.glance td,
table.glance th,table.kv th{text-align:left}
table.glance{width:100%}table.glance td:first-child{white-space:nowrap}table.kv td:first-child{text-align:left}
details{margin:.4em 0}summary{cursor:pointer;color:var(--muted)}pre{white-space:pre-wrap;font-size:.8em}
.links a{margin-right:1em}
"""


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


def section_id(rel: str) -> str:
    return "p-" + re.sub(r"[^A-Za-z0-9_-]+", "-", rel).strip("-")


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

    toc, glance, sections = [], [], []
    for rel, result, step in entries:
        sid = section_id(rel)
        name = result["title"] if result else step.get("title", rel)
        status = "done" if result else step.get("status", "pending")
        cls = "" if result else (" class='failed'" if status == "failed" else "")
        toc.append(f'<a href="#{sid}"{cls}>{html.escape(name)}'
                   + ("" if result else f' <span class="status">({html.escape(status)})</span>') + "</a>")
        verdict = result.get("verdict", "") if result else _not_done_line(step)
        glance.append(f'<tr><td><a href="#{sid}">{html.escape(name)}</a></td><td>{html.escape(verdict)}</td></tr>')
        sections.append(probe_section(root, rel, sid, result) if result else missing_section(rel, sid, step))

    header = (f"<header><h1>{html.escape(title)}</h1><p class='sub'>{html.escape(_run_line(run, len(entries)))}</p>"
              "<p class='legend'><span><i class='swatch' style='background:var(--trained)'></i>trained model</span>"
              "<span><i class='swatch' style='background:var(--twin)'></i>random-init twin</span>"
              "<span><i class='swatch' style='background:var(--null)'></i>null / reference</span></p></header>")
    at_glance = ("<section id='glance'><h2>At a glance</h2><table class='glance'><tr><th>probe</th><th>verdict</th>"
                 f"</tr>{''.join(glance)}</table></section>") if entries else "<p>No results yet.</p>"
    nav = ("<nav class='toc'><strong>Contents</strong><a href='#glance'>At a glance</a>" + "".join(toc)
           + "<a href='#run'>Run settings and versions</a></nav>")
    main = f"<main>{header}{at_glance}{''.join(sections)}{run_section(run, results_versions(root, entries))}</main>"
    out = root / "index.html"
    out.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                   f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{html.escape(title)}"
                   f"</title><style>{CSS}{INDEX_CSS}</style></head><body>{nav}{main}</body></html>")
    return out


def probe_section(root: Path, rel: str, sid: str, r: dict) -> str:
    """One probe: question, verdict, key figure, headline (with the numbers table when given), links, settings."""
    figures = r.get("figures") or []
    key = root / rel / figures[0] if figures else None
    if key is not None and key.exists():
        alt = f"{r.get('title', rel)}: {figures[0]}"
        figure = f"<div class='figure'>{img_tag(key.read_bytes(), alt)}</div>"
    else:
        figure = "<p class='meta'>(no figure)</p>"
    heads = "".join(f"<li>{html.escape(h)}</li>" for h in r.get("headline", []))
    numbers = numbers_table(r.get("numbers") or [])
    extra = f"more figures on its page: {', '.join(f.removesuffix('.png') for f in figures[1:])}" if figures[1:] else ""
    settings = json.dumps(r.get("settings", {}), indent=1)
    return (f"<section class='probe' id='{sid}' data-probe='{html.escape(rel)}'>"
            f"<h2>{html.escape(r['title'])} <small>{html.escape(r.get('probe', ''))}</small></h2>"
            f"<p class='question'>{html.escape(r.get('question', ''))}</p>"
            f"<p class='verdict'>{html.escape(r.get('verdict', ''))}</p>{figure}"
            f"<ul class='headline'>{heads}</ul>{numbers}"
            f"<p class='links'><a href='{html.escape(rel)}/index.html'>full page</a>"
            f"<a href='{html.escape(rel)}/{RESULT_FILE}'>JSON</a><span class='meta'>{html.escape(extra)}</span></p>"
            f"<details><summary>settings of this probe</summary><pre>{html.escape(settings)}</pre></details>"
            "</section>")


def numbers_table(numbers: list[dict]) -> str:
    """Headline numbers as a table: value, null mean, null sd and distance z in null sd (cells carry data-value)."""
    if not numbers:
        return ""
    rows = []
    for n in numbers:
        digits = n.get("digits", 3)

        def cell(key: str, d: int = digits, n: dict = n) -> str:
            value = html.escape(json.dumps(n.get(key)))
            return f"<td data-key='{key}' data-value='{value}'>{html.escape(fmt(n.get(key), d))}</td>"

        rows.append(f"<tr><td>{html.escape(n['label'])}</td>{cell('value')}<td>{html.escape(n.get('unit', ''))}</td>"
                    f"<td>{html.escape(n.get('null_name', 'null'))}</td>{cell('null')}{cell('null_sd')}"
                    f"{cell('z', 2)}</tr>")
    return ("<table class='numbers'><tr><th>quantity</th><th>value</th><th>unit</th><th>null</th><th>null mean</th>"
            f"<th>null sd</th><th>z (null sd)</th></tr>{''.join(rows)}</table>")


def missing_section(rel: str, sid: str, step: dict) -> str:
    """A demo step without a result: failed (with its error) or not run yet."""
    status = step.get("status", "pending")
    error = step.get("error") or ""
    detail = (f"<details open><summary>error</summary><pre>{html.escape(error)}</pre></details>"
              f"<p class='links'><a href='{html.escape(rel)}/error.txt'>traceback</a></p>") if error else ""
    return (f"<section class='probe {'failed' if status == 'failed' else 'pending'}' id='{sid}' "
            f"data-probe='{html.escape(rel)}'><h2>{html.escape(step.get('title', rel))} <small>{html.escape(rel)}"
            f"</small></h2><p class='verdict'>{html.escape(_not_done_line(step))}</p>{detail}</section>")


def results_versions(root: Path, entries: list[tuple[str, dict | None, dict]]) -> dict:
    """The versions stored with the results (the first probe's), else those of this process."""
    for _, r, _ in entries:
        if r and r.get("versions"):
            return r["versions"]
    return versions()


def run_section(run: dict, probe_versions: dict) -> str:
    """The run's settings, per-step status and time, and package versions."""
    settings = {"model": run.get("model"), "twin": run.get("twin"), "size": run.get("size"),
                "started": run.get("started"), "updated": run.get("updated"),
                "total time": _duration(run.get("seconds")), **(run.get("settings") or {})}
    settings = {k: v for k, v in settings.items() if v not in (None, "", {})}
    kv = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items())
    steps = "".join(f"<tr><td>{html.escape(s['name'])}</td><td>{html.escape(s.get('status', ''))}</td>"
                    f"<td>{_duration(s.get('seconds'))}</td></tr>" for s in run.get("steps", []))
    vers = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in (run.get("versions") or probe_versions).items())
    parts = ["<section id='run'><h2>Run settings and versions</h2>"]
    if kv:
        parts.append(f"<table class='kv'>{kv}</table>")
    if steps:
        parts.append(f"<table class='kv'><tr><th>step</th><th>status</th><th>time</th></tr>{steps}</table>")
    parts.append(f"<table class='kv'><tr><th>package</th><th>version</th></tr>{vers}</table>")
    parts.append(f"<p class='meta'>page written {datetime.now().astimezone().isoformat(timespec='seconds')}; "
                 "figures are embedded, the page works offline.</p></section>")
    return "".join(parts)


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
             f"{n} probes" + (f", {failed} failed" if failed else ""), f"total time {_duration(run.get('seconds'))}"]
    if run.get("updated"):
        parts.append(f"updated {run['updated']}")
    return " · ".join(parts)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
