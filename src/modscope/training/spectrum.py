"""Singular values of the steps x parameters gradient matrix, all steps, and the seed's threshold counts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.training.gram import GradGram, center_gram, compute_gram, resolve_params, resolve_rows
from modscope.training.store import GradientStore, as_store

THRESHOLDS = (0.05, 0.10, 0.15)
GRAM_MAX_STEPS = 20000
# float64 elements of one column stripe of the randomized SVD (32 MiB)
STRIPE_ELEMENTS = 2**22


def count_above(values: np.ndarray, frac: float) -> int:
    """Number of singular values strictly greater than ``frac`` times the largest (seed 004's rule of thumb)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or values.max() <= 0:
        return 0
    return int(np.sum(values > frac * values.max()))


def spectrum_of_gram(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (descending) and the matching unit step-space vectors ``U`` of ``A`` from ``A A^T``.

    ``G = U diag(s^2) U^T`` (``numpy.linalg.eigh``); negative round-off eigenvalues are clipped to 0.
    Each column's sign is fixed so that its loadings sum to >= 0 (a deterministic convention).
    Returns:
        (singular values float64 [steps], U float64 [steps, steps] with column i for value i).
    """
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    values = np.sqrt(np.clip(evals[order], 0.0, None))
    vecs = evecs[:, order]
    signs = np.where(vecs.sum(axis=0) < 0, -1.0, 1.0)
    return values, vecs * signs


@dataclass(frozen=True)
class GradSpectrum(Result):
    """Spectrum of the gradient matrix ``A`` (rows = training steps, columns = parameters).

    Attributes:
        singular_values: descending, float64 [min(steps, params)] (gradient units, e.g. nats per parameter).
        normalized: ``singular_values / singular_values[0]`` (unitless).
        counts: {frac: number of values > frac * largest} for frac in ``THRESHOLDS``.
        count_fraction: {frac: count / min(steps, params)} (the seed's "% of what nothing going on gives").
        per_param_counts: {tensor name: {frac: count}} from each tensor's own Gram (empty if not computed).
        explained_top: fraction of ``||A||_F^2`` in the top 1, 10 and 100 values.
        n_steps, n_params: shape of ``A``. center: whether the mean gradient over steps was subtracted.
        method: ``gram`` | ``randomized`` | ``dask``. steps: training-step index of each row.
        time_profiles: float64 [k, steps], row i = the unit step-space singular vector of value i
            (``U[:, i]``; "right singular vectors" in the seed's parameters x steps orientation). Not in JSON.
        gram: the (possibly centred) float64 Gram used, when method is ``gram``/``dask``. Not in JSON.
    """

    singular_values: np.ndarray
    normalized: np.ndarray
    counts: dict
    count_fraction: dict
    per_param_counts: dict
    explained_top: dict
    n_steps: int
    n_params: int
    center: bool
    method: str
    steps: np.ndarray
    time_profiles: np.ndarray = field(repr=False)
    gram: np.ndarray | None = field(default=None, repr=False)

    _json_exclude = ("time_profiles", "gram", "steps")

    def plot(self, ax=None, *, label: str | None = None, colour: str = TRAINED, thresholds: bool = True):
        """Normalised singular values (log y) against index, with the 0.05/0.10/0.15 thresholds."""
        ax = axes(ax)
        ax.semilogy(np.arange(1, len(self.normalized) + 1), np.maximum(self.normalized, 1e-12), color=colour,
                    lw=1.2, label=label or f"{'centred ' if self.center else ''}all {self.n_steps} steps")
        for frac in THRESHOLDS if thresholds else ():
            ax.axhline(frac, color=NULL, ls="--", lw=0.8)
            ax.text(len(self.normalized), frac, f" {frac:.2f}: {self.counts.get(frac, '')}", va="bottom",
                    ha="right", fontsize=7, color="#555")
        ax.set_xlabel("singular value index")
        ax.set_ylabel("singular value / largest")
        ax.set_ylim(max(1e-4, float(self.normalized[self.normalized > 0].min(initial=1.0))) * 0.8, 1.5)
        ax.legend()
        return ax


def spectrum_from_gram(gg: GradGram, *, center: bool = False, method: str = "gram",
                       keep_profiles: int | None = None) -> GradSpectrum:
    """Build a GradSpectrum from a Gram (no pass over the gradients)."""
    gram = center_gram(gg.gram) if center else gg.gram
    values, vecs = spectrum_of_gram(gram)
    rank = min(gg.gram.shape[0], gg.n_params)
    per_param = {}
    for name, g in gg.per_param.items():
        v, _ = spectrum_of_gram(center_gram(g) if center else g)
        per_param[name] = {frac: count_above(v, frac) for frac in THRESHOLDS}
    k = rank if keep_profiles is None else min(rank, keep_profiles)
    return _make(values[:rank], vecs[:, :k].T, gg.n_params, center, method, gg.steps, per_param, gram)


def _make(values, profiles, n_params, center, method, steps, per_param, gram) -> GradSpectrum:
    top = float(values[0]) if values.size and values[0] > 0 else 1.0
    energy = float(np.sum(values**2)) or 1.0
    rank = min(len(steps), n_params)
    counts = {frac: count_above(values, frac) for frac in THRESHOLDS}
    return GradSpectrum(
        singular_values=values, normalized=values / top, counts=counts,
        count_fraction={f: c / rank for f, c in counts.items()}, per_param_counts=per_param,
        explained_top={k: float(np.sum(values[:k] ** 2) / energy) for k in (1, 10, 100)},
        n_steps=len(steps), n_params=n_params, center=center, method=method, steps=np.asarray(steps),
        time_profiles=profiles, gram=gram)


def gradient_spectrum(
    store_or_matrix, *, params=None, steps=None, center: bool = False, method: str = "auto",
    rank: int = 200, power_iters: int = 4, per_param: bool = True, seed: int = 0, client=None,
    scheduler: str | None = None,
) -> GradSpectrum:
    """Singular values of the gradient matrix over all (or the selected) steps, without sampling.

    Args:
        store_or_matrix: GradientStore / GradientRecorder / TrainRun / store directory / [steps, params] array.
        params: tensor names (default all recorded). steps: row indices or slice (default all).
        center: subtract the mean gradient over the selected steps first (the comment on seed 004).
        method: ``gram`` (exact; float64 Gram in one pass, steps <= ~2e4), ``randomized`` (top ``rank``
            values; Halko, Martinsson & Tropp 2011, Alg. 4.4 with ``power_iters`` power iterations),
            ``dask`` (the Gram through Dask over Zarr chunks, for stores larger than memory), or ``auto``
            (``gram`` up to 20000 steps, else ``randomized``).
        per_param: also count per tensor (gram/dask only).
        client, scheduler: for ``dask``, a Dask client or scheduler address (default: a LocalCluster); the Gram
            is then ``modscope.distributed.gradient_gram`` (``gram_kernel`` per column stripe, ``merge_grams``).
    Returns:
        GradSpectrum.
    """
    store = as_store(store_or_matrix)
    n_rows = resolve_rows(store, steps).size
    if method == "auto":
        method = "gram" if n_rows <= GRAM_MAX_STEPS else "randomized"
    if method == "dask":
        from modscope.distributed.gradients import gradient_gram

        gg = gradient_gram(store, params=params, steps=steps, engine="dask", client=client, scheduler=scheduler)
        _require_finite(store, gg)
        return spectrum_from_gram(gg if per_param else dataclasses.replace(gg, per_param={}), center=center,
                                  method=method)
    if method == "gram":
        gg = compute_gram(store, params=params, steps=steps, per_param=per_param)
        _require_finite(store, gg)
        return spectrum_from_gram(gg, center=center, method=method)
    if method == "randomized":
        _require_finite(store)
        return randomized_spectrum(store, params=params, steps=steps, center=center, rank=rank,
                                   power_iters=power_iters, seed=seed)
    raise ModscopeError(f"unknown method '{method}'; use auto, gram, randomized or dask")


def _require_finite(store: GradientStore, gg: GradGram | None = None) -> None:
    """NaN or inf gradients are an error naming the first bad step, not NaN singular values and zero counts.

    With a Gram the check is free: ``G_ii = ||row i||^2`` (float64) is finite exactly when row i is.
    """
    if gg is not None:
        bad = np.flatnonzero(~np.isfinite(np.diag(gg.gram)))
        step = int(np.asarray(gg.steps)[bad[0]]) if bad.size else None
    else:
        step = store.first_nonfinite_step()
    if step is not None:
        raise ModscopeError(f"the gradient matrix holds NaN or inf values from step {step} on (the first bad step); "
                            "record the run again with a lower learning rate, or pass steps= before it")


def randomized_spectrum(store: GradientStore, *, params=None, steps=None, center: bool = False,
                        rank: int = 200, power_iters: int = 4, oversample: int = 10,
                        seed: int = 0, stripe: int | None = None) -> GradSpectrum:
    """Top-``rank`` singular values by a randomized range finder streamed over parameter blocks.

    ``Y = A Omega``, then ``power_iters`` times ``Y <- A (A^T Q)`` with re-orthonormalisation, and finally
    the eigen-decomposition of ``B B^T`` with ``B = Q^T A`` (Halko et al. 2011, Alg. 4.4 + 5.1). Centring
    multiplies every step-space product by ``H = I - 11^T/n``, so the mean is never formed.

    Memory: O(steps x (rank + oversample)) float64 for Y, Q and B B^T, plus one tensor's float32 block and one
    column stripe of it. Every product runs over stripes of ``stripe`` parameters (default: 2^22 / steps), and
    the Gaussian test matrix Omega [params, rank + oversample] is drawn stripe by stripe from the one seeded
    generator, so it never exists whole and its values are those of a single draw of the full matrix.
    """
    names = resolve_params(store, params)
    rows = resolve_rows(store, steps)
    sel = slice(None) if rows.size == store.n_steps else rows
    n = rows.size
    width = min(n, rank + oversample)
    stripe = int(stripe or max(1, STRIPE_ELEMENTS // max(n, 1)))
    rng = np.random.default_rng(seed)

    def center_rows(y: np.ndarray) -> np.ndarray:
        return y - y.mean(axis=0, keepdims=True) if center else y

    def stripes(name: str):
        block = store.block(name, sel)
        for start in range(0, block.shape[1], stripe):
            yield block[:, start:start + stripe].astype(np.float64)

    y = np.zeros((n, width))
    for name in names:
        for part in stripes(name):
            y += part @ rng.standard_normal((part.shape[1], width))
    q = np.linalg.qr(center_rows(y))[0]
    for _ in range(power_iters):
        y = np.zeros_like(q)
        for name in names:
            for part in stripes(name):
                y += part @ (part.T @ q)
        q = np.linalg.qr(center_rows(y))[0]
    bbt = np.zeros((width, width))
    for name in names:
        for part in stripes(name):
            b = q.T @ part
            bbt += b @ b.T
    values, small = spectrum_of_gram(bbt)
    k = min(rank, width)
    profiles = (q @ small)[:, :k].T
    n_params = sum(store.size(nm) for nm in names)
    return _make(values[:k], profiles, n_params, center, "randomized", np.asarray(store.steps)[rows], {}, None)


def parameter_directions(store_or_matrix, spectrum: GradSpectrum, k: int, *, params=None) -> np.ndarray:
    """Unit parameter-space singular vectors ``v_i = A^T u_i / s_i`` for the top ``k`` values, float64 [k, params].

    Computed on demand from the time profiles (the seed's left singular vectors). For a centred spectrum
    ``u_i`` is orthogonal to the all-ones vector, so ``A^T u_i`` equals the centred ``A_c^T u_i``.
    """
    store = as_store(store_or_matrix)
    if k > spectrum.time_profiles.shape[0]:
        raise ModscopeError(f"k={k} exceeds the {spectrum.time_profiles.shape[0]} kept time profiles")
    rows = np.searchsorted(np.asarray(store.steps), spectrum.steps)
    u = spectrum.time_profiles[:k] / np.where(spectrum.singular_values[:k] > 0, spectrum.singular_values[:k],
                                              1.0)[:, None]
    names = resolve_params(store, params)
    return np.concatenate([u @ store.block(n, rows).astype(np.float64) for n in names], axis=1)
