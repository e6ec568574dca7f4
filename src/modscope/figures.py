"""One figure style for every probe, drawn on ``matplotlib.figure.Figure`` objects so nothing global changes.

No pyplot and no ``matplotlib.use``: a notebook user's backend and rcParams stay as they were. A figure made here is
not registered with pyplot (it is freed with its last reference, nothing to close); to show one in a notebook,
display ``ax.figure`` (Jupyter renders Figure objects) or save it.

Conventions for probe authors (the run report puts every probe's key figure side by side, so they must agree):

- **Colours.** The trained model is always ``TRAINED`` (blue), its random-init twin always ``TWIN`` (orange), nulls,
  null bands and reference lines always ``NULL`` (grey). ``model_colour(name)`` picks between the first two from a
  model name. Categories (corpus categories, clusters) use ``CATEGORY_CMAP``; never reuse blue/orange for them.
- **Figures.** Get axes with ``axes(ax)`` (the ``Result.plot(ax=None)`` convention: draw into ``ax`` if given, else
  into a fresh 5.5 x 3.6 in figure), several with ``subplots(...)`` and panels with ``grid(n)``. Return the axes
  from ``plot``; the page takes ``ax.figure``. The first figure passed to ``write_probe`` is the probe's *key
  figure*: it is the one the run report shows, so make it the figure that answers the question on its own.
- **Axes.** Every axis is labelled with the quantity *and its unit*: ``label(ax, x="layer", y="MI", y_unit="nats")``
  writes "MI (nats)". Unitless quantities (cosines, ratios, counts) still get a name.
- **Log scales.** Use a log axis when the plotted values span two or more decades (spectra, singular values, loss
  curves over steps, densities): ``log_if_decades(ax, values, axis="y")`` decides that from the data.
- **Nulls.** Draw the null next to the measurement, not only in the text: ``null_band(ax, x, mean, sd)`` shades
  mean ± k sd in ``NULL``; horizontal reference values (uniform loss, independence) as ``reference(ax, y, label)``.
- **Legends** name the models ("trained", "random twin") or the null, never "series 1".
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

TRAINED = "#1f5fa8"  # the trained model, everywhere
TWIN = "#d9822b"  # its random-init twin, everywhere
NULL = "#9a9a9a"  # null bands and reference lines
ESTIMATE = "#6a3d9a"  # derived estimates (bias-corrected, extrapolated) of a quantity drawn in TRAINED
CATEGORY_CMAP = "tab10"
DPI = 110  # of saved PNGs
# Applied only while our figures, axes, titles, legends and texts are created, never globally.
STYLE = {"axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
         "font.size": 9, "legend.frameon": False}


def _styled(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return method(*args, **kwargs)

    return call


class StyledAxes(Axes):
    """Axes whose titles, legends, texts and twins take ``STYLE`` when they are made (they read rcParams then)."""


class StyledFigure(Figure):
    """A Figure whose suptitle and colorbars take ``STYLE``."""


for _name in ("set_title", "legend", "text", "annotate", "twinx", "twiny"):
    setattr(StyledAxes, _name, _styled(getattr(Axes, _name)))
for _name in ("suptitle", "colorbar"):
    setattr(StyledFigure, _name, _styled(getattr(Figure, _name)))


def model_colour(name: str) -> str:
    """TWIN for random-init models, TRAINED otherwise."""
    return TWIN if name.startswith(("random:", "twin")) else TRAINED


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=(5.5, 3.6), **kwargs):
    """A new styled ``Figure`` (constrained layout) and its axes, as ``Figure.subplots`` returns them."""
    kwargs["subplot_kw"] = {"axes_class": StyledAxes, **kwargs.get("subplot_kw", {})}
    with matplotlib.rc_context(STYLE):
        fig = StyledFigure(figsize=figsize, layout="constrained")
        return fig, fig.subplots(nrows, ncols, **kwargs)


def axes(ax=None, *, figsize=(5.5, 3.6)):
    """Return ``ax`` or a fresh one (the ``plot(ax=None)`` convention of every result)."""
    return ax if ax is not None else subplots(figsize=figsize)[1]


def grid(n: int, *, cols: int = 6, size: float = 2.2):
    """A figure with ``n`` square panels; returns (fig, flat list of n axes), extra panels hidden."""
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axs = subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    flat = list(axs.flat)
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes at ``DPI`` (drawn under ``STYLE``: tick spacing reads the font size then)."""
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


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
