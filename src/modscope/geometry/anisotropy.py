"""Anisotropy: the all-pairs cosine distribution of embeddings, unembeddings and hidden states, raw and centred."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modscope.errors import ModscopeError
from modscope.figures import NULL, axes, model_colour
from modscope.geometry.gather import Gathered, site_depth
from modscope.geometry.histogram import HistogramResult, cosine_histogram
from modscope.results import Result


@dataclass(frozen=True)
class AnisotropyStudy(Result):
    """Mean pairwise cosine of weight matrices' rows and of hidden states per site, before and after mean-centring.

    Fields:
        model: name. tied: whether W_U = W_E^T (then only W_E is measured).
        rows: one record per matrix/site: ``name``, ``depth`` (layer; -1 embed, nan weights), ``n_rows``,
            ``mean_raw``/``sd_raw`` and ``mean_centred``/``sd_centred`` (exact over all pairs; dimensionless cosine).
            An isotropic cloud has mean ~0 and sd ~1/sqrt(d); a large raw mean that centring removes is a shared
            offset (seed 003), not similarity of meaning.
        weights: name -> {"raw": HistogramResult, "centred": HistogramResult} for W_E (and W_U when untied).
        hidden: site -> the same, for hidden states.
        total_rows: name -> rows the weight matrix has (its vocabulary); a weight record measured fewer
            (``n_rows`` < this) is a seeded sample of them, and its pairs are all pairs of that sample only.
    """

    model: str
    tied: bool
    d_model: int
    rows: list[dict]
    weights: dict = field(repr=False)
    hidden: dict = field(repr=False)
    total_rows: dict = field(default_factory=dict)

    def rows_measured(self, name: str) -> str:
        """Which rows of weight matrix ``name`` its pairs cover, e.g. "all pairs of a seeded sample of 12,288 of
        49,152 rows (a subset)" or "all pairs of all 49,152 rows"."""
        n_rows = self.weights[name]["raw"].n_rows
        total = self.total_rows.get(name, n_rows)
        if n_rows < total:
            return f"all pairs of a seeded sample of {n_rows:,} of {total:,} rows (a subset)"
        return f"all pairs of all {n_rows:,} rows"

    _json_exclude = ("hidden",)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def plot(self, ax=None, *, centred: bool = False):
        """Mean pairwise cosine of hidden states against depth (solid raw, dashed centred)."""
        ax = axes(ax)
        frame = self.to_frame()
        frame = frame[np.isfinite(frame["depth"].astype(float))].sort_values("depth")
        colour = model_colour(self.model)
        for family in dict.fromkeys(frame["family"]):
            part = frame[frame["family"] == family]
            ax.plot(part["depth"], part["mean_raw"], "-o", ms=3, color=colour, label=f"{self.model} {family} raw")
            ax.plot(part["depth"], part["mean_centred"], "--", color=colour, alpha=0.7, label="… centred")
        ax.axhline(0, color=NULL, lw=1)
        ax.set_xlabel("layer (-1 = embed)")
        ax.set_ylabel("mean pairwise cosine")
        if ax.get_legend_handles_labels()[0]:  # a weights-only study has no hidden-state curve
            ax.legend(fontsize=7)
        return ax


def both_ways(rows: np.ndarray, **kw) -> dict[str, HistogramResult]:
    """Raw and centred ``cosine_histogram`` of ``rows`` (``kw``: bins, block, engine, scheduler), without extremes."""
    return {"raw": cosine_histogram(rows, extremes=False, **kw),
            "centred": cosine_histogram(rows, centre=True, extremes=False, **kw)}


def record(name: str, histograms: dict[str, HistogramResult]) -> dict:
    family, depth = site_depth(name)
    raw, centred = histograms["raw"], histograms["centred"]
    return {"name": name, "family": family, "depth": depth, "n_rows": raw.n_rows, "mean_raw": raw.mean,
            "sd_raw": raw.sd, "mean_centred": centred.mean, "sd_centred": centred.sd}


def anisotropy_study(weights: dict[str, np.ndarray], gathered: Gathered | None, *, model: str, tied: bool,
                     bins: int = 200, block: int = 2048, engine: str = "local",
                     scheduler: str | None = None, total_rows: dict[str, int] | None = None) -> AnisotropyStudy:
    """Exact all-pairs cosine histograms (``cosine_histogram``) of each weight matrix's rows and each site's states.

    Args:
        weights: name -> [rows, d] (``W_E``: one row per token; ``W_U``: pass W_U^T so rows are tokens).
        gathered: hidden states per site (or None). model, tied: for the record. bins, block: histogram settings.
        engine, scheduler: where the block products run (``cosine_histogram``'s engines).
        total_rows: name -> rows of the whole matrix when ``weights`` holds a sample of them (default: all rows).

    Returns:
        AnisotropyStudy.
    """
    if not weights and (gathered is None or not gathered.arrays):
        raise ModscopeError("nothing to measure: give weight matrices or captured sites")
    kw = {"bins": bins, "block": block, "engine": engine, "scheduler": scheduler}
    weight_hist = {name: both_ways(array, **kw) for name, array in weights.items()}
    sites = sorted(gathered.sites, key=lambda s: (site_depth(s)[1], s)) if gathered is not None else []
    hidden = {site: both_ways(gathered.arrays[site], **kw) for site in sites}
    rows = [{**record(name, h), "depth": float("nan")} for name, h in weight_hist.items()]
    rows += [record(site, h) for site, h in hidden.items()]
    d_model = next(iter(weights.values())).shape[1] if weights else next(iter(gathered.arrays.values())).shape[1]
    totals = {name: int((total_rows or {}).get(name, len(array))) for name, array in weights.items()}
    for row in rows:
        row["n_rows_total"] = totals.get(row["name"], row["n_rows"])
    return AnisotropyStudy(model=model, tied=tied, d_model=int(d_model), rows=rows, weights=weight_hist,
                           hidden=hidden, total_rows=totals)


def embedding_matrices(model) -> dict:
    """W_E, and W_U^T when untied (one row per token)."""
    return {"W_E": model.W_E} | ({} if model.tied_embeddings else {"W_U": model.W_U.T})


def weight_rows(model) -> dict[str, int]:
    """Rows (tokens) of W_E, and of W_U^T when untied: the totals a ``vocab_rows`` sample is drawn from."""
    return {name: int(matrix.shape[0]) for name, matrix in embedding_matrices(model).items()}


def model_weights(model, *, vocab_rows: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """W_E (and W_U^T when untied) as float32 [vocab, d]; ``vocab_rows`` draws a seeded sample of tokens instead
    of all of them (seed 003's shortcut, for quick runs)."""
    out = {}
    rng = np.random.default_rng(seed)
    for name, matrix in embedding_matrices(model).items():
        array = matrix.detach().float().cpu().numpy()
        if vocab_rows is not None and vocab_rows < len(array):
            array = array[np.sort(rng.choice(len(array), size=vocab_rows, replace=False))]
        out[name] = array
    return out
