"""Write a probe's output directory (result.json, PNG figures, a self-contained HTML page) and the run index."""

from __future__ import annotations

import base64
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from modscope.figures import png
from modscope.paths import write_json_atomic
from modscope.report.numbers import Number, duration, fmt
from modscope.results import jsonable

RESULT_FILE = "result.json"
ENV = jinja2.Environment(loader=jinja2.PackageLoader("modscope", "report/templates"),
                         autoescape=jinja2.select_autoescape(), trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(json=json.dumps, fmt=fmt, duration=duration)


def versions() -> dict[str, str]:
    import numpy
    import torch
    import transformers

    from modscope import __version__

    return {"modscope": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__}


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
    pngs = {name: png(fig) for name, fig in (figures or {}).items()}
    for name, data in pngs.items():
        (out / f"{name}.png").write_bytes(data)
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
    page = ENV.get_template("probe.html").render(
        title=title, question=question, verdict=verdict, headline=sentences, settings=payload["settings"],
        versions=payload["versions"], figures=[(name, base64.b64encode(data).decode()) for name, data in pngs.items()],
        # escape=True: cells may hold user text (document contexts, category folder names)
        tables=[(name, Markup(df.to_html(index=False, float_format="{:.4g}".format, border=0, escape=True)))
                for name, df in (tables or {}).items()])
    (out / "index.html").write_text(page)
    return out


def _with_rows(verdict: str, rows: Any) -> str:
    """The verdict followed by what its rows are (once), when the probe ran on captured rows."""
    from modscope.capture.sampling import rows_note

    note = rows_note(rows) if isinstance(rows, Mapping) else ""
    if not note or rows["sentence"] in verdict:
        return verdict
    return f"{verdict} {note}" if verdict else note
