"""How much of held-out steps' gradients does the top-k subspace of other steps explain? (From the Gram.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.training.gram import GradGram, accepts_center, center_gram, compute_gram
from modscope.training.spectrum import spectrum_of_gram
from modscope.training.store import as_store


@dataclass(frozen=True)
class HeldoutResidual(Result):
    """Fraction of gradient energy captured by the top-k parameter-space subspace fitted on other steps.

    For fit steps F with ``A_F = U S V^T`` and a held-out gradient g, the captured part is
    ``||V_k^T g||^2 = sum_{i<=k} (u_i^T A_F g)^2 / s_i^2``; all inner products come from the Gram.

    Attributes:
        ks: subspace sizes. heldout_explained: float [len(ks)], ``sum_t ||V_k^T g_t||^2 / sum_t ||g_t||^2``
            over held-out t (unitless, 0..1). fit_explained: the same over the fit steps (in-sample).
        null_explained: float [len(ks)], expected fraction for gradients in random directions,
            ``k / n_params`` (the chance level).
        n_fit, n_heldout: step counts. center: gradients taken relative to the fit steps' mean.
    """

    ks: np.ndarray
    heldout_explained: np.ndarray
    fit_explained: np.ndarray
    null_explained: np.ndarray
    n_fit: int
    n_heldout: int
    center: bool

    _frame_columns = ("ks", "heldout_explained", "fit_explained", "null_explained")

    def plot(self, ax=None):
        ax = axes(ax)
        ax.plot(self.ks, self.heldout_explained, "o-", color=TRAINED, ms=3, label="held-out steps")
        ax.plot(self.ks, self.fit_explained, "--", color=TRAINED, alpha=0.5, label="fit steps")
        ax.plot(self.ks, self.null_explained, ":", color=NULL, label="random directions (k / params)")
        ax.set(xscale="log", xlabel="k (top singular directions of the fit steps)",
               ylabel="fraction of gradient norm^2 explained", ylim=(0, 1.02))
        ax.legend()
        return ax


@accepts_center
def heldout_residual(store_or_gram, *, fit_size: int = 400, ks=(1, 2, 5, 10, 20, 50, 100, 200, 400),
                     centre: bool = False, params=None, seed: int = 0,
                     fit_rows: np.ndarray | None = None) -> HeldoutResidual:
    """Fit the top-k subspace on ``fit_size`` random steps (or ``fit_rows``) and score all other steps.

    Args:
        store_or_gram: a GradGram or anything ``gradient_spectrum`` accepts.
        fit_size: steps in the fit set (seed: 300-400). ks: subspace sizes (clipped to the fit rank).
        centre: subtract the fit steps' mean gradient from every step first (``center``: old spelling).
    Returns:
        HeldoutResidual.
    """
    gg = store_or_gram if isinstance(store_or_gram, GradGram) else compute_gram(
        as_store(store_or_gram), params=params, per_param=False)
    n = gg.gram.shape[0]
    if fit_rows is None:
        if not 2 <= fit_size < n:
            raise ModscopeError(f"fit_size must be in 2..{n - 1} to leave held-out steps, got {fit_size}")
        fit_rows = np.sort(np.random.default_rng(seed).choice(n, size=fit_size, replace=False))
    fit_rows = np.asarray(fit_rows)
    held = np.setdiff1d(np.arange(n), fit_rows)
    gram = gg.gram
    if centre:  # weights 1/|fit| on the fit rows: their mean gradient
        gram = center_gram(gram, np.isin(np.arange(n), fit_rows) / len(fit_rows))
    values, vecs = spectrum_of_gram(gram[np.ix_(fit_rows, fit_rows)])
    rank = int(np.sum(values > values[0] * 1e-7)) if values[0] > 0 else 0
    ks = np.array(sorted({min(int(k), rank) for k in ks if k >= 1}))
    if ks.size == 0:
        raise ModscopeError("no usable k: the fit steps' gradients are all zero")
    # coefficients of every step on the fit subspace: (u_i^T A_F g_t) / s_i
    coeff = (vecs[:, :rank].T @ gram[fit_rows, :]) / values[:rank, None]
    captured = np.cumsum(coeff**2, axis=0)  # [rank, steps]
    norms = np.diag(gram)

    def fraction(rows: np.ndarray) -> np.ndarray:
        return captured[ks - 1][:, rows].sum(axis=1) / max(norms[rows].sum(), 1e-300)

    return HeldoutResidual(ks=ks, heldout_explained=fraction(held), fit_explained=fraction(fit_rows),
                           null_explained=ks / gg.n_params, n_fit=len(fit_rows), n_heldout=len(held),
                           center=centre)
