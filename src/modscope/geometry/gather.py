"""The model-facing step of every geometry probe: capture sites over a category-balanced sample, one array per site."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError


@dataclass(frozen=True)
class Gathered:
    """Activations of a set of samples, one [n, d] array per site, rows ordered by category.

    Fields:
        arrays: site -> float32 [n_samples, d]; ``head_out.L`` is split into one entry ``head_out.L.h`` per head.
        labels: category per row. groups: document id per row (rows of one document share a label).
        positions: token position per row. model: the model's name. settings: how the sample was taken.
    """

    arrays: dict[str, np.ndarray]
    labels: list[str]
    groups: list[str]
    positions: list[int]
    model: str
    settings: dict

    @property
    def sites(self) -> list[str]:
        return list(self.arrays)

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(self.labels))

    def rows_description(self) -> dict:
        """What the rows are (``capture.sampling.rows_summary``): documents per category, and one sentence."""
        from modscope.capture.sampling import rows_summary

        if "rows" in self.settings:
            return self.settings["rows"]
        category_of = dict(zip(self.groups, self.labels))
        return rows_summary(list(category_of.values()), len(self.labels))


def site_depth(name: str) -> tuple[str, float]:
    """(family, depth) of a site name: ``resid_post.3`` -> (resid_post, 3); ``head_out.3.2`` -> (head_out.h2, 3);
    ``embed`` -> (embed, -1); ``final`` -> (final, +inf); anything else -> (name, nan)."""
    match = re.fullmatch(r"([a-z_]+)\.(\d+)(?:\.(\d+))?", name)
    if match:
        family = match.group(1) + (f".h{match.group(3)}" if match.group(3) is not None else "")
        return family, float(match.group(2))
    return name, {"embed": -1.0, "final": float("inf")}.get(name, float("nan"))


def from_arrays(arrays: dict[str, np.ndarray], labels: Sequence, *, groups: Sequence | None = None,
                positions: Sequence[int] | None = None, model: str = "arrays", settings: dict | None = None
                ) -> Gathered:
    """Build a ``Gathered`` from arrays you already have (rows are reordered so categories are contiguous)."""
    labels = [str(x) for x in labels]
    n = len(labels)
    groups = [str(g) for g in groups] if groups is not None else [str(k) for k in range(n)]
    positions = list(positions) if positions is not None else [0] * n
    order_of = {name: k for k, name in enumerate(dict.fromkeys(labels))}
    order = sorted(range(n), key=lambda k: order_of[labels[k]])
    out = {}
    for site, array in arrays.items():
        array = np.asarray(array)
        if array.shape[0] != n:
            raise ModscopeError(f"site {site} has {array.shape[0]} rows but there are {n} labels")
        if array.ndim == 3 and site.startswith("head_out"):
            out.update({f"{site}.{h}": np.ascontiguousarray(array[order, h]) for h in range(array.shape[1])})
        else:
            out[site] = np.ascontiguousarray(array[order].reshape(n, -1))
    return Gathered(arrays=out, labels=[labels[k] for k in order], groups=[groups[k] for k in order],
                    positions=[positions[k] for k in order], model=model, settings=dict(settings or {}))


def gather(model, corpus, sites: str | Sequence[str], *, per_category: int = 3, positions: str = "last:10",
           ctx: int = 512, seed: int = 0, progress: bool = False) -> Gathered:
    """Capture ``sites`` of ``model`` at ``positions`` of ``per_category`` documents per category of ``corpus``.

    This is seed 001's sampling (a few texts per category, the last 10 positions) on any corpus.
    """
    from modscope.capture import capture
    from modscope.capture.sampling import rows_summary

    sample = corpus.sample(per_category=per_category, seed=seed)
    if len(sample.categories) < 2:
        raise ModscopeError(f"the corpus has one category ({sample.categories[0]}); geometry by category needs "
                            "two or more (a directory with one subfolder per category, or a jsonl with 'category')")
    store = capture(model, sample, sites, positions=positions, ctx=ctx, progress=progress)
    meta = store.meta
    arrays = {site: np.asarray(store[site], dtype=np.float32) for site in store.sites}
    category_of = dict(zip(meta["doc_id"], meta["category"]))
    settings = {"per_category": per_category, "positions": positions, "ctx": ctx, "seed": seed,
                "corpus": getattr(corpus, "name", ""), "n_docs": len(sample),
                "rows": rows_summary(list(category_of.values()), store.n_rows, sample="per_category", seed=seed)}
    return from_arrays(arrays, meta["category"].tolist(), groups=meta["doc_id"].tolist(),
                       positions=meta["position"].tolist(), model=model.name, settings=settings)
