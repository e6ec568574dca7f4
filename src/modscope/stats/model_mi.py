"""Model-facing MI: trained vs twin at the same site on the same tokens, or between layers of one model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.stats.curve import MICurve, mi_curve
from modscope.stats.mi import MIResult, gaussian_mi

PAIRS = ("twin", "layers")


@dataclass(frozen=True)
class ModelMIResult(Result):
    """Gaussian MI per site pair, each with its exact null and MI-vs-n curve.

    Attributes:
        pair: "twin" (site of model_x vs the same site of model_y) or "layers" (consecutive sites of model_x).
        model_x, model_y: model names (model_y = model_x for layers).
        labels: one label per pair ("resid_post.3" or "resid_post.3→resid_post.4").
        results: the MIResult of each pair at all rows (nats; see MIResult).
        curves: the MICurve of each pair (None when curves were switched off).
    """

    pair: str
    model_x: str
    model_y: str
    labels: list[str]
    results: list[MIResult]
    curves: list[MICurve | None]

    def to_frame(self) -> pd.DataFrame:
        """One row per pair: plug-in, corrected, null, z, extrapolated MI (nats) and dimensions used."""
        return pd.DataFrame([{"pair": label, "n": r.n, "rank_x": r.rank_x, "rank_y": r.rank_y, "mi_nats": r.mi,
                              "mi_bits": r.mi_bits, "mi_corrected": r.mi_corrected, "null_mean": r.null_mean,
                              "null_sd": r.null_sd, "z": r.z, "mi_inf": c.mi_inf if c else np.nan,
                              "mi_inf_se": c.mi_inf_se if c else np.nan,
                              "perm_p": r.perm_p if r.perm_p is not None else np.nan, "p": r.p, "null": r.null}
                             for label, r, c in zip(self.labels, self.results, self.curves, strict=True)])

    def plot(self, ax=None):
        from modscope import figures as style

        ax = style.axes(ax, figsize=(6.5, 3.6))
        x = np.arange(len(self.labels))
        null_mean = np.array([r.null_mean for r in self.results])
        null_sd = np.array([r.null_sd for r in self.results])
        ax.fill_between(x, np.maximum(null_mean - 3 * null_sd, 0), null_mean + 3 * null_sd, color=style.NULL,
                        alpha=0.4, lw=0, label="independence null ± 3 sd")
        ax.plot(x, [r.mi for r in self.results], "o-", color=style.TRAINED, ms=4, label="plug-in MI")
        ax.plot(x, [r.mi_corrected for r in self.results], "s--", color=style.ESTIMATE, ms=3,
                label="bias-corrected MI")
        if all(c is not None for c in self.curves):
            ax.plot(x, [c.mi_inf for c in self.curves], "^:", color=style.TRAINED, ms=3, alpha=0.6,
                    label="n→∞ extrapolation")
        ax.set_xticks(x, [label.split("→")[0].replace("resid_post.", "L") for label in self.labels],
                      rotation=90 if len(x) > 12 else 0)
        what = f"{self.model_x} vs {self.model_y}" if self.pair == "twin" else f"consecutive sites of {self.model_x}"
        ax.set(ylabel="MI (nats)", title=f"Gaussian MI, {what}")
        ax.legend(fontsize=7)
        return ax

    def plot_curves(self):
        """A grid of MI-vs-n panels, one per pair."""
        from modscope import figures as style

        shown = [(label, c) for label, c in zip(self.labels, self.curves, strict=True) if c is not None]
        if not shown:
            return None
        fig, axs = style.grid(len(shown), cols=4, size=2.6)
        for ax, (label, c) in zip(axs, shown, strict=True):
            c.plot(ax, title=label)
            if ax is not axs[0]:
                ax.get_legend().remove()
        return fig

    def verdict(self) -> str:
        """One line from the numbers: how many pairs stay above their null, and the extremes."""
        above = [r.p is not None and r.p <= 0.05 for r in self.results]
        best = int(np.argmax([r.mi_corrected for r in self.results]))
        r = self.results[best]
        nulls = sorted({x.null for x in self.results})
        head = f"{sum(above)}/{len(above)} pairs have MI above the {' / '.join(nulls)} null (p ≤ 0.05)"
        if any(x.null.startswith("exact") for x in self.results):
            head += " — the exact Gaussian null is too narrow on heavy-tailed rows; use --permutations for a test"
        count = 0 if r.perm_null is None else len(r.perm_null)  # a p of 1/(count + 1) is a bound, not a value
        bound = (f", the smallest {count} permutations can give"
                 if r.perm_null is not None and r.p <= 1.0 / (count + 1) + 1e-12 else "")
        tail = (f"; largest at {self.labels[best]}: {r.mi:.3g} nats plug-in, {r.mi_corrected:.3g} corrected, "
                f"null {r.null_mean:.3g} ± {r.null_sd:.2g} (p = {r.p:.3g}{bound})")
        curve = self.curves[best]
        return head + tail + (f"; {curve.verdict}" if curve is not None else "")


def site_pairs(sites_x: list[str], pair: str) -> list[tuple[str, str]]:
    if pair not in PAIRS:
        raise ModscopeError(f"--pair must be one of {', '.join(PAIRS)}, got '{pair}'")
    if pair == "twin":
        return [(s, s) for s in sites_x]
    if len(sites_x) < 2:
        raise ModscopeError("--pair layers needs at least two sites, e.g. --sites 'resid_post.*'")
    return list(zip(sites_x[:-1], sites_x[1:], strict=True))


def mi_of_stores(store_x: Any, store_y: Any | None, sites: list[str], *, pair: str = "twin", curve_points: int = 8,
                 permutations: int = 0, seed: int = 0, allow_identical: bool = False, engine: str = "local",
                 scheduler: str | None = None) -> ModelMIResult:
    """MI for each site pair of row-aligned capture stores (the computation behind ``modscope mi``).

    Args:
        store_x: ActivationStore of the model. store_y: the twin's store on the same tokens (pair="twin").
        sites: sites to use, in order. pair: "twin" or "layers".
        curve_points: grid points of each MI-vs-n curve (0 switches curves off).
        permutations: row shuffles for a permutation null per pair. seed: seed of shuffles.
        allow_identical: accept a twin whose activations are a linear copy of the model's (otherwise an error,
            since it usually means the twin has the model's weights).
        engine, scheduler: where the joint covariance is streamed (``dask`` reads Zarr stores chunk by chunk;
            curves and permutation nulls run on the local engine only).

    Memory: the MI and its curve stream each site pair from the stores (one batch of rows, one float64
    [dx+dy, dx+dy] accumulator per curve point, one byte per row for the random subset order), so it does not
    grow with the rows beyond that byte. A permutation null is whatever ``gaussian_mi`` needs for it.

    Returns:
        ModelMIResult.
    """
    pairs = site_pairs(sites, pair)
    if engine != "local" and (curve_points or permutations):
        raise ModscopeError("MI-vs-n curves and permutation nulls run on the local engine only: with --engine dask "
                            "use --curve-points 0 --permutations 0")
    if pair == "twin":
        if store_y is None:
            raise ModscopeError("--pair twin needs the twin's activations: give --twin or --twin-store")
        if store_y.n_rows != store_x.n_rows:
            raise ModscopeError(f"the two stores have {store_x.n_rows} and {store_y.n_rows} rows; capture both "
                                "models on the same source with the same --max-tokens")
        missing = [s for s in sites if s not in store_y]
        if missing:
            raise ModscopeError(f"the twin store lacks {', '.join(missing)}; capture the same sites for both")
        from modscope.capture.store import check_rows_aligned

        check_rows_aligned(store_x, store_y, "the model and twin stores")
    other = store_y if pair == "twin" else store_x
    results, curves = [], []
    for site_x, site_y in pairs:
        X, Y = store_x[site_x], other[site_y]  # on-disk arrays: every pass below reads them batch by batch
        groups = store_x.meta["doc"].to_numpy() if permutations else None  # documents are exchanged whole
        result = gaussian_mi(X, Y, permutations=permutations, seed=seed, groups=groups, engine=engine,
                             scheduler=scheduler)
        if pair == "twin" and not allow_identical and result.canonical_correlations.min() > 1 - 1e-6:
            raise ModscopeError(f"{site_x} of the two stores is the same up to a linear map: the twin has the same "
                                "weights as the model; use --twin random or another --twin-seed")
        results.append(result)
        curves.append(mi_curve(X, Y, points=curve_points, seed=seed) if curve_points >= 3 else None)
    name_x = store_x.model_info.get("name", "model")
    name_y = store_y.model_info.get("name", "twin") if pair == "twin" else name_x
    labels = [a if pair == "twin" else f"{a}→{b}" for a, b in pairs]
    return ModelMIResult(pair=pair, model_x=name_x, model_y=name_y, labels=labels, results=results, curves=curves)


def model_mi(model: Any, twin: Any | None, source: Any, sites: str, *, pair: str = "twin",
             max_tokens: int | None = 20000, ctx: int = 512, curve_points: int = 8, permutations: int = 0,
             seed: int = 0, progress: bool = False, allow_identical: bool = False) -> ModelMIResult:
    """Capture ``sites`` of ``model`` (and ``twin``) on the same tokens of ``source`` and compute their MI.

    Args:
        model, twin: loaded Models sharing a tokenizer (twin unused for pair="layers").
        source: Corpus, list of texts or list of token-id lists. sites: site names or patterns.
        max_tokens, ctx: capture size (rows) and per-document context.
        Remaining arguments as ``mi_of_stores``.
    """
    from modscope.capture import capture

    names = model.select_sites(sites)
    store_x = capture(model, source, names, max_tokens=max_tokens, ctx=ctx, progress=progress)
    store_y = None
    if pair == "twin":
        if twin is None:
            raise ModscopeError("--pair twin needs a twin model (e.g. --twin random)")
        store_y = capture(twin, source, names, max_tokens=max_tokens, ctx=ctx, progress=progress)
    return mi_of_stores(store_x, store_y, names, pair=pair, curve_points=curve_points, permutations=permutations,
                        seed=seed, allow_identical=allow_identical)
