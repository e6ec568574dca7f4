"""Per-site geometry of a gathered sample: similarity matrices, separation with nulls, low-rank split, PCA, CKA."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from modscope.errors import ModscopeError
from modscope.figures import NULL, axes, model_colour
from modscope.geometry.cka import CKAMap, cka_map
from modscope.geometry.gather import Gathered, site_depth
from modscope.geometry.lowrank import low_rank_split
from modscope.geometry.pca import PCAResult, pca
from modscope.geometry.separation import separation
from modscope.geometry.similarity import KINDS, similarity
from modscope.results import Result


@dataclass(frozen=True)
class SimilarityStudy(Result):
    """Similarity matrices of every site and kind of one model, each with its category separation and low-rank split.

    Fields:
        model: model name. kinds: similarity kinds. sites: site names in depth order. categories: in row order.
        n_samples: rows (documents x positions). n_permutations: size of each separation null.
        rows: one record per (site, kind): separation ``difference`` (within - between similarity), its null
            ``z`` and ``p``, ``silhouette`` and ``silhouette_z``, and the low-rank split (``top_fraction``: share of
            ||S||_F^2 in one direction; ``top_fraction_centred``: the same after double centring).
        labels, groups: category and document of each row. matrices, separations, splits: keyed by (site, kind).
    """

    model: str
    kinds: list[str]
    sites: list[str]
    categories: list[str]
    n_samples: int
    n_permutations: int
    rows: list[dict]
    labels: list[str] = field(repr=False)
    groups: list[str] = field(repr=False)
    matrices: dict = field(repr=False)
    separations: dict = field(repr=False)
    splits: dict = field(repr=False)

    _json_exclude = ("labels", "groups", "matrices", "separations", "splits")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def best(self, kind: str) -> dict:
        """The (site, kind) record with the largest separation z."""
        return max((r for r in self.rows if r["kind"] == kind), key=lambda r: r["z"])

    def plot(self, ax=None, *, kind: str | None = None, family: str | None = None):
        """Separation z against depth for one kind, one line per site family (e.g. attn_out, resid_post)."""
        kind = kind or self.kinds[0]
        ax = self.depth_lines(axes(ax), kind, family=family)
        ax.axhline(0, color=NULL, lw=1)
        ax.axhspan(-2, 2, color=NULL, alpha=0.15, lw=0, label="|z| < 2 under the null")
        ax.set_xlabel("layer")
        ax.set_ylabel(f"separation z ({kind})")
        ax.legend(fontsize=7)
        return ax

    def depth_lines(self, ax, kind: str, *, metric: str = "z", family: str | None = None):
        """``metric`` (a column of ``rows``) of one kind against depth, a line style per site family; returns ``ax``."""
        frame = self.to_frame()
        frame = frame[frame["kind"] == kind]
        families = [f for f in dict.fromkeys(frame["family"]) if family is None or f == family]
        for index, name in enumerate(families):
            part = frame[frame["family"] == name].sort_values("depth")
            ax.plot(part["depth"], part[metric], ["-", "--", ":", "-."][index % 4], marker="o", ms=3,
                    color=model_colour(self.model), label=f"{self.model} {name}")
        return ax


def similarity_study(gathered: Gathered, *, kinds: Sequence[str] = ("cosine",), n_permutations: int = 1000,
                     seed: int = 0) -> SimilarityStudy:
    """For every site and kind: S = similarity(H, kind), separation(S, labels) with a document-level null, and
    low_rank_split(S).

    Args:
        gathered: arrays from ``gather`` (or ``from_arrays``). kinds: subset of ``KINDS``.
        n_permutations, seed: the label-permutation null (documents are permuted as wholes).

    Returns:
        SimilarityStudy.
    """
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ModscopeError(f"unknown similarity kind(s) {unknown}; choose from {', '.join(KINDS)}")
    sites = sorted(gathered.sites, key=lambda s: (site_depth(s)[1], s))
    groups = gathered.groups if len(set(gathered.groups)) < len(gathered.groups) else None  # documents, if any
    rows, matrices, separations, splits = [], {}, {}, {}
    for site in sites:
        family, depth = site_depth(site)
        for kind in kinds:
            S = similarity(gathered.arrays[site], kind)
            sep = separation(S, gathered.labels, groups=groups, n_permutations=n_permutations, seed=seed)
            split = low_rank_split(S)
            matrices[site, kind], separations[site, kind], splits[site, kind] = S, sep, split
            rows.append({"site": site, "family": family, "depth": depth, "kind": kind, "within": sep.within,
                         "between": sep.between, "difference": sep.difference, "null_sd": sep.null_sd,
                         "z": sep.z, "p": sep.p, "silhouette": sep.silhouette, "silhouette_z": sep.silhouette_z,
                         "top_fraction": split.top_fraction, "top_fraction_centred": split.top_fraction_centred,
                         "common_share": split.common_share})
    return SimilarityStudy(
        model=gathered.model, kinds=kinds, sites=sites, categories=gathered.categories,
        n_samples=len(gathered.labels), n_permutations=n_permutations, rows=rows, labels=gathered.labels,
        groups=gathered.groups, matrices=matrices, separations=separations, splits=splits,
    )


def pca_by_site(gathered: Gathered, *, k: int = 2, centre: bool = True) -> dict[str, PCAResult]:
    """PCA of every site of a gathered sample (labels kept for category-coloured scatter plots)."""
    return {site: pca(array, k=min(k, *array.shape), centre=centre, labels=gathered.labels)
            for site, array in gathered.arrays.items()}


def cka_between(first: Gathered, second: Gathered | None = None, *, debiased: bool = True) -> CKAMap:
    """Site x site CKA within one model, or between two models' row-aligned samples (same tokenizer and source)."""
    if second is not None and (first.groups != second.groups or first.positions != second.positions):
        raise ModscopeError("the two samples are not row-aligned; capture both models on the same corpus sample "
                            "and positions (they must share a tokenizer)")
    rows = sorted(first.sites, key=lambda s: (site_depth(s)[1], s))
    columns = rows if second is None else sorted(second.sites, key=lambda s: (site_depth(s)[1], s))
    return cka_map([first.arrays[s] for s in rows],
                   None if second is None else [second.arrays[s] for s in columns],
                   row_names=[f"{first.model}:{s}" if second is not None else s for s in rows],
                   column_names=[f"{second.model}:{s}" for s in columns] if second is not None else None,
                   debiased=debiased)

