"""Figures are drawn on Figure objects: importing modscope and plotting a result changes no global matplotlib state."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys
import matplotlib
matplotlib.use("pdf")  # the user's own backend choice, made before modscope is imported
before = dict(matplotlib.rcParams)
import numpy as np
import modscope, modscope.report
from matplotlib.figure import Figure
from modscope.geometry import separation, similarity
H = np.random.default_rng(0).normal(size=(12, 6))
ax = separation(similarity(H), ["a"] * 6 + ["b"] * 6, n_permutations=20).plot()
assert isinstance(ax.figure, Figure) and ax.has_data()
modscope.report.write_probe(sys.argv[1], probe="t", title="t", question="q?", result={"x": 1},
                            figures={"f": ax.figure})
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert matplotlib.get_backend() == "pdf", matplotlib.get_backend()
changed = {k for k, v in matplotlib.rcParams.items() if str(before[k]) != str(v)}
assert not changed, changed
print("ok")
"""


def test_plotting_a_result_leaves_backend_and_rcparams_alone_and_never_imports_pyplot(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "probe")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert (tmp_path / "probe" / "f.png").read_bytes().startswith(b"\x89PNG")
