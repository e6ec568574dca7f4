"""Probe pages for the geometry commands and demo: run the studies on a model and its twin, write figures + verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from modscope.errors import ModscopeError
from modscope.geometry import figures
from modscope.geometry.anisotropy import anisotropy_study, model_weights, weight_rows
from modscope.geometry.gather import gather
from modscope.geometry.massive import rests_on, without_massive, without_massive_rows
from modscope.geometry.similarity import KINDS
from modscope.geometry.streams import rank_stream_dimensions
from modscope.geometry.study import cka_between, pca_by_site, similarity_study
from modscope.report.numbers import plural
from modscope.results import jsonable


def finish(out: Path | None, *, probe: str, title: str, question: str, result: dict, headline: list[str],
           verdict: str, figures_: dict, tables: dict, settings: dict, phate: tuple | None = None) -> dict:
    """Write the probe page when ``out`` is given; return the JSON payload (results as their ``to_json()``) either
    way. ``phate=(samples, seed)`` adds PHATE of the samples' rows (seed 001: next to PCA, same category colours)."""
    if phate is not None:
        from modscope.geometry.phate_embed import phate_report

        figures_["phate"], result["phate"], line = phate_report(*phate)
        headline.append(line)
    payload = jsonable(result)
    if out is not None:
        from modscope.report import write_probe

        write_probe(out, probe=probe, title=title, question=question, result=payload, headline=headline,
                    verdict=verdict, figures=figures_, tables=tables, settings=settings)
    return {"probe": probe, "headline": headline, "verdict": verdict, "result": payload}


def similarity_report(models: Sequence, corpus, *, sites: str, kinds: Sequence[str], per_category: int = 3,
                      positions: str = "last:10", ctx: int = 512, n_permutations: int = 1000, seed: int = 0,
                      out: Path | None = None, embed: Sequence[str] = ()) -> dict:
    """Seed 001's experiment with statistics: per-site similarity matrices by category, separation z per layer
    against a document-permutation null, low-rank split, for each model (trained first, then its twin); with
    ``embed=("phate",)`` also PHATE scatter plots of the same rows by category (needs the optional ``phate``)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ModscopeError(f"unknown similarity kind(s) {unknown}; choose from {', '.join(KINDS)}")
    studies, samples = [], []
    for model in models:
        gathered = gather(model, corpus, sites, per_category=per_category, positions=positions, ctx=ctx, seed=seed)
        studies.append(similarity_study(gathered, kinds=kinds, n_permutations=n_permutations, seed=seed))
        samples.append(gathered)
    lean, dropped = without_massive(samples[0])  # the trained model's sample, massive coordinates dropped
    lean_study = similarity_study(lean, kinds=kinds, n_permutations=n_permutations, seed=seed)
    kind = kinds[0]
    figs = {}
    for study in studies:
        plain = [s for s in study.sites if not s.startswith("head_out")]
        heads = [s for s in study.sites if s.startswith("head_out")]
        figs[f"matrices_{kind}_{study.model.replace(':', '_')}"] = figures.similarity_grid(
            study, kind, sites=plain or heads, cols=6 if plain else max(1, int(np.sqrt(len(heads)) + 0.5)))
        if heads and plain:
            figs[f"head_matrices_{study.model.replace(':', '_')}"] = figures.similarity_grid(study, kind, sites=heads)
        if heads:
            figs[f"head_separation_{study.model.replace(':', '_')}"] = figures.head_separation_map(study, kind)
    for k in kinds:
        figs[f"separation_vs_depth_{k}"] = figures.separation_vs_depth(studies, k)
    figs["rank1_share_vs_depth"] = figures.separation_vs_depth(studies, kind, metric="top_fraction")
    headline = []
    for study in studies:
        best = study.best(kind)
        significant = sum(r["p"] < 0.05 for r in study.rows if r["kind"] == kind)
        headline.append(
            f"{study.model}: best {kind} separation at {best['site']}, within − between = {best['difference']:.3f} "
            f"(z = {best['z']:.1f} vs a null of {study.n_permutations} document permutations, p = {best['p']:.3g}); "
            f"{significant}/{plural(len(study.sites), 'site')} with p < 0.05.")
    trained = studies[0].best(kind)
    if len(studies) > 1:
        twin = studies[1].best(kind)
        verdict = (f"Categories separate {'more' if trained['z'] > twin['z'] else 'no more'} in {studies[0].model} "
                   f"(max z {trained['z']:.1f}) than in its twin (max z {twin['z']:.1f})")
    else:
        verdict = f"Max separation z {trained['z']:.1f} at {trained['site']} ({kind} similarity)"
    first = studies[0]
    verdict += (f" (z against {first.n_permutations} document permutations, max over "
                f"{plural(len(first.sites), 'site')}, on {first.n_samples:,} rows from "
                f"{plural(len(first.categories), 'category', 'categories')} × {per_category} texts, positions "
                f"{positions})")
    lean_best = lean_study.best(kind)
    verdict += "." + rests_on(  # ends with one "."
        dropped, f"{first.model}'s best {kind} separation is z {trained['z']:.1f} at {trained['site']}",
        f"it is z {lean_best['z']:.1f} at {lean_best['site']}")
    headline.append(f"{first.model} without massive coordinates: best {kind} separation at {lean_best['site']}, "
                    f"within − between = {lean_best['difference']:.3f} (z = {lean_best['z']:.1f}).")
    tables = {f"sites_{s.model}": s.to_frame().round(4) for s in studies}
    result = {**{s.model: s for s in studies}, "without_massive": lean_study, "massive": dropped}
    return finish(out, probe="similarity", title="Similarity matrices by category",
                  question="Do texts of the same category have more similar hidden states than texts of different "
                           "categories, layer by layer, beyond chance and beyond a random-init twin?",
                  result=result, headline=headline, verdict=verdict, figures_=figs,
                  tables=tables, settings={"sites": sites, "kinds": list(kinds), "per_category": per_category,
                                           "positions": positions, "n_permutations": n_permutations, "seed": seed,
                                           "rows": gathered.rows_description()},
                  phate=(samples, seed) if "phate" in embed else None)


def streams_report(model, corpus, *, sites: str = "resid_post.*", dims: Sequence[int] | None = None, top: int = 6,
                   per_category: int = 3, positions: str = "last:10", ctx: int = 512, n_permutations: int = 200,
                   seed: int = 0, out: Path | None = None) -> dict:
    """Stream diagrams: one hidden dimension across layers per panel, dimensions ranked by ANOVA F with a null."""
    gathered = gather(model, corpus, sites, per_category=per_category, positions=positions, ctx=ctx, seed=seed)
    widths = {gathered.arrays[s].shape[1] for s in gathered.sites}
    if len(widths) != 1:
        raise ModscopeError(f"streams need sites of one width (e.g. 'resid_post.*'); got widths {sorted(widths)}")
    values = np.stack([gathered.arrays[s] for s in gathered.sites], axis=1)
    ranking = rank_stream_dimensions(values, gathered.labels, groups=gathered.groups, layer_names=gathered.sites,
                                     dims=dims, top=top, n_permutations=n_permutations, seed=seed)
    best = ranking.top[0]
    n_sig = int(np.sum(ranking.p_fwer < 0.05))
    headline = [f"dimension {best}: mean ANOVA F {ranking.score[best]:.1f} across {len(gathered.sites)} sites "
                f"(family-wise p = {ranking.p_fwer[best]:.3g}; 95% of max-over-dimensions null below "
                f"{ranking.null_max_95:.1f}).",
                f"{n_sig} of {plural(values.shape[2], 'dimension')} "
                f"{'separates' if n_sig == 1 else 'separate'} categories at family-wise p < 0.05."]
    null = (f"family-wise p < 0.05 against {ranking.n_permutations} label permutations of the maximum over all "
            f"{values.shape[2]} dimensions; {ranking.n_samples} samples, {plural(len(gathered.sites), 'site')}")
    verdict = (f"{plural(n_sig, 'single dimension')} {'carries' if n_sig == 1 else 'carry'} category streams beyond "
               f"chance ({null})." if n_sig else
               f"No single dimension separates categories beyond chance once every dimension is accounted for "
               f"({null}).")
    table = pd.DataFrame([{"dim": j, "mean_F": ranking.score[j], "p": ranking.p[j], "p_fwer": ranking.p_fwer[j]}
                          for j in ranking.top])
    return finish(out, probe="streams", title="Stream diagrams of hidden dimensions",
                  question="Does any single hidden dimension keep texts of different categories apart across depth?",
                  result={"streams": ranking}, headline=headline, verdict=verdict,
                  figures_={"streams": figures.stream_grid(ranking)}, tables={"top_dimensions": table},
                  settings={"model": model.name, "sites": sites, "dims": dims, "per_category": per_category,
                            "positions": positions, "n_permutations": n_permutations,
                            "rows": gathered.rows_description()})


def cka_report(model, other, corpus, *, sites: str = "resid_post.*", per_category: int = 3,
               positions: str = "last:10", ctx: int = 512, pca_k: int = 2, seed: int = 0,
               out: Path | None = None, embed: Sequence[str] = ("pca",)) -> dict:
    """Layer x layer debiased linear CKA of one model, against another model (same tokenizer) when given, and PCA
    scatter plots per site coloured by category."""
    first = gather(model, corpus, sites, per_category=per_category, positions=positions, ctx=ctx, seed=seed)
    within = cka_between(first)
    lean, dropped = without_massive(first)
    within_lean = cka_between(lean)
    figs = {"cka_layers": within.plot().figure, "cka_layers_without_massive": within_lean.plot().figure}
    result = {"within": within, "within_without_massive": within_lean, "massive": dropped}
    headline = [f"{model.name}: mean debiased CKA between adjacent sites "
                f"{np.nanmean(np.diag(within.matrix, 1)) if len(within.matrix) > 1 else float('nan'):.3f} "
                "(0 = unrelated representations, 1 = same up to rotation and scale)."]
    verdict = headline[0]
    if other is not None:
        second = gather(other, corpus, sites, per_category=per_category, positions=positions, ctx=ctx, seed=seed)
        across = cka_between(first, second)
        result["across"] = across
        figs["cka_models"] = across.plot().figure
        matched = np.array(across.diagonal)
        headline.append(f"{model.name} vs {other.name}: matched-site CKA from {matched.min():.3f} to "
                        f"{matched.max():.3f} (mean {matched.mean():.3f}).")
        verdict = (f"Matched sites of {model.name} and {other.name} have mean CKA {matched.mean():.2f}; "
                   f"adjacent sites within {model.name} {np.nanmean(np.diag(within.matrix, 1)):.2f}.")
    ends = "first and last site" if len(within.matrix) > 1 else "a site with itself"
    adjacent_lean = np.nanmean(np.diag(within_lean.matrix, 1)) if len(within.matrix) > 1 else float("nan")
    verdict += rests_on(dropped, f"CKA between {ends} is {within.matrix[0, -1]:.3f}",
                        f"it is {within_lean.matrix[0, -1]:.3f} (adjacent sites {adjacent_lean:.3f})")
    headline.append(f"{model.name}: CKA between {ends} {within.matrix[0, -1]:.3f} with all coordinates, "
                    f"{within_lean.matrix[0, -1]:.3f} with each site's massive coordinates dropped.")
    no_rows, dropped_rows = without_massive_rows(first)
    result["massive_rows"] = dropped_rows
    if dropped_rows["n_rows_dropped"] and len(no_rows.labels) > 3:
        within_rows = cka_between(no_rows)
        result["within_without_massive_rows"] = within_rows
        where = ", ".join(f"position {p}: {k}" for p, k in dropped_rows["positions"].items())
        line = (f" Without the {plural(dropped_rows['n_rows_dropped'], 'row')} holding a massive entry ({where}; "
                f"every coordinate kept) CKA between {ends} is {within_rows.matrix[0, -1]:.3f}.")
        verdict += line
        headline.append(line.strip())
    rows = len(first.labels)
    verdict += (f" Debiased CKA is ≈ 0 for unrelated representations (the null); over {rows:,} token rows"
                f" ({per_category} texts per category, positions {positions}) at "
                f"{plural(len(first.sites), 'site')}.")
    pcas = pca_by_site(first, k=pca_k)
    figs["pca"] = figures.pca_grid(pcas)
    result["pca"] = pcas
    return finish(out, probe="cka", title="CKA and PCA of hidden states",
                  question="How similar are representations across layers (and across models), and how do the "
                           "categories sit in the top principal components?",
                  result=result, headline=headline, verdict=verdict, figures_=figs,
                  tables={"cka": pd.DataFrame(within.matrix, columns=within.column_names).round(3)},
                  settings={"model": model.name, "vs": other.name if other is not None else None, "sites": sites,
                            "per_category": per_category, "positions": positions,
                            "rows": first.rows_description()},
                  phate=([first] + ([second] if other is not None else []), seed) if "phate" in embed else None)


def anisotropy_report(models: Sequence, corpus, *, sites: str = "embed,resid_post.*", per_category: int = 2,
                      positions: str = "all", ctx: int = 256, vocab_rows: int | None = None, bins: int = 200,
                      seed: int = 0, out: Path | None = None, engine: str = "local",
                      scheduler: str | None = None) -> dict:
    """Seed 003 exact: all-pairs cosine histograms of W_E (W_U when untied) and of hidden states, raw vs centred."""
    studies, samples = [], []
    for model in models:
        gathered = (gather(model, corpus, sites, per_category=per_category, positions=positions, ctx=ctx, seed=seed)
                    if sites else None)
        samples.append(gathered)
        studies.append(anisotropy_study(model_weights(model, vocab_rows=vocab_rows, seed=seed), gathered,
                                        model=model.name, tied=model.tied_embeddings, bins=bins, engine=engine,
                                        scheduler=scheduler, total_rows=weight_rows(model)))
    headline = []
    for study in studies:
        we = study.weights["W_E"]
        headline.append(f"{study.model}: W_E mean pairwise cosine {we['raw'].mean:.3f} raw, {we['centred'].mean:.3f} "
                        f"centred (isotropic reference 0 ± {1 / np.sqrt(study.d_model):.3f}), exact over "
                        f"{study.rows_measured('W_E')} ({we['raw'].n_pairs:,} pairs); "
                        f"embeddings {'tied' if study.tied else 'untied'}.")
        hidden = study.to_frame().dropna(subset=["depth"])
        if len(hidden):
            top = hidden.loc[hidden["mean_raw"].idxmax()]
            headline.append(f"{study.model}: of {plural(len(hidden), 'site')} measured, hidden states are most "
                            f"anisotropic at {top['name']} (mean cosine {top['mean_raw']:.3f} raw, "
                            f"{top['mean_centred']:.3f} centred, over all pairs of {int(top['n_rows']):,} token rows "
                            f"gathered from the corpus sample).")
    first = studies[0].to_frame()
    gap = float((first["mean_raw"] - first["mean_centred"]).abs().max())
    verdict = (f"Centring changes the mean cosine by up to {gap:.2f} in {studies[0].model} (over the "
               f"{plural(len(first), 'matrix or site', 'matrices and sites')} measured; an isotropic cloud has mean "
               f"0 ± {1 / np.sqrt(studies[0].d_model):.3f}): "
               + ("a shared offset dominates raw cosines (> 0.2), so compare centred ones." if gap > 0.2
                  else "raw cosines are not dominated by a shared offset (≤ 0.2)."))
    result = {s.model: s for s in studies}
    if samples[0] is not None:  # hidden states again, each site's massive coordinates dropped (rows kept)
        lean, dropped = without_massive(samples[0])
        lean_table = anisotropy_study({}, lean, model=studies[0].model, tied=studies[0].tied, bins=bins, engine=engine,
                                      scheduler=scheduler).to_frame()
        full = first.dropna(subset=["depth"]).set_index("name")
        top = full["mean_raw"].idxmax()
        lean_top = lean_table.set_index("name").loc[top]
        verdict += rests_on(dropped, f"hidden states at {top} have mean cosine {full.loc[top, 'mean_raw']:.3f} raw, "
                            f"{full.loc[top, 'mean_centred']:.3f} centred",
                            f"{lean_top['mean_raw']:.3f} raw, {lean_top['mean_centred']:.3f} centred")
        headline.append(f"{studies[0].model} without massive coordinates: mean cosine at {top} "
                        f"{lean_top['mean_raw']:.3f} raw, {lean_top['mean_centred']:.3f} centred.")
        result.update(without_massive=lean_table.to_dict("records"), massive=dropped)
    figs = {"histograms": figures.histogram_grid(studies), "mean_cosine_vs_depth": figures.mean_cosine_curves(studies)}
    return finish(out, probe="anisotropy", title="Anisotropy of embeddings and hidden states",
                  question="Is the high cosine similarity of embeddings and hidden states meaning, or a shared "
                           "offset that mean-centring removes?",
                  result=result, headline=headline, verdict=verdict, figures_=figs,
                  tables={f"mean_cosine_{s.model}": s.to_frame().round(4) for s in studies},
                  settings={"sites": sites, "per_category": per_category, "positions": positions, "ctx": ctx,
                            "vocab_rows": vocab_rows, "bins": bins,
                            "rows": gathered.rows_description() if gathered is not None else None})
