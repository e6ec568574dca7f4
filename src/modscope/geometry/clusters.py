"""Clusters in the residual stream (Cai et al. 2021): k by silhouette, and cosines raw, globally and cluster-centred."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modscope.errors import ModscopeError
from modscope.figures import CATEGORY_CMAP, NULL, axes, model_colour
from modscope.results import Result
from modscope.stats.spectral_clustering import kmeans, silhouettes

SILHOUETTE_FLOOR = 0.25  # Kaufman & Rousseeuw (1990): below 0.25 "no substantial structure has been found"
NULL_MARGIN = 0.05  # and clusters must beat one elongated Gaussian blob of the same covariance by this much


def principal_axes(centred: np.ndarray, k: int) -> np.ndarray:
    """[d, k] top eigenvectors of the float64 covariance X^T X of centred rows (the top principal axes)."""
    values, vectors = np.linalg.eigh(centred.T @ centred)
    return vectors[:, ::-1][:, :min(k, centred.shape[1])]


def silhouette(points: np.ndarray, assign: np.ndarray) -> float:
    """Mean silhouette s_i = (b_i - a_i) / max(a_i, b_i) (Rousseeuw 1987), Euclidean; 0 for singletons' rows."""
    labels, codes = np.unique(assign, return_inverse=True)
    if len(labels) < 2:
        return 0.0
    sq = (points ** 2).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * points @ points.T, 0.0))
    return float(silhouettes(dist, codes[None], len(labels))[0])


def pairwise_mean_cosine(vectors: np.ndarray, pairs: np.ndarray | None = None) -> float:
    """Mean cosine over all pairs i != j: (||sum_i u_i||^2 - n) / (n (n - 1)) with u_i = x_i / ||x_i||.

    ``pairs`` (int [n]) restricts to pairs in the same group: the pair-weighted mean over groups.
    """
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
    groups = np.zeros(len(units), dtype=int) if pairs is None else np.asarray(pairs)
    total, count = 0.0, 0
    for g in np.unique(groups):
        part = units[groups == g]
        m = len(part)
        if m > 1:
            total += float(np.sum(part.sum(0) ** 2) - m)
            count += m * (m - 1)
    return total / count if count else float("nan")


def type_cosines(vectors: np.ndarray, tokens: np.ndarray, docs: np.ndarray) -> tuple[float, float]:
    """Cai et al. (2021, sec. 3) type similarities, mean cosine over pairs of token occurrences:

    inter-type: pairs of *different* tokens in the *same* input; intra-type: pairs of the *same* token in
    *different* inputs (averaged per token type first, over types seen in two or more inputs).
    """
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
    inter_sum, inter_n = 0.0, 0
    for d in np.unique(docs):
        idx = np.flatnonzero(docs == d)
        sims = units[idx] @ units[idx].T
        different = tokens[idx][:, None] != tokens[idx][None]
        inter_sum += float(sims[different].sum())
        inter_n += int(different.sum())
    per_type = []
    for t in np.unique(tokens):
        idx = np.flatnonzero(tokens == t)
        if len(np.unique(docs[idx])) < 2:
            continue
        sims = units[idx] @ units[idx].T
        across = docs[idx][:, None] != docs[idx][None]
        per_type.append(float(sims[across].mean()))
    return (inter_sum / inter_n if inter_n else float("nan"), float(np.mean(per_type)) if per_type else float("nan"))


@dataclass(frozen=True)
class SiteClusters(Result):
    """Clusters of one site's hidden states and the cosines before and after centring.

    Fields:
        site: name. n_rows, d: the sample. k: clusters chosen (1 = no cluster structure).
        silhouettes: k -> mean silhouette of k-means on the PCA projection (k >= 2; dimensionless, -1..1).
        null_silhouette: best silhouette of the same k-means on a Gaussian with the projection's covariance.
        clusters: per cluster: size, share, first_token_share (rows at position 0), top_tokens (id, count),
            top_category and its share.
        mean_cosine_raw / _global / _clusterwise: mean cosine over all pairs of rows after no centring,
            subtracting the global mean, subtracting each row's cluster mean.
        within_cosine_global / _clusterwise: the same over pairs in the same cluster only.
        inter_type / intra_type (raw) and inter_type_clusterwise / intra_type_clusterwise: Cai et al.'s cosines.
    """

    site: str
    n_rows: int
    d: int
    k: int
    silhouettes: dict
    null_silhouette: float
    clusters: list
    mean_cosine_raw: float
    mean_cosine_global: float
    mean_cosine_clusterwise: float
    within_cosine_global: float
    within_cosine_clusterwise: float
    inter_type: float
    intra_type: float
    inter_type_clusterwise: float
    intra_type_clusterwise: float
    assignment: np.ndarray = field(repr=False)

    _json_exclude = ("assignment",)

    def plot(self, ax=None):
        """Mean silhouette against k, with the one-Gaussian null and the 0.25 floor."""
        ax = axes(ax)
        ks = sorted(self.silhouettes)
        ax.plot(ks, [self.silhouettes[k] for k in ks], "-o", ms=3, label=f"{self.site} (k = {self.k})")
        ax.axhline(self.null_silhouette, color=NULL, ls="--", label="one Gaussian (null)")
        ax.axhline(SILHOUETTE_FLOOR, color=NULL, ls=":", label="floor 0.25")
        ax.set_xlabel("clusters k")
        ax.set_ylabel("mean silhouette")
        ax.legend(fontsize=6)
        return ax


def choose_k(projected: np.ndarray, *, max_k: int, seed: int, floor: float = SILHOUETTE_FLOOR
             ) -> tuple[int, dict, np.ndarray]:
    """k = argmax_k silhouette(k-means_k) over 2..max_k, or 1 when the best is below ``floor``."""
    silhouettes, assigns = {}, {1: np.zeros(len(projected), dtype=int)}
    for k in range(2, min(max_k, len(projected) - 1) + 1):
        assigns[k] = kmeans(projected, k, n_init=4, seed=seed)
        silhouettes[k] = silhouette(projected, assigns[k])
    best = max(silhouettes, key=silhouettes.get) if silhouettes else 1
    k = best if silhouettes and silhouettes[best] >= floor else 1
    return k, silhouettes, assigns[k]


def site_clusters(states: np.ndarray, *, site: str = "site", positions: np.ndarray | None = None,
                  tokens: np.ndarray | None = None, docs: np.ndarray | None = None,
                  categories: np.ndarray | None = None, max_k: int = 6, pca_dims: int = 10,
                  max_rows: int = 1000, seed: int = 0) -> SiteClusters:
    """Cluster one site's states and measure cosines raw, globally centred and cluster-wise centred.

    Criterion: k-means (k-means++, 4 restarts) on the top ``pca_dims`` principal components of the centred
    states, k = argmax mean silhouette over 2..max_k; k = 1 when that silhouette is below 0.25 (Kaufman &
    Rousseeuw) or below the null + 0.05. The null is the best silhouette of the same k-means on a Gaussian sample
    with the projection's covariance (one blob, as elongated as the data).
    Silhouettes use a seeded subsample of ``max_rows`` rows; cosines use all rows.

    Args:
        states: [n, d] hidden states. positions, tokens, docs, categories: per-row metadata (optional;
            tokens and docs are needed for the type cosines).

    Returns:
        SiteClusters.
    """
    x = np.asarray(states, dtype=np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ModscopeError(f"{site}: clustering needs an [n, d] array with n >= 4 rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ModscopeError(f"{site}: hidden states contain NaN or inf; recapture the store")
    n = len(x)
    rng = np.random.default_rng(seed)
    centred = x - x.mean(0)
    projected = centred @ principal_axes(centred[rng.choice(n, min(n, 4 * max_rows), replace=False)], pca_dims)
    sub = np.sort(rng.choice(n, min(n, max_rows), replace=False))
    values, vectors = np.linalg.eigh(np.atleast_2d(np.cov(projected[sub].T)))
    gauss = rng.normal(size=(len(sub), len(values))) * np.sqrt(np.clip(values, 0, None)) @ vectors.T
    null_ks = range(2, max(2, min(max_k, len(sub) - 1)) + 1)
    null = max(silhouette(gauss, kmeans(gauss, j, n_init=4, seed=seed)) for j in null_ks)
    k, silhouettes, sub_assign = choose_k(projected[sub], max_k=max_k, seed=seed,
                                          floor=max(SILHOUETTE_FLOOR, null + NULL_MARGIN))
    # every row joins the nearest centre of the subsample's clusters
    centres = np.stack([projected[sub][sub_assign == c].mean(0) for c in range(k)])
    sq_distances = (projected ** 2).sum(1)[:, None] - 2 * projected @ centres.T + (centres ** 2).sum(1)[None]
    assign = np.maximum(sq_distances, 0.0).argmin(1)
    means = np.stack([x[assign == c].mean(0) if (assign == c).any() else x.mean(0) for c in range(k)])
    clusterwise = x - means[assign]
    described = describe(assign, k, positions, tokens, categories)
    if tokens is not None and docs is not None:
        tokens, docs = np.asarray(tokens), np.asarray(docs)
        inter, intra = type_cosines(x, tokens, docs)
        inter_c, intra_c = type_cosines(clusterwise, tokens, docs)
    else:
        inter = intra = inter_c = intra_c = float("nan")
    return SiteClusters(site=site, n_rows=n, d=x.shape[1], k=k, silhouettes=silhouettes, null_silhouette=float(null),
                        clusters=described, mean_cosine_raw=pairwise_mean_cosine(x),
                        mean_cosine_global=pairwise_mean_cosine(centred),
                        mean_cosine_clusterwise=pairwise_mean_cosine(clusterwise),
                        within_cosine_global=pairwise_mean_cosine(centred, assign),
                        within_cosine_clusterwise=pairwise_mean_cosine(clusterwise, assign),
                        inter_type=inter, intra_type=intra, inter_type_clusterwise=inter_c,
                        intra_type_clusterwise=intra_c, assignment=assign)


def describe(assign: np.ndarray, k: int, positions, tokens, categories, top: int = 5) -> list[dict]:
    """What each cluster is: its size, its share of first-token rows, its commonest tokens and category."""
    out = []
    for c in range(k):
        members = assign == c
        row = {"cluster": c, "size": int(members.sum()), "share": float(members.mean())}
        if positions is not None:
            row["first_token_share"] = float((np.asarray(positions)[members] == 0).mean()) if members.any() else 0.0
        if tokens is not None and members.any():
            ids, counts = np.unique(np.asarray(tokens)[members], return_counts=True)
            order = np.argsort(-counts, kind="stable")[:top]
            row["top_tokens"] = [[int(ids[j]), int(counts[j])] for j in order]
        if categories is not None and members.any():
            names, counts = np.unique(np.asarray(categories)[members], return_counts=True)
            row["top_category"] = str(names[counts.argmax()])
            row["top_category_share"] = float(counts.max() / counts.sum())
        out.append(row)
    return out


@dataclass(frozen=True)
class ClusterStudy(Result):
    """Clusters of every site of one model. Fields: model, sites (site -> SiteClusters), settings."""

    model: str
    sites: dict[str, SiteClusters]
    settings: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        cols = ("site", "n_rows", "k", "null_silhouette", "mean_cosine_raw", "mean_cosine_global",
                "mean_cosine_clusterwise", "within_cosine_global", "within_cosine_clusterwise", "inter_type",
                "intra_type", "inter_type_clusterwise", "intra_type_clusterwise")
        return pd.DataFrame([{**{c: getattr(r, c) for c in cols},
                              "best_silhouette": max(r.silhouettes.values()) if r.silhouettes else float("nan"),
                              "largest_cluster_share": max(c["share"] for c in r.clusters)}
                             for r in self.sites.values()])

    def plot(self, ax=None):
        """Mean cosine per site: raw, globally centred, cluster-wise centred (and within-cluster, global)."""
        ax = axes(ax)
        frame = self.to_frame()
        x = np.arange(len(frame))
        colour = model_colour(self.model)
        ax.plot(x, frame["mean_cosine_raw"], "-o", ms=3, color=colour, label=f"{self.model} raw")
        ax.plot(x, frame["within_cosine_global"], "--", color=colour, label="within-cluster, global centring")
        ax.plot(x, frame["mean_cosine_clusterwise"], ":", color=colour, label="cluster-wise centring")
        ax.axhline(0, color=NULL, lw=1)
        ax.set_xticks(x, frame["site"], rotation=90, fontsize=6)
        ax.set_ylabel("mean pairwise cosine")
        ax.legend(fontsize=6)
        return ax


def scatter(states: np.ndarray, assign: np.ndarray, ax=None, *, title: str = ""):
    """The states on their first two principal components, coloured by cluster."""
    ax = axes(ax)
    x = np.asarray(states, dtype=np.float64)
    centred = x - x.mean(0)
    pcs = centred @ principal_axes(centred, 2)
    ax.scatter(pcs[:, 0], pcs[:, 1], c=assign, cmap=CATEGORY_CMAP, s=4, vmin=0, vmax=9)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title(title, fontsize=7)
    return ax
