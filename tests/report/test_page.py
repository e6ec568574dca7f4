"""Probe pages: JSON, decodable figures, numbers shown as stored."""

import json
from dataclasses import dataclass

import matplotlib.image as mpimg
import numpy as np

from modscope.report import Number, write_probe
from modscope.results import Result


@dataclass(frozen=True)
class Toy(Result):
    values: np.ndarray
    big: np.ndarray
    _json_exclude = ("big",)

    def plot(self, ax=None):
        from modscope.figures import axes

        ax = axes(ax, figsize=(3, 2))
        ax.plot(self.values)
        return ax


def test_probe_directory_holds_json_figures_and_page(tmp_path):
    res = Toy(np.array([1.5, np.nan, 3.0]), np.zeros((100, 100)))
    write_probe(tmp_path / "toy", probe="toy", title="Toy probe", question="Is it a toy?", result=res,
                headline=["value 1.5 (null 0.0 ± 0.1)"], verdict="yes", figures={"curve": res.plot().figure},
                settings={"n": 3})
    payload = json.loads((tmp_path / "toy" / "result.json").read_text())
    assert payload["result"] == {"values": [1.5, None, 3.0]}
    assert payload["settings"] == {"n": 3} and payload["figures"] == ["curve.png"] and payload["numbers"] == []
    assert mpimg.imread(tmp_path / "toy" / "curve.png").shape[2] in (3, 4)
    page = (tmp_path / "toy" / "index.html").read_text()
    assert "value 1.5 (null 0.0 ± 0.1)" in page and "data:image/png;base64," in page


def test_number_headlines_are_stored_as_sentences_and_fields(tmp_path):
    number = Number("MI", 2.0, "nats", null=0.5, null_sd=0.5)
    write_probe(tmp_path, probe="toy", title="t", question="q?", result={"x": 1}, headline=[number, "plain"])
    payload = json.loads((tmp_path / "result.json").read_text())
    assert payload["headline"] == [number.sentence(), "plain"]
    assert payload["numbers"] == [{"label": "MI", "value": 2.0, "unit": "nats", "null": 0.5, "null_sd": 0.5,
                                   "null_name": "null", "z": 3.0, "digits": 3}]
    assert number.sentence() in (tmp_path / "index.html").read_text()


def test_a_step_with_several_results_shows_each_and_is_not_pending(tmp_path):
    from modscope.report import build_index

    res = Toy(np.arange(3.0), np.zeros(1))
    for sub in ("blocks", "path"):
        write_probe(tmp_path / "jacobian" / sub, probe=sub, title=f"part {sub}", question="q?", result=res,
                    figures={"f": res.plot().figure})
    (tmp_path / "run.json").write_text(json.dumps({"steps": [{"name": "jacobian", "title": "J", "status": "done"}]}))
    index = build_index(tmp_path).read_text()
    assert "part blocks" in index and "part path" in index and "not run yet" not in index
