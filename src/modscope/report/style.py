"""One figure style for every probe: the same two colours for trained vs twin, labelled axes, log scales.

Conventions for probe authors (the run report puts every probe's key figure side by side, so they must agree):

- **Colours.** The trained model is always ``TRAINED`` (blue), its random-init twin always ``TWIN`` (orange), nulls,
  null bands and reference lines always ``NULL`` (grey). ``model_colour(name)`` picks between the first two from a
  model name. Categories (corpus categories, clusters) use ``CATEGORY_CMAP``; never reuse blue/orange for them.
- **Figures.** Get axes with ``axes(ax)`` (the ``Result.plot(ax=None)`` convention: draw into ``ax`` if given, else
  into a fresh 5.5 x 3.6 in figure) and panels with ``grid(n)``. Return the axes from ``plot``; the page takes
  ``ax.figure``. The first figure passed to ``write_probe`` is the probe's *key figure*: it is the one the run report
  shows, so make it the figure that answers the question on its own.
- **Axes.** Every axis is labelled with the quantity *and its unit*: ``label(ax, x="layer", y="MI", y_unit="nats")``
  writes "MI (nats)". Unitless quantities (cosines, ratios, counts) still get a name.
- **Log scales.** Use a log axis when the plotted values span two or more decades (spectra, singular values, loss
  curves over steps, densities): ``log_if_decades(ax, values, axis="y")`` decides that from the data.
- **Nulls.** Draw the null next to the measurement, not only in the text: ``null_band(ax, x, mean, sd)`` shades
  mean ± k sd in ``NULL``; horizontal reference values (uniform loss, independence) as ``reference(ax, y, label)``.
- **Legends** name the models ("trained", "random twin") or the null, never "series 1".
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TRAINED = "#1f5fa8"  # the trained model, everywhere
TWIN = "#d9822b"  # its random-init twin, everywhere
NULL = "#9a9a9a"  # null bands and reference lines
ESTIMATE = "#6a3d9a"  # derived estimates (bias-corrected, extrapolated) of a quantity drawn in TRAINED
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


def label(ax, *, x: str | None = None, y: str | None = None, x_unit: str = "", y_unit: str = ""):
    """Label the axes as "quantity (unit)"; returns ``ax``."""
    if x is not None:
        ax.set_xlabel(f"{x} ({x_unit})" if x_unit else x)
    if y is not None:
        ax.set_ylabel(f"{y} ({y_unit})" if y_unit else y)
    return ax


def spans_decades(values: Sequence[float] | np.ndarray, decades: float = 2.0) -> bool:
    """Whether the positive finite ``values`` span at least ``decades`` powers of ten (max/min >= 10**decades)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    return v.size >= 2 and bool(np.log10(v.max() / v.min()) >= decades)


def log_if_decades(ax, values, *, axis: str = "y", decades: float = 2.0) -> bool:
    """Put ``axis`` ("x" or "y") on a log scale when ``values`` span ``decades`` or more; returns whether it did."""
    use_log = spans_decades(values, decades)
    if use_log:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    return use_log


def null_band(ax, x, mean, sd, *, k: float = 2.0, label: str | None = "null ± 2 sd"):
    """Shade the null's mean ± ``k`` sd over ``x`` in the NULL colour, with its mean as a dashed line."""
    mean, sd = np.broadcast_to(mean, np.shape(x)), np.broadcast_to(sd, np.shape(x))
    ax.fill_between(x, mean - k * sd, mean + k * sd, color=NULL, alpha=0.25, linewidth=0, label=label)
    ax.plot(x, mean, color=NULL, linestyle="--", linewidth=1)
    return ax


def reference(ax, y: float, label: str):
    """A horizontal reference value (uniform prediction, independence, chance) as a grey dotted line."""
    ax.axhline(y, color=NULL, linestyle=":", linewidth=1, label=label)
    return ax
