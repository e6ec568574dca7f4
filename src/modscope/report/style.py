"""One figure style for every probe: the same two colours for trained vs twin, labelled axes, log scales."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TRAINED = "#1f5fa8"  # the trained model, everywhere
TWIN = "#d9822b"  # its random-init twin, everywhere
NULL = "#9a9a9a"  # null bands and reference lines
CATEGORY_CMAP = "tab10"

plt.rcParams.update({
    "figure.dpi": 100, "savefig.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.25, "font.size": 9, "legend.frameon": False,
})


def model_colour(name: str) -> str:
    """TWIN for random-init models, TRAINED otherwise."""
    return TWIN if name.startswith(("random:", "twin")) else TRAINED


def axes(ax=None, *, figsize=(5.5, 3.6)):
    """Return ``ax`` or a fresh one (the ``plot(ax=None)`` convention of every result)."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax


def grid(n: int, *, cols: int = 6, size: float = 2.2):
    """A figure with ``n`` square panels; returns (fig, flat list of n axes), extra panels hidden."""
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=(size * cols, size * rows), constrained_layout=True, squeeze=False)
    flat = list(axs.flat)
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]
