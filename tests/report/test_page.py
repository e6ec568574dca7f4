"""Probe pages and the run index: JSON, decodable figures, numbers shown as stored."""

import base64
import io
import json
import re
from dataclasses import dataclass

import matplotlib.image as mpimg
import numpy as np

from modscope.report import build_index, write_probe
from modscope.results import Result


@dataclass(frozen=True)
class Toy(Result):
    values: np.ndarray
    big: np.ndarray
    _json_exclude = ("big",)

    def plot(self, ax=None):
        from modscope.report.style import axes

        ax = axes(ax)
        ax.plot(self.values)
        return ax


def test_probe_directory_holds_json_figures_and_page(tmp_path):
    res = Toy(np.array([1.5, np.nan, 3.0]), np.zeros((100, 100)))
    write_probe(tmp_path / "toy", probe="toy", title="Toy probe", question="Is it a toy?", result=res,
                headline=["value 1.5 (null 0.0 ± 0.1)"], verdict="yes", figures={"curve": res.plot().figure},
                settings={"n": 3})
    payload = json.loads((tmp_path / "toy" / "result.json").read_text())
    assert payload["result"] == {"values": [1.5, None, 3.0]}
    assert payload["settings"] == {"n": 3} and payload["figures"] == ["curve.png"]
    assert mpimg.imread(tmp_path / "toy" / "curve.png").shape[2] in (3, 4)
    page = (tmp_path / "toy" / "index.html").read_text()
    assert "value 1.5 (null 0.0 ± 0.1)" in page and "data:image/png;base64," in page


def test_index_links_every_result_with_its_key_figure_embedded(tmp_path):
    for name in ("a", "b"):
        res = Toy(np.arange(3.0), np.zeros(1))
        write_probe(tmp_path / name, probe=name, title=f"probe {name}", question="q?", result=res,
                    headline=[f"headline {name}"], figures={"f": res.plot().figure})
    index = build_index(tmp_path).read_text()
    assert index.count("<section") == 2 and 'href="a/index.html"' in index and "headline b" in index
    for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", index):
        assert mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png").ndim == 3
