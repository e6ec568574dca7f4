"""Feature density over training: how often each latent fires on held-out tokens, checkpoint by checkpoint.

Ultra-rare features may be dead features that have not finished dying (nostalgebraist's hypothesis in the seed
thread of issue 8): their log-density would fall steadily instead of settling. ``density_history`` measures
that trend as the least-squares slope of log10 density over the last checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.results import Result


def feature_firing_counts(codes: np.ndarray) -> np.ndarray:
    """Tokens on which each latent is active: ``counts[i] = #{t : z[t, i] > 0}`` for codes [tokens, n_latents]."""
    return (np.asarray(codes) > 0).sum(axis=0).astype(np.int64)


def log10_density(counts: np.ndarray, n_tokens: int) -> np.ndarray:
    """``log10(counts / n_tokens)`` with a count of 0 floored at half a count (``0.5 / n_tokens``)."""
    return np.log10(np.maximum(np.asarray(counts, dtype=np.float64), 0.5) / n_tokens)


@dataclass(frozen=True)
class DensityHistory(Result):
    """Feature densities at training checkpoints, measured on the same held-out tokens each time.

    Attributes:
        tokens_seen: training tokens consumed at each checkpoint [n_checkpoints].
        n_heldout: held-out tokens per measurement; the smallest measurable non-zero density is ``1/n_heldout``.
        threshold: density (fraction of tokens) below which a live feature counts as ultra-rare.
        bin_edges: edges of the log10-density bins [n_bins + 1] (log10 of a fraction of tokens).
        histogram: live features per log10-density bin at each checkpoint [n_checkpoints, n_bins].
        dead: features that fire on no held-out token, per checkpoint [n_checkpoints].
        ultra_rare: live features with density < threshold, per checkpoint [n_checkpoints].
        window: checkpoints (the last ones) over which trends are fitted.
        ultra_rare_features: indices of the features ultra-rare at the last checkpoint.
        ultra_rare_slopes: their slopes of log10 density, in decades per million training tokens (dead
            checkpoints floored at half a count, so a feature that dies has a negative slope).
        ultra_rare_slope_se: standard errors of those slopes (from the fit's residuals; 0 with 2 checkpoints).
        n_falling / n_rising: ultra-rare features whose slope is below / above 0 by more than 2 standard errors
            (null: a feature of stationary density has slope 0 up to sampling noise).
        densities: the raw densities [n_checkpoints, n_latents] (kept for plots, not in the JSON).
    """

    tokens_seen: np.ndarray
    n_heldout: int
    threshold: float
    bin_edges: np.ndarray
    histogram: np.ndarray
    dead: np.ndarray
    ultra_rare: np.ndarray
    window: int
    ultra_rare_features: np.ndarray
    ultra_rare_slopes: np.ndarray
    ultra_rare_slope_se: np.ndarray
    n_falling: int
    n_rising: int
    densities: np.ndarray

    _json_exclude = ("densities",)
    _frame_columns = ("tokens_seen", "dead", "ultra_rare")

    def plot(self, ax=None):
        """Heat map: x = training tokens, y = log10 density, colour = number of features; dead on the bottom row."""
        import matplotlib.colors as mcolors

        from modscope.figures import NULL, axes, label

        ax = axes(ax, figsize=(6.5, 3.8))
        n_ckpt = len(self.tokens_seen)
        x_edges = np.arange(n_ckpt + 1) - 0.5
        dead_row = self.bin_edges[0] - (self.bin_edges[1] - self.bin_edges[0])
        y_edges = np.concatenate([[dead_row], self.bin_edges])
        image = np.concatenate([self.dead[:, None], self.histogram], axis=1).T.astype(float)
        image[image == 0] = np.nan
        mesh = ax.pcolormesh(x_edges, y_edges, image, cmap="viridis", norm=mcolors.LogNorm(vmin=1))
        ax.figure.colorbar(mesh, ax=ax, label="features")
        ax.axhline(np.log10(self.threshold), color="k", ls="--", lw=1)
        ax.axhline(self.bin_edges[0], color=NULL, lw=1)
        ax.set_xticks(range(n_ckpt), [f"{t / 1e6:.2g}M" if t >= 1e5 else f"{t / 1e3:.0f}k" for t in self.tokens_seen],
                      rotation=45)
        label(ax, x="training tokens", y="log10 density (bottom row: dead)")
        ax.set_title(f"feature density on {self.n_heldout} held-out tokens (dashed: ultra-rare threshold)")
        return ax

    def plot_trends(self, ax=None, max_features: int = 40):
        """log10 density of the ultra-rare features over the checkpoints (falling lines = heading to dead)."""
        from modscope.figures import NULL, TRAINED, TWIN, axes, label

        ax = axes(ax)
        logd = np.log10(np.maximum(self.densities, 0.5 / self.n_heldout))
        for feature, slope in list(zip(self.ultra_rare_features, self.ultra_rare_slopes))[:max_features]:
            ax.plot(self.tokens_seen, logd[:, feature], color=TWIN if slope < 0 else TRAINED, alpha=0.6, lw=1)
        ax.axhline(np.log10(0.5 / self.n_heldout), color=NULL, ls=":", label="dead (half-count floor)")
        ax.axhline(np.log10(self.threshold), color=NULL, ls="--", label="ultra-rare threshold")
        label(ax, x="training tokens", y="log10 density")
        ax.set_title(f"ultra-rare features: {self.n_falling} falling, {self.n_rising} rising (>2 s.e.)")
        ax.legend(loc="lower left")
        return ax


def _slopes(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slopes of each column of ``y`` [n_points, n_series] on ``x`` and their standard errors."""
    xc = x - x.mean()
    sxx = float((xc**2).sum())
    slope = (xc[:, None] * (y - y.mean(axis=0))).sum(axis=0) / sxx
    if len(x) <= 2:
        return slope, np.zeros_like(slope)
    resid = y - y.mean(axis=0) - slope[None, :] * xc[:, None]
    return slope, np.sqrt((resid**2).sum(axis=0) / (len(x) - 2) / sxx)


def density_history(
    counts: np.ndarray,
    n_heldout: int,
    tokens_seen: np.ndarray,
    *,
    threshold: float = 1e-5,
    window: int = 5,
    bins_per_decade: int = 4,
) -> DensityHistory:
    """Summarise firing counts at checkpoints into density histograms, dead/ultra-rare counts and trends.

    Args:
        counts: held-out tokens on which each feature fired, per checkpoint [n_checkpoints, n_latents].
        n_heldout: held-out tokens per checkpoint (the denominator of every density).
        tokens_seen: training tokens consumed at each checkpoint [n_checkpoints].
        threshold: density below which a live feature counts as ultra-rare (a fraction of tokens).
        window: number of final checkpoints over which each ultra-rare feature's trend is fitted.
        bins_per_decade: resolution of the log10-density histogram.

    Returns:
        DensityHistory. A feature's trend is the OLS slope of ``log10 max(count, 1/2) / n_heldout`` against
        training tokens (in millions) over the last ``window`` checkpoints.
    """
    counts = np.asarray(counts, dtype=np.int64)
    tokens_seen = np.asarray(tokens_seen, dtype=np.int64)
    if counts.ndim != 2 or len(counts) != len(tokens_seen) or n_heldout <= 0:
        raise ModscopeError(f"counts must be [n_checkpoints, n_latents] matching tokens_seen; got {counts.shape}, "
                            f"{tokens_seen.shape}, n_heldout={n_heldout}")
    densities = counts / n_heldout
    low = min(np.floor(np.log10(1.0 / n_heldout)), np.floor(np.log10(threshold)))
    bin_edges = np.linspace(low, 0.0, int(-low) * bins_per_decade + 1)
    live = counts > 0
    logd = log10_density(counts, n_heldout)
    histogram = np.stack([np.histogram(logd[c][live[c]], bins=bin_edges)[0] for c in range(len(counts))])
    rare = live & (densities < threshold)
    window = max(2, min(window, len(counts)))
    features = np.flatnonzero(rare[-1])
    if len(counts) >= 2 and len(features):
        slope, se = _slopes(logd[-window:, features], (tokens_seen[-window:] / 1e6).astype(np.float64))
    else:
        slope, se = np.zeros(len(features)), np.zeros(len(features))
    return DensityHistory(
        tokens_seen=tokens_seen, n_heldout=int(n_heldout), threshold=float(threshold), bin_edges=bin_edges,
        histogram=histogram, dead=(~live).sum(axis=1), ultra_rare=rare.sum(axis=1), window=int(window),
        ultra_rare_features=features, ultra_rare_slopes=slope, ultra_rare_slope_se=se,
        n_falling=int(((slope < -2 * se) & (slope < 0)).sum()), n_rising=int(((slope > 2 * se) & (slope > 0)).sum()),
        densities=densities,
    )
