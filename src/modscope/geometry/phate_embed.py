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


def phate_installed() -> bool:
    """Whether the optional ``phate`` package can be imported (the demo draws PHATE only then)."""
    import importlib.util

    return importlib.util.find_spec("phate") is not None


def phate_report(samples: Sequence, seed: int = 0) -> tuple:
    """PHATE of every site of every gathered sample (seed 001: next to PCA, same category colours).

    Returns (figure, {"model:site": PhateResult}, one headline line comparing the 5-NN category accuracy on PHATE
    with the top-2 PCs and with the label-permutation null, averaged over sites, per model).
    """
    results = [phate_embedding(g.arrays[s], g.labels, groups=g.groups, site=s, model=g.model, seed=seed)
               for g in samples for s in g.sites]
    lines = []
    for model in dict.fromkeys(r.model for r in results):
        mine = [r for r in results if r.model == model]
        above = sum(r.accuracy > r.null_mean + 2 * r.null_sd for r in mine)
        lines.append(f"{model}: 5-NN category accuracy on PHATE {np.mean([r.accuracy for r in mine]):.2f}, on the "
                     f"top-2 PCs {np.mean([r.pca_accuracy for r in mine]):.2f}, label-permutation null "
                     f"{np.mean([r.null_mean for r in mine]):.2f} (mean over {len(mine)} sites); PHATE above "
                     f"null + 2 sd at {above}/{len(mine)}")
    fig, panels = grid(len(results), cols=6)  # one panel per (model, site); the legend on the first
    for ax, result in zip(panels, results):
        result.plot(ax)
    if results:
        panels[0].legend(fontsize=5, markerscale=2)
    return fig, {f"{r.model}:{r.site}": r for r in results}, "PHATE — " + "; ".join(lines) + "."


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
    How well the 2-D picture keeps the categories apart (``category_knn_accuracy``, k = 5, leave-one-out):
    accuracy on the PHATE coordinates, ``pca_accuracy`` on the top-2 principal components of the same rows (the
    PCA scatter's picture), and ``null_mean`` / ``null_sd`` of the PHATE accuracy with the labels permuted
    (200 permutations; chance given the category sizes). ``other_documents``: each row's neighbours were taken
    from other documents only (``groups`` given), so one document's rows cannot vouch for each other.
    """

    site: str
    model: str
    coordinates: np.ndarray = field(repr=False)
    labels: list = field(repr=False)
    knn: int = 5
    decay: int = 40
    t: str | int = "auto"
    accuracy: float = float("nan")
    pca_accuracy: float = float("nan")
    null_mean: float = float("nan")
    null_sd: float = float("nan")
    other_documents: bool = False

    _json_exclude = ("coordinates",)

    def plot(self, ax=None):
        ax = axes(ax)
        labels = np.asarray(self.labels)
        cmap = __import__("matplotlib").colormaps[CATEGORY_CMAP]
        for index, name in enumerate(dict.fromkeys(self.labels)):
            part = self.coordinates[labels == name]
            ax.scatter(part[:, 0], part[:, 1], s=5, color=cmap(index % 10), label=str(name)[:12])
        ax.set_title(f"{self.model} {self.site}\n5-NN {self.accuracy:.2f} · PCA {self.pca_accuracy:.2f} · "
                     f"chance {self.null_mean:.2f}", fontsize=6)
        ax.set_xlabel("PHATE 1")
        ax.set_ylabel("PHATE 2")
        return ax


def category_knn_accuracy(coordinates: np.ndarray, labels: Sequence, *, groups: Sequence | None = None, k: int = 5,
                          permutations: int = 0, seed: int = 0) -> tuple[float, np.ndarray]:
    """Leave-one-out k-nearest-neighbour accuracy of the categories in an embedding, and its label-permutation null.

    Row i is predicted as the commonest label among its k nearest other rows (Euclidean; a tie goes to the label
    holding the nearest tied neighbour); accuracy = share of rows predicted right, in [0, 1]. 1 = every row sits
    among its own category; chance ~ sum_c share_c^2. The null keeps the neighbours and permutes the labels (of
    whole groups when ``groups`` is given and each group has one label).
    ``groups`` (e.g. the document of each row): neighbours from the row's own group are not counted, so rows of
    one document cannot vouch for each other; the score then asks for category structure beyond the document.

    Returns:
        (accuracy, null accuracies [permutations]).
    """
    x = np.asarray(coordinates, dtype=np.float64)
    codes = np.unique(np.asarray([str(v) for v in labels]), return_inverse=True)[1]
    if x.ndim != 2 or len(x) != len(codes) or len(x) <= k or (groups is not None and len(groups) != len(x)):
        raise ModscopeError(f"category accuracy needs more rows than k = {k} and one label per row, got "
                            f"{x.shape} and {len(codes)} labels")
    squared = (x * x).sum(1)
    distances = squared[:, None] + squared[None, :] - 2 * x @ x.T
    np.fill_diagonal(distances, np.inf)
    if groups is not None:
        group = np.unique(np.asarray([str(v) for v in groups]), return_inverse=True)[1]
        distances[group[:, None] == group[None, :]] = np.inf
        if np.bincount(group).max() > len(x) - k:
            raise ModscopeError(f"category accuracy: fewer than k = {k} rows outside the largest group")
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    # equal counts: the label holding the nearest of the tied neighbours wins (0.5^(r+1) outweighs all later ranks)
    rank_weight = 1.0 + 1e-3 * 0.5 ** np.arange(1, k + 1)

    def score(c: np.ndarray) -> float:
        votes = np.zeros((len(c), c.max() + 1))
        np.add.at(votes, (np.repeat(np.arange(len(c)), k), c[nearest].ravel()), np.tile(rank_weight, len(c)))
        return float((votes.argmax(1) == c).mean())

    rng = np.random.default_rng(seed)
    if groups is not None and all(len(set(codes[group == g])) == 1 for g in range(group.max() + 1)):
        # rows of a group share a label: permute whole groups' labels, the unit the score can tell apart
        first = np.unique(group, return_index=True)[1]
        return score(codes), np.array([score(rng.permutation(codes[first])[group]) for _ in range(permutations)])
    return score(codes), np.array([score(rng.permutation(codes)) for _ in range(permutations)])


def top2_pca(states: np.ndarray) -> np.ndarray:
    """Scores on the top two principal components (centred, float64 SVD)."""
    x = np.asarray(states, dtype=np.float64)
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u[:, :2] * s[:2]


def phate_embedding(states: np.ndarray, labels: Sequence, *, groups: Sequence | None = None, site: str = "site",
                    model: str = "", knn: int = 5, decay: int = 40, t: str | int = "auto",
                    seed: int = 0) -> PhateResult:
    """PHATE of ``states`` [n, d] into 2 dimensions (the ``phate`` package, its defaults but a fixed seed).

    ``groups`` (document per row), when given, keeps each row's own document out of its category neighbours.
    """
    phate = require_phate()
    x = np.asarray(states, dtype=np.float64)
    if x.ndim != 2 or len(x) <= knn:
        raise ModscopeError(f"{site}: PHATE needs more rows than --knn {knn}, got shape {x.shape}")
    operator = phate.PHATE(n_components=2, knn=knn, decay=decay, t=t, random_state=seed, verbose=0, n_jobs=1)
    coordinates = np.asarray(operator.fit_transform(x))
    accuracy, null = category_knn_accuracy(coordinates, labels, groups=groups, permutations=200, seed=seed)
    pca_accuracy, _ = category_knn_accuracy(top2_pca(x), labels, groups=groups)
    return PhateResult(site=site, model=model, coordinates=coordinates, labels=[str(v) for v in labels], knn=knn,
                       decay=decay, t=t, accuracy=accuracy, pca_accuracy=pca_accuracy, null_mean=float(null.mean()),
                       null_sd=float(null.std(ddof=1)), other_documents=groups is not None)
