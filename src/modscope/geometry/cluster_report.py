"""The model-facing side of ``modscope clusters``: capture sites with token metadata, cluster, write the page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modscope.errors import ModscopeError
from modscope.geometry.clusters import ClusterStudy, scatter, site_clusters
from modscope.geometry.gather import site_depth


def cluster_study(model, corpus, *, sites: str = "embed,resid_post.*", per_category: int = 2,
                  positions: str = "all", ctx: int = 128, max_k: int = 6, pca_dims: int = 10,
                  max_rows: int = 1000, seed: int = 0) -> tuple[ClusterStudy, dict]:
    """Capture ``sites`` of ``model`` on a category-balanced sample and run ``site_clusters`` on each site.

    Returns:
        (ClusterStudy, site -> the [n, d] states, for the scatter figure).
    """
    from modscope.capture import capture

    sample = corpus.sample(per_category=per_category, seed=seed)
    store = capture(model, sample, sites, positions=positions, ctx=ctx)
    meta = store.meta
    tokens = meta["token"].to_numpy()
    arrays, results = {}, {}
    for site in sorted(store.sites, key=lambda s: (site_depth(s)[1], s)):
        arrays[site] = states = np.asarray(store[site], dtype=np.float32).reshape(len(meta), -1)
        result = site_clusters(states, site=site, positions=meta["position"].to_numpy(), tokens=tokens,
                               docs=meta["doc"].to_numpy(), categories=meta["category"].to_numpy(), max_k=max_k,
                               pca_dims=pca_dims, max_rows=max_rows, seed=seed)
        for cluster in result.clusters:
            cluster["top_tokens"] = [[model.tokenizer.decode([tok]), count]
                                     for tok, count in cluster.get("top_tokens", [])]
        results[site] = result
    settings = {"per_category": per_category, "positions": positions, "ctx": ctx, "max_k": max_k,
                "pca_dims": pca_dims, "max_rows": max_rows, "seed": seed, "n_docs": len(sample),
                "rows": store.rows_description()}
    return ClusterStudy(model=model.name, sites=results, settings=settings), arrays


def describe_clusters(result) -> str:
    return "; ".join(f"{c['size']} rows ({100 * c['share']:.0f}%, first-token share "
                     f"{100 * c.get('first_token_share', 0):.0f}%, top tokens "
                     f"{', '.join(repr(t) for t, _ in c.get('top_tokens', [])[:3])})"
                     for c in sorted(result.clusters, key=lambda c: c["size"]))


def clusters_report(models: Sequence, corpus, *, sites: str = "embed,resid_post.*", per_category: int = 2,
                    positions: str = "all", ctx: int = 128, max_k: int = 6, seed: int = 0,
                    out: Path | None = None) -> dict:
    """Seed 003 / Cai et al. (2021): clusters per site, cosines raw / centred / cluster-centred, trained vs twin."""
    from modscope.figures import grid, subplots
    from modscope.geometry.figures import mean_cosine_curves
    from modscope.geometry.reports import finish

    if max_k < 2:
        raise ModscopeError(f"--max-k must be >= 2 (k = 1 is always allowed), got {max_k}")
    studies, states = [], []
    for model in models:
        study, arrays = cluster_study(model, corpus, sites=sites, per_category=per_category, positions=positions,
                                      ctx=ctx, max_k=max_k, seed=seed)
        studies.append(study)
        states.append(arrays)
    headline = []
    for study in studies:
        frame = study.to_frame()
        clustered = frame[frame["k"] > 1]
        headline.append(
            f"{study.model}: {len(clustered)} of {len(frame)} sites split into clusters (silhouette >= 0.25 and > "
            f"one-Gaussian null + 0.05); mean cosine raw {frame['mean_cosine_raw'].mean():.3f}, globally centred "
            f"{frame['mean_cosine_global'].mean():.3f}, cluster-wise centred "
            f"{frame['mean_cosine_clusterwise'].mean():.3f} (averaged over sites; isotropic reference 0); "
            f"within-cluster cosine after global centring "
            f"{frame['within_cosine_global'].mean():.3f} vs after cluster-wise centring "
            f"{frame['within_cosine_clusterwise'].mean():.3f}.")
        headline.append(f"{study.model}: inter-type cosine (different tokens, same input) "
                        f"{frame['inter_type'].mean():.3f}, intra-type (same token, different inputs) "
                        f"{frame['intra_type'].mean():.3f} raw; "
                        f"{frame['inter_type_clusterwise'].mean():.3f} / {frame['intra_type_clusterwise'].mean():.3f} "
                        f"after cluster-wise centring (averaged over sites).")
        for site, result in study.sites.items():
            if result.k > 1:
                headline.append(f"{study.model} {site}: k = {result.k}: {describe_clusters(result)}.")
                break
    first = studies[0].to_frame()
    n_clustered = int((first["k"] > 1).sum())
    residual = float(first["within_cosine_clusterwise"].abs().max())
    if n_clustered == 0:
        verdict = (f"{studies[0].model}: no site of {len(first)} splits into clusters beyond one elongated Gaussian "
                   f"blob (silhouette criterion); the anisotropy is a shared offset, not clusters.")
    else:
        verdict = (f"{studies[0].model}: {n_clustered} of {len(first)} sites have clusters; after cluster-wise "
                   f"centring the within-cluster mean cosine is at most {residual:.3f} in absolute value "
                   + ("(≈ 0 as Cai et al. report, but near 0 by construction: a cluster's centred vectors sum to "
                      "zero; global centring alone leaves |mean cosine| up to "
                      f"{float(first['mean_cosine_global'].abs().max()):.3f})." if residual < 0.1 else
                      "(not ≈ 0: the clusters alone do not explain the anisotropy)."))
        for twin in studies[1:]:
            n_twin = int((twin.to_frame()["k"] > 1).sum())
            if n_twin:
                verdict += (f" {twin.model} also splits at {n_twin} of {len(twin.sites)} sites, so having clusters "
                            "is not by itself a product of training; what the clusters are (headline) is.")
    figs = {"mean_cosine_by_site": mean_cosine_curves(studies, figsize=(5.5, 3.6))}
    site_names = list(studies[0].sites)
    cells = [(study.sites[site], arrays[site], f"{study.model} {site}") for study, arrays in zip(studies, states)
             for site in site_names]
    fig, panels = grid(len(cells), cols=6)
    for ax, (result, array, name) in zip(panels, cells):
        scatter(array, result.assignment, ax, title=f"{name} k={result.k}")
    figs["clusters_pca"] = fig
    fig2, ax2 = subplots()
    for site in site_names[:: max(1, len(site_names) // 4)]:
        studies[0].sites[site].plot(ax2)
    figs["silhouettes"] = fig2
    return finish(out, probe="clusters", title="Clusters in the residual stream",
                  question="Do hidden states lie in a few clusters, and does re-centring each cluster bring the mean "
                           "cosine to about 0 (Cai et al. 2021)?",
                  result={s.model: s for s in studies}, headline=headline, verdict=verdict, figures_=figs,
                  tables={f"clusters_{s.model}": s.to_frame().round(4) for s in studies},
                  settings={"sites": sites, "per_category": per_category, "positions": positions, "ctx": ctx,
                            "max_k": max_k, "seed": seed, "rows": studies[0].settings["rows"]})
