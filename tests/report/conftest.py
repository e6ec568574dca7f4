"""A small fixture run: three probe directories written with write_probe (fake results) plus a demo run record."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from modscope.figures import TRAINED, TWIN, axes, label
from modscope.paths import write_json_atomic
from modscope.report import RUN_FILE, Number, build_index, write_probe
from modscope.results import Result


@dataclass(frozen=True)
class Curve(Result):
    """A fake probe result: one curve per model over layers."""

    trained: np.ndarray
    twin: np.ndarray

    def plot(self, ax=None):
        ax = axes(ax, figsize=(3, 2))
        ax.plot(self.trained, color=TRAINED, label="trained")
        ax.plot(self.twin, color=TWIN, label="random twin")
        label(ax, x="layer", y="MI", y_unit="nats")
        ax.legend()
        return ax


def make_run(root, *, failed_step: bool = True):
    """Write probes ``mi`` (Number headlines), ``spectrum`` (two figures), ``loss`` (plain sentences) and the index."""
    rng = np.random.default_rng(0)
    mi = Curve(np.linspace(4.1, 0.5, 6), rng.normal(0.01, 0.003, 6))
    write_probe(root / "mi", probe="mi", title="Gaussian MI: trained vs twin", result=mi,
                question="How much information does each layer share with the twin's?",
                headline=[Number("MI at layer 0", 4.1, "nats", null=0.012, null_sd=0.1, null_name="independence"),
                          Number("corrected MI at layer 5", 0.4837, "nats", null=0.0, null_sd=0.021),
                          "it stays above the null as n grows (3 sizes)"],
                verdict="MI at layer 0 is 4.1 nats, 41 null sd above independence",
                figures={"mi_by_layer": mi.plot().figure}, settings={"tokens": 2048, "layers": [0, 5]})
    spec = Curve(np.logspace(2, -2, 6), np.logspace(0, -1, 6))
    write_probe(root / "spectrum", probe="spectrum", title="Covariance spectra", result=spec,
                question="Is the trained model's covariance spectrum further from Marchenko-Pastur than the twin's?",
                headline=["trained: participation ratio 12.5 of 64 (twin 41.2, shuffle null 60.3 ± 1.1)"],
                verdict="participation ratio 12.5 vs 41.2 for the twin: the trained spectrum is 3.3x more concentrated",
                figures={"spectra": spec.plot().figure, "blocks": spec.plot().figure},
                settings={"site": "resid_post.3"})
    loss = Curve(np.array([3.2, 3.1]), np.array([10.9, 10.8]))
    write_probe(root / "loss", probe="loss", title="Does the model know the text?", result=loss,
                question="How well does the trained model predict the corpus, next to its random-init twin?",
                headline=["trained: 3.15 nats/token", "twin: 10.85 nats/token", "uniform prediction: 10.8 nats/token"],
                verdict="the trained model is 7.7 nats/token better than its twin (3.15 vs 10.85; uniform 10.8)",
                figures={"loss_by_category": loss.plot().figure})
    steps = [{"name": n, "title": t, "status": "done", "seconds": s, "error": None}
             for n, t, s in (("loss", "loss", 3.0), ("mi", "MI", 12.5), ("spectrum", "spectra", 64.0))]
    if failed_step:
        steps.append({"name": "jacobian", "title": "Jacobian spectrum", "status": "failed", "seconds": 0.4,
                      "error": "RuntimeError: out of memory"})
        steps.append({"name": "sae", "title": "Sparse autoencoder", "status": "pending", "seconds": None,
                      "error": None})
        (root / "jacobian").mkdir(exist_ok=True)
        (root / "jacobian" / "error.txt").write_text("Traceback ...\nRuntimeError: out of memory\n")
    write_json_atomic(root / RUN_FILE, {"title": "fixture run", "model": "tiny-gpt2", "twin": "random:tiny-gpt2",
                                        "size": "quick", "started": "2025-01-01T00:00:00+00:00", "seconds": 79.9,
                                        "settings": {"model": "tiny-gpt2", "size": "quick"}, "steps": steps})
    return build_index(root)


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory):
    """The fixture run's directory (index.html already built)."""
    root = tmp_path_factory.mktemp("run")
    make_run(root)
    return root
