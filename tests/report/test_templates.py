"""Pages come from jinja2 templates with autoescape: planted markup in any field of a run record is shown as text."""

from __future__ import annotations

import json

from modscope.report import RUN_FILE, build_index
from modscope.report.page import ENV

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG = "<img src=x onerror=alert(1)>"


def test_every_html_template_is_autoescaped():
    names = ENV.list_templates(extensions=["html"])
    assert {"probe.html", "index.html"} <= set(names)
    assert all(ENV.autoescape(name) for name in names)


def test_markup_planted_in_the_run_record_is_escaped_in_the_run_index(tmp_path):
    step = {"name": "jacobian", "title": SCRIPT, "status": "failed", "seconds": 1.0, "error": f"boom\n{SCRIPT}"}
    (tmp_path / RUN_FILE).write_text(json.dumps({
        "title": f"run {SCRIPT}", "model": IMG, "twin": SCRIPT, "size": "quick", "steps": [step],
        "settings": {"corpus": SCRIPT}, "versions": {"torch": IMG}}))
    page = build_index(tmp_path).read_text()
    assert "<script" not in page and "<img" not in page
    # title, sub-line, nav, glance, section heading, verdict, error, twin and corpus settings
    assert page.count(ESCAPED) >= 9
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
