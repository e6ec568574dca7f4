"""The run report built from a fixture run: every section, every image decodes, every number shown is the JSON's."""

from __future__ import annotations

import base64
import html
import io
import json
import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from modscope.figures import axes, log_if_decades, spans_decades
from modscope.report import Number, build_index, write_probe
from modscope.report.numbers import fmt

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
PROBES = ("loss", "mi", "spectrum")


def sections(page: str) -> dict[str, str]:
    """data-probe -> the section's HTML, in page order."""
    return dict(re.findall(r"<section class='probe[^']*' id='[^']+' data-probe='([^']+)'>(.*?)</section>", page, re.S))


def texts(fragment: str, pattern: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", t)) for t in re.findall(pattern, fragment, re.S)]


@pytest.fixture(scope="module")
def page(fixture_run) -> str:
    return (fixture_run / "index.html").read_text()


def test_report_has_a_section_per_step_in_run_order_and_nav_links_to_each(page):
    found = sections(page)
    assert list(found) == ["loss", "mi", "spectrum", "jacobian", "sae"]
    for sid in re.findall(r"<section class='probe[^']*' id='([^']+)'", page):
        assert f'href="#{sid}"' in page
    assert "href='#run'" in page and "id='run'" in page and "id='glance'" in page


def test_every_probe_section_shows_question_verdict_and_its_key_figure(fixture_run, page):
    found = sections(page)
    for probe in PROBES:
        payload = json.loads((fixture_run / probe / "result.json").read_text())
        section = found[probe]
        assert texts(section, r"<p class='question'>(.*?)</p>") == [payload["question"]]
        images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", section)
        assert len(images) == 1  # the key figure only; the others are on the probe's page
        assert base64.b64decode(images[0]) == (fixture_run / probe / payload["figures"][0]).read_bytes()


def test_every_embedded_image_decodes_to_a_picture(page):
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == len(PROBES)
    for b64 in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 50 and pixels.std() > 0


def test_every_number_shown_equals_the_json(fixture_run, page):
    found = sections(page)
    for probe in PROBES:
        payload = json.loads((fixture_run / probe / "result.json").read_text())
        section = found[probe]
        assert texts(section, r"<p class='verdict'>(.*?)</p>") == [payload["verdict"]]
        assert texts(section, r"<li>(.*?)</li>") == payload["headline"]
        cells = re.findall(r"<td data-key='(\w+)' data-value='([^']*)'>([^<]*)</td>", section)
        assert len(cells) == 4 * len(payload["numbers"])
        for (key, value, shown), number in zip(cells, [n for n in payload["numbers"] for _ in range(4)]):
            assert json.loads(html.unescape(value)) == number[key]
            assert shown == fmt(number[key], 2 if key == "z" else number["digits"])
        # every number in the section's prose is one the JSON states
        prose = re.sub(r"<table class='numbers'>.*?</table>|<details>.*?</details>|<small>.*?</small>", "", section,
                       flags=re.S)
        stated = NUMBER.findall(" ".join([payload["title"], payload["question"], payload["verdict"],
                                          *payload["headline"], *payload["figures"]]))
        for token in NUMBER.findall(html.unescape(re.sub(r"<[^>]+>|data:image[^'\"]+", " ", prose))):
            assert token in stated, (probe, token)


def test_numbers_table_states_value_null_and_distance_in_null_sd(fixture_run):
    numbers = json.loads((fixture_run / "mi" / "result.json").read_text())["numbers"]
    assert numbers[0]["z"] == pytest.approx((4.1 - 0.012) / 0.1)
    assert numbers[1]["z"] == pytest.approx(0.4837 / 0.021)


def test_failed_and_unfinished_steps_say_so(page):
    found = sections(page)
    assert "failed: RuntimeError: out of memory" in found["jacobian"] and "jacobian/error.txt" in found["jacobian"]
    assert "not run yet" in found["sae"]
    assert "2 failed" not in page and "1 failed" in page


def test_links_resolve_to_each_probes_page_and_json(fixture_run, page):
    links = [h for h in re.findall(r"href='([^'#][^']*)'", page)]
    assert {f"{p}/{f}" for p in PROBES for f in ("index.html", "result.json")} <= set(links)
    for link in links:
        assert (fixture_run / link).is_file(), link


def test_page_is_self_contained(page):
    assert not re.search(r"https?://|<link|<script|src=['\"](?!data:)", page)


def test_run_settings_step_times_and_versions_are_shown(page):
    run = page[page.index("id='run'"):]
    for text in ("tiny-gpt2", "random:tiny-gpt2", "quick", "1 min 20 s", "torch", "transformers", "numpy"):
        assert text in run


def test_index_without_a_run_record_lists_results_by_path(tmp_path):
    for name in ("b", "a"):
        ax = axes(figsize=(2, 2))
        ax.plot([1, 2])
        write_probe(tmp_path / name, probe=name, title=f"probe {name}", question="q?", result={"x": [1.0]},
                    headline=[f"headline {name}"], figures={"f": ax.figure})
    page = build_index(tmp_path).read_text()
    assert list(sections(page)) == ["a", "b"] and "headline b" in page


def test_number_sentence_states_value_null_and_distance():
    assert Number("MI", 4.1, "nats", null=0.01, null_sd=0.1, null_name="independence").sentence() == \
        "MI: 4.1 nats (independence 0.01 ± 0.1; 41 sd above)"
    assert Number("loss", 3.0, "nats/token").sentence() == "loss: 3 nats/token"
    assert Number("r", 0.5, null=1.0, null_sd=0.25).sentence() == "r: 0.5 (null 1 ± 0.25; 2 sd below)"
    assert Number("r", 0.5, null=1.0, null_sd=0.0).z is None


def test_log_scale_only_when_values_span_decades():
    assert spans_decades([1e-3, 1.0]) and not spans_decades([1.0, 50.0]) and not spans_decades([0.0, 5.0])
    ax = axes()
    assert log_if_decades(ax, np.logspace(-4, 0, 5)) and ax.get_yscale() == "log"
    assert not log_if_decades(ax, [1, 2, 3], axis="x") and ax.get_xscale() == "linear"
