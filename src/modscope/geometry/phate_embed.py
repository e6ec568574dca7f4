"""PHATE embeddings of hidden states by category (Moon et al. 2019), next to PCA; needs the optional ``phate``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import CATEGORY_CMAP, axes, grid
from modscope.results import Result

EMBEDDINGS = ("pca", "phate")


def require_phate():
    """The ``phate`` module, or a one-line error saying how to install it."""
    try:
        import phate
    except ImportError:
        raise ModscopeError("--embed phate needs the optional 'phate' package: pip install 'modscope[phate]' "
                            "(or pip install phate), or use --embed pca") from None
    return phate


def parse_embed(value: str) -> list[str]:
    """``"pca"``, ``"phate"`` or ``"pca,phate"`` -> the list; PHATE is checked to be importable up front."""
    chosen = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in EMBEDDINGS]
    if unknown or not chosen:
        raise ModscopeError(f"--embed must be among {', '.join(EMBEDDINGS)} (comma-separated), got '{value}'")
    if "phate" in chosen:
        require_phate()
    return chosen


@dataclass(frozen=True)
class PhateResult(Result):
    """2-D PHATE coordinates of one site's states (diffusion-potential distances, Moon et al. 2019, sec. 2).

    Fields: site, model, coordinates [n, 2] (unitless), labels (category per row), knn, decay, t (PHATE settings;
    t = diffusion time, chosen by PHATE's von Neumann entropy knee when "auto").
    """

    site: str
    model: str
    coordinates: np.ndarray = field(repr=False)
    labels: list = field(repr=False)
    knn: int = 5
    decay: int = 40
    t: str | int = "auto"

    _json_exclude = ("coordinates",)

    def plot(self, ax=None):
        ax = axes(ax)
        labels = np.asarray(self.labels)
        cmap = __import__("matplotlib").colormaps[CATEGORY_CMAP]
        for index, name in enumerate(dict.fromkeys(self.labels)):
            part = self.coordinates[labels == name]
            ax.scatter(part[:, 0], part[:, 1], s=5, color=cmap(index % 10), label=str(name)[:12])
        ax.set_title(f"{self.model} {self.site}", fontsize=7)
        ax.set_xlabel("PHATE 1")
        ax.set_ylabel("PHATE 2")
        return ax


def phate_embedding(states: np.ndarray, labels: Sequence, *, site: str = "site", model: str = "",
                    knn: int = 5, decay: int = 40, t: str | int = "auto", seed: int = 0) -> PhateResult:
    """PHATE of ``states`` [n, d] into 2 dimensions (the ``phate`` package, its defaults but a fixed seed)."""
    phate = require_phate()
    x = np.asarray(states, dtype=np.float64)
    if x.ndim != 2 or len(x) <= knn:
        raise ModscopeError(f"{site}: PHATE needs more rows than --knn {knn}, got shape {x.shape}")
    operator = phate.PHATE(n_components=2, knn=knn, decay=decay, t=t, random_state=seed, verbose=0, n_jobs=1)
    return PhateResult(site=site, model=model, coordinates=np.asarray(operator.fit_transform(x)),
                       labels=[str(v) for v in labels], knn=knn, decay=decay, t=t)


def phate_grid(results: Sequence[PhateResult], cols: int = 6):
    """One panel per (model, site), coloured by category; the legend on the first panel."""
    fig, panels = grid(len(results), cols=cols)
    for ax, result in zip(panels, results):
        result.plot(ax)
    if results:
        panels[0].legend(fontsize=5, markerscale=2)
    return fig
