"""Write a probe's output directory (result.json, PNG figures, a self-contained HTML page) and the run index."""

from __future__ import annotations

import base64
import html
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from modscope.paths import write_json_atomic
from modscope.report.numbers import Number
from modscope.results import jsonable

RESULT_FILE = "result.json"
CSS = """
:root{--trained:#1f5fa8;--twin:#d9822b;--null:#9a9a9a;--ink:#1d2329;--muted:#66707a;--line:#e3e6ea;--bg:#fafbfc}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:var(--ink);line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid var(--line);padding-bottom:.2em}
.question{color:#4a5560;font-style:italic}
.verdict{background:#f3f6fb;border-left:4px solid var(--trained);padding:.5em .8em;font-weight:500}
img{max-width:100%;height:auto;border:1px solid #eee}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}nav a{margin-right:1em}code{background:#f4f4f4}
.meta{color:var(--muted);font-size:.85em}
"""


def versions() -> dict[str, str]:
    import numpy
    import torch
    import transformers

    from modscope import __version__

    return {"modscope": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__}


def figure_png(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table_html(df: pd.DataFrame, *, floatfmt: str = "{:.4g}") -> str:
    # escape=True: cells may hold user text (document contexts, category folder names)
    return df.to_html(index=False, float_format=lambda x: floatfmt.format(x), border=0, escape=True)


def write_probe(
    out: str | Path,
    *,
    probe: str,
    title: str,
    question: str,
    result: Any,
    headline: Sequence[str | Number] = (),
    verdict: str = "",
    figures: Mapping[str, Any] | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``result.json``, one PNG per figure and a self-contained ``index.html`` into ``out``.

    Args:
        probe: short machine name (``mi``, ``spectrum``, ``jacobian``...), used by the run index.
        title: page title. question: the question the probe answers, in one sentence.
        result: a Result (or anything ``jsonable``) stored under ``"result"`` in the JSON.
        headline: the key numbers as sentences (each with its null) or as ``Number``s (value, unit, null, null sd;
            stored as sentences under ``"headline"`` and as fields under ``"numbers"``, shown as a table by the
            run report). verdict: one line written from the numbers.
        figures: name -> matplotlib Figure; the first is the key figure of the run index.
        tables: name -> DataFrame shown on the page. settings: the arguments of the run; ``settings["rows"]``
            (``ActivationStore.rows_description()``) says what the rows are, and the verdict ends with its sentence.

    Returns:
        The output directory.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = {name: figure_png(fig) for name, fig in (figures or {}).items()}
    for name, png in pngs.items():
        (out / f"{name}.png").write_bytes(png)
    sentences = [h.sentence() if isinstance(h, Number) else str(h) for h in headline]
    verdict = _with_rows(verdict, (settings or {}).get("rows"))
    payload = {
        "probe": probe, "title": title, "question": question, "headline": sentences, "verdict": verdict,
        "numbers": [h.to_json() for h in headline if isinstance(h, Number)],
        "figures": [f"{name}.png" for name in pngs], "settings": jsonable(dict(settings or {})),
        "versions": versions(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "result": result.to_json() if hasattr(result, "to_json") else jsonable(result),
    }
    write_json_atomic(out / RESULT_FILE, payload)
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="question">{html.escape(question)}</p>']
    if verdict:
        body.append(f'<p class="verdict">{html.escape(verdict)}</p>')
    if sentences:
        body.append("<ul>" + "".join(f"<li>{html.escape(h)}</li>" for h in sentences) + "</ul>")
    body += [f"<h3>{html.escape(name)}</h3>{img_tag(png, name)}" for name, png in pngs.items()]
    body += [f"<h3>{html.escape(name)}</h3>{table_html(df)}" for name, df in (tables or {}).items()]
    body.append(f'<p class="meta">settings: <code>{html.escape(json.dumps(payload["settings"]))}</code><br>'
                f'versions: {html.escape(json.dumps(payload["versions"]))} · '
                f'<a href="{RESULT_FILE}">result.json</a></p>')
    (out / "index.html").write_text(page(title, "\n".join(body)))
    return out


def _with_rows(verdict: str, rows: Any) -> str:
    """The verdict followed by what its rows are (once), when the probe ran on captured rows."""
    from modscope.capture.sampling import rows_note

    note = rows_note(rows) if isinstance(rows, Mapping) else ""
    if not note or rows["sentence"] in verdict:
        return verdict
    return f"{verdict} {note}" if verdict else note


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")
