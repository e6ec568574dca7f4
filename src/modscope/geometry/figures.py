"""Figures of the geometry probes: similarity-matrix grids, separation vs depth, streams, PCA and histograms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modscope.figures import axes, grid, model_colour

SYMMETRIC_KINDS = ("cosine", "centred", "scaled")


def category_ticks(ax, labels: Sequence[str]) -> None:
    """Lines between category blocks of an ordered matrix, and the category names at block centres."""
    labels = list(labels)
    starts = [k for k in range(len(labels)) if k == 0 or labels[k] != labels[k - 1]]
    ends = starts[1:] + [len(labels)]
    for start in starts[1:]:
        ax.axhline(start - 0.5, color="k", lw=0.4)
        ax.axvline(start - 0.5, color="k", lw=0.4)
    centres = [(a + b - 1) / 2 for a, b in zip(starts, ends)]
    ax.set_xticks(centres, [labels[a][:6] for a in starts], fontsize=6, rotation=90)
    ax.set_yticks(centres, [labels[a][:6] for a in starts], fontsize=6)


def similarity_grid(study, kind: str, *, sites: Sequence[str] | None = None, cols: int = 6):
    """One panel per site: the [n, n] similarity matrix, rows ordered by category, titled with the separation z."""
    sites = list(sites or study.sites)
    fig, panels = grid(len(sites), cols=cols)
    symmetric = kind in SYMMETRIC_KINDS
    image = None
    for ax, site in zip(panels, sites):
        S = study.matrices[site, kind]
        limit = 1.0 if symmetric else float(np.max(np.abs(S))) or 1.0
        image = ax.imshow(S, cmap="RdBu_r", vmin=-limit if symmetric or S.min() < 0 else None,
                          vmax=limit if symmetric else None, interpolation="nearest")
        ax.set_title(f"{site}  z={study.separations[site, kind].z:.1f}", fontsize=7)
        ax.grid(False)
        category_ticks(ax, study.labels)
    if image is not None and symmetric:
        fig.colorbar(image, ax=panels, shrink=0.6, label=f"{kind} similarity")
    fig.suptitle(f"{study.model}: {kind} similarity by category", fontsize=9)
    return fig


def separation_vs_depth(studies: Sequence, kind: str, *, metric: str = "z"):
    """Separation z (or any column of the study table) against depth, trained and twin in their colours."""
    ax = axes(None, figsize=(6.5, 3.8))
    for study in studies:
        study.depth_lines(ax, kind, metric=metric)
    if metric == "z":
        ax.axhspan(-2, 2, color="#9a9a9a", alpha=0.15, lw=0, label="|z| < 2 (null)")
    ax.set_xlabel("layer")
    ax.set_ylabel(f"{metric} ({kind})")
    ax.legend(fontsize=7)
    return ax.figure


def head_separation_map(study, kind: str):
    """Layer x head heat map of separation z for ``head_out.L.h`` sites."""
    records = [r for r in study.rows if r["kind"] == kind and r["family"].startswith("head_out.h")]
    layers = sorted({int(r["depth"]) for r in records})
    heads = sorted({int(r["family"].split(".h")[1]) for r in records})
    values = np.full((len(layers), len(heads)), np.nan)
    for r in records:
        values[layers.index(int(r["depth"])), heads.index(int(r["family"].split(".h")[1]))] = r["z"]
    ax = axes(None, figsize=(1.0 + 0.45 * len(heads), 1.0 + 0.3 * len(layers)))
    image = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.figure.colorbar(image, ax=ax, label=f"separation z ({kind})")
    ax.set_xticks(range(len(heads)), heads)
    ax.set_yticks(range(len(layers)), layers)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.grid(False)
    return ax.figure


def stream_grid(ranking, *, cols: int = 3):
    """Stream diagrams of every shown dimension (one line per sample, coloured by category)."""
    fig, panels = grid(len(ranking.shown), cols=cols, size=3.0)
    for index, ax in enumerate(panels):
        ranking.plot(ax, which=index)
    panels[0].legend(fontsize=6)
    return fig


def pca_grid(pcas: dict, *, cols: int = 6):
    """PCA scatter (PC1 vs PC2, coloured by category) for every site."""
    fig, panels = grid(len(pcas), cols=cols)
    for ax, (site, result) in zip(panels, pcas.items()):
        result.plot(ax)
        ax.set_title(site, fontsize=7)
        if ax is not panels[0] and ax.get_legend():
            ax.get_legend().remove()
    return fig


def histogram_grid(studies: Sequence, *, cols: int = 4):
    """Raw (solid colour) vs centred (grey) all-pairs cosine histograms: weights first, then chosen sites."""
    panels_spec = []
    for study in studies:
        panels_spec += [(study, name, pair) for name, pair in study.weights.items()]
        hidden = list(study.hidden)
        panels_spec += [(study, site, study.hidden[site]) for site in hidden[:: max(1, len(hidden) // 4)]]
    fig, panels = grid(len(panels_spec), cols=cols, size=2.8)
    for ax, (study, name, pair) in zip(panels, panels_spec):
        colour = model_colour(study.model)
        pair["raw"].plot(ax, color=colour, label=f"raw: mean {pair['raw'].mean:.2f}")
        pair["centred"].plot(ax, color="#555555", label=f"centred: mean {pair['centred'].mean:.2f}")
        n_rows, total = pair["raw"].n_rows, getattr(study, "total_rows", {}).get(name)
        subset = f" (sample of {n_rows:,} of {total:,} rows)" if total and n_rows < total else ""
        ax.set_title(f"{study.model}: {name}{subset}", fontsize=7)
    return fig


def mean_cosine_curves(studies: Sequence, *, figsize=(6.5, 3.8)):
    """Every study's ``plot`` (mean pairwise cosine vs depth or site) on one axes, trained and twin colours."""
    ax = axes(None, figsize=figsize)
    for study in studies:
        study.plot(ax)
    return ax.figure


