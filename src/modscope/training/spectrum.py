"""Singular values of the steps x parameters gradient matrix, all steps, and the seed's threshold counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modscope.engine import check_engine, reduce_tasks
from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.training.gram import GradGram, accepts_center, center_gram, compute_gram, resolve_params, resolve_rows
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


def counts_of_gram(gram: np.ndarray, centre: bool) -> dict:
    """``{frac: count_above(values, frac)}`` of the singular values behind ``gram`` (centred first with ``centre``)."""
    values, _ = spectrum_of_gram(center_gram(gram) if centre else gram)
    return {frac: count_above(values, frac) for frac in THRESHOLDS}


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
    def to_frame(self):
        """One row per threshold: the count of singular values above threshold × σ₁ and its fraction of steps."""
        import pandas as pd

        return pd.DataFrame({"threshold": list(self.counts), "count": list(self.counts.values()),
                             "fraction": [self.count_fraction[t] for t in self.counts]})

    def plot(self, ax=None, *, label: str | None = None, colour: str = TRAINED, thresholds: bool = True):
        """Normalised singular values (log y) against index, with the 0.05/0.10/0.15 thresholds."""
        ax = axes(ax)
        ax.semilogy(np.arange(1, len(self.normalized) + 1), np.maximum(self.normalized, 1e-12), color=colour,
                    lw=1.2, label=label or f"{'centred ' if self.center else ''}all {self.n_steps} steps")
        for frac in THRESHOLDS if thresholds else ():
            ax.axhline(frac, color=NULL, ls="--", lw=0.8)
            ax.text(len(self.normalized), frac, f" {frac:.2f}: {self.counts.get(frac, '')}", va="bottom",
                    ha="right", fontsize=7, color="#555")
        ax.set(xlabel="singular value index", ylabel="singular value / largest",
               ylim=(max(1e-4, float(self.normalized[self.normalized > 0].min(initial=1.0))) * 0.8, 1.5))
        ax.legend()
        return ax


@accepts_center
def spectrum_from_gram(gg: GradGram, *, centre: bool = False, method: str = "gram",
                       keep_profiles: int | None = None) -> GradSpectrum:
    """Build a GradSpectrum from a Gram (no pass over the gradients)."""
    gram = center_gram(gg.gram) if centre else gg.gram
    values, vecs = spectrum_of_gram(gram)
    rank = min(gg.gram.shape[0], gg.n_params)
    per_param = {name: counts_of_gram(g, centre) for name, g in gg.per_param.items()}
    k = rank if keep_profiles is None else min(rank, keep_profiles)
    return _make(values[:rank], vecs[:, :k].T, gg.n_params, centre, method, gg.steps, per_param, gram)


def _make(values, profiles, n_params, centre, method, steps, per_param, gram) -> GradSpectrum:
    top = float(values[0]) if values.size and values[0] > 0 else 1.0
    energy = float(np.sum(values**2)) or 1.0
    rank = min(len(steps), n_params)
    counts = {frac: count_above(values, frac) for frac in THRESHOLDS}
    return GradSpectrum(
        singular_values=values, normalized=values / top, counts=counts,
        count_fraction={f: c / rank for f, c in counts.items()}, per_param_counts=per_param,
        explained_top={k: float(np.sum(values[:k] ** 2) / energy) for k in (1, 10, 100)},
        n_steps=len(steps), n_params=n_params, center=centre, method=method, steps=np.asarray(steps),
        time_profiles=profiles, gram=gram)


@accepts_center
def gradient_spectrum(
    store_or_matrix, *, params=None, steps=None, centre: bool = False, method: str = "auto",
    rank: int = 200, power_iters: int = 4, per_param: bool = True, seed: int = 0, engine: str = "local",
    client=None, scheduler: str | None = None,
) -> GradSpectrum:
    """Singular values of the gradient matrix over all (or the selected) steps, without sampling.

    Args:
        store_or_matrix: GradientStore / GradientRecorder / TrainRun / store directory / [steps, params] array.
        params: tensor names (default all recorded). steps: row indices or slice (default all).
        centre: subtract the mean gradient over the selected steps first (the comment on seed 004; ``center`` is
            the old spelling, accepted for one release).
        method: ``gram`` (exact; float64 Gram in one pass, steps <= ~2e4), ``randomized`` (top ``rank``
            values; Halko, Martinsson & Tropp 2011, Alg. 4.4 with ``power_iters`` power iterations), or ``auto``
            (``gram`` up to 20000 steps, else ``randomized``). ``dask`` is the old spelling of ``gram`` on
            ``engine="dask"``.
        per_param: also count per tensor (gram only).
        engine: ``local`` or ``dask`` (``numpy`` is the old spelling of ``local``): where the passes over the
            gradients run (``compute_gram``, ``randomized_svd``). client, scheduler: the Dask cluster.
    Returns:
        GradSpectrum.
    """
    store = as_store(store_or_matrix)
    n_rows = resolve_rows(store, steps).size
    if method == "dask":
        method, engine = "gram", "dask"
    if method == "auto":
        method = "gram" if n_rows <= GRAM_MAX_STEPS else "randomized"
    where = {"engine": engine, "client": client, "scheduler": scheduler}
    if method == "gram":
        gg = compute_gram(store, params=params, steps=steps, per_param=per_param, **where)
        _require_finite(store, gg)
        return spectrum_from_gram(gg, centre=centre, method="dask" if check_engine(engine) == "dask" else "gram")
    if method == "randomized":
        _require_finite(store)
        return randomized_spectrum(store, params=params, steps=steps, centre=centre, rank=rank,
                                   power_iters=power_iters, seed=seed, **where)
    raise ModscopeError(f"unknown method '{method}'; use auto, gram or randomized")


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


def _tensor_pass(block: Any, name: str, rows: Any, op: str, operand: Any, width: int, stripe: int
                 ) -> tuple[np.ndarray, float]:
    """One tensor's share of a pass of the range finder, column stripe by column stripe, in float64.

    ``sketch``: ``A_p Omega_p`` (``operand`` a Generator, or its state on Dask, drawing Omega_p stripe by stripe);
    ``power``: ``A_p A_p^T operand``; ``project``: ``B_p B_p^T`` with ``B_p = operand^T A_p``. Also returns
    ``||A_p||_F^2``.
    """
    if isinstance(block, GradientStore):
        block = block.block(name, rows)
    if op == "sketch" and isinstance(operand, dict):
        rng = np.random.default_rng()
        rng.bit_generator.state = operand
        operand = rng
    total, sq = None, 0.0
    for start in range(0, block.shape[1], stripe):
        part = block[:, start:start + stripe].astype(np.float64)
        sq += float(np.einsum("ij,ij->", part, part))
        if op == "sketch":
            term = part @ operand.standard_normal((part.shape[1], width))
        elif op == "power":
            term = part @ (part.T @ operand)
        else:
            b = operand.T @ part
            term = b @ b.T
        total = term if total is None else total + term
    return total, sq


def _sum_passes(parts: list) -> tuple[np.ndarray, float]:
    return np.sum([p[0] for p in parts], axis=0), float(sum(p[1] for p in parts))


@accepts_center
def randomized_svd(store: GradientStore, *, params=None, steps=None, centre: bool = False, rank: int = 200,
                   power_iters: int = 4, oversample: int = 10, seed: int = 0, stripe: int | None = None,
                   residuals: bool = False, engine: str = "local", client=None, scheduler: str | None = None
                   ) -> dict[str, Any]:
    """Top-``rank`` singular values by a randomized range finder streamed over parameter blocks.

    ``Y = A Omega``, then ``power_iters`` times ``Y <- A (A^T Q)`` with re-orthonormalisation, and finally
    the eigen-decomposition of ``B B^T`` with ``B = Q^T A`` (Halko et al. 2011, Alg. 4.4 + 5.1). Centring
    multiplies every step-space product by ``H = I - 11^T/n``, so the mean is never formed. Each pass is one
    task per tensor (``_tensor_pass``) merged by a sum through ``modscope.engine.reduce_tasks``, here or on Dask.

    Memory: O(steps x (rank + oversample)) float64 for Y, Q and B B^T, plus (per task) one tensor's float32 block
    and one column stripe of it. Every product runs over stripes of ``stripe`` parameters (default: 2^22 / steps),
    and the Gaussian test matrix Omega [params, rank + oversample] is drawn stripe by stripe from the one seeded
    generator, so it never exists whole and its values are those of a single draw of the full matrix (on Dask,
    each task starts from the generator's state at its tensor, found by one draw on the client).

    Returns:
        dict: ``values`` (descending), ``profiles`` [k, steps], ``rows``, ``n_params``, ``frobenius_sq``
        (``||A||_F^2``, uncentred) and, with ``residuals``, ``residuals`` ``||A A^T u_i / s_i - s_i u_i||``.
    """
    names = resolve_params(store, params)
    rows = resolve_rows(store, steps)
    sel = slice(None) if rows.size == store.n_steps else rows
    n = rows.size
    width = min(n, rank + oversample)
    stripe = int(stripe or max(1, STRIPE_ELEMENTS // max(n, 1)))
    rng = np.random.default_rng(seed)
    dask = check_engine(engine) == "dask"
    where = {"engine": engine, "client": client, "scheduler": scheduler}
    sources = {nm: store if store.path is not None or not dask else store.block(nm, sel) for nm in names}
    sel_of = {nm: sel if isinstance(sources[nm], GradientStore) else slice(None) for nm in names}

    def run(op: str, operands: dict) -> tuple[np.ndarray, float]:
        tasks = [(sources[nm], nm, sel_of[nm], op, operands[nm], width, stripe) for nm in names]
        return reduce_tasks(_tensor_pass, tasks, _sum_passes, **where)

    def center_rows(y: np.ndarray) -> np.ndarray:
        return y - y.mean(axis=0, keepdims=True) if centre else y

    if dask:  # each tensor's task draws its part of Omega from the state the single draw reaches there
        states = {}
        for nm in names:
            states[nm] = rng.bit_generator.state
            for start in range(0, store.size(nm), stripe):
                rng.standard_normal((min(stripe, store.size(nm) - start), width))
    y, frobenius_sq = run("sketch", states if dask else dict.fromkeys(names, rng))
    q = np.linalg.qr(center_rows(y))[0]
    for _ in range(power_iters):
        q = np.linalg.qr(center_rows(run("power", dict.fromkeys(names, q))[0]))[0]
    values, small = spectrum_of_gram(run("project", dict.fromkeys(names, q))[0])
    k = min(rank, width)
    profiles = (q @ small)[:, :k]
    out = {"values": values[:k], "profiles": profiles.T, "rows": rows, "frobenius_sq": frobenius_sq,
           "n_params": sum(store.size(nm) for nm in names)}
    if residuals:  # A v_i - s_i u_i with v_i = A^T u_i / s_i, the Rayleigh-Ritz vector from the range of Q
        aatu = run("power", dict.fromkeys(names, profiles))[0]
        s = np.where(values[:k] > 0, values[:k], 1.0)
        out["residuals"] = np.linalg.norm(center_rows(aatu) / s - profiles * values[:k], axis=0)
    return out


@accepts_center
def randomized_spectrum(store: GradientStore, *, centre: bool = False, **options: Any) -> GradSpectrum:
    """``GradSpectrum`` of the top-``rank`` values of ``randomized_svd`` (same arguments)."""
    found = randomized_svd(store, centre=centre, **options)
    return _make(found["values"], found["profiles"], found["n_params"], centre, "randomized",
                 np.asarray(store.steps)[found["rows"]], {}, None)


@dataclass(frozen=True)
class OutOfCoreSVD(Result):
    """Top singular values of the gradient matrix ``A`` [steps, parameters] and how accurate they are.

    Attributes:
        singular_values: descending, float64 [k] (gradient units).
        time_profiles: float64 [k, steps], row i = unit step-space singular vector u_i. Not in JSON.
        residuals: ``||A v_i - s_i u_i||`` per value (gradient units). For the symmetric ``[[0, A], [A^T, 0]]``
            the pair (s_i, [u_i; v_i]/sqrt 2) has residual ``r_i / sqrt 2`` (``A^T u_i = s_i v_i`` holds by
            construction), so some true singular value lies within ``residuals[i] / sqrt 2`` of ``s_i``
            (Parlett 1998, Thm 4.5.1). 0 for the exact Gram route.
        relative_error_bound: ``residuals / (sqrt 2 * s_i)``.
        frobenius_sq: ``||A||_F^2`` (exact). captured: ``sum s_i^2 / ||A||_F^2``, the share of the energy in the
            k values (1 for the full Gram route).
        method: ``gram`` (exact, streamed Gram) or ``randomized`` (``randomized_svd``, ``power_iters``
            iterations).
        n_steps, n_params: shape of ``A``.
    """

    singular_values: np.ndarray
    time_profiles: np.ndarray
    residuals: np.ndarray
    relative_error_bound: np.ndarray
    frobenius_sq: float
    captured: float
    method: str
    power_iters: int
    n_steps: int
    n_params: int

    _json_exclude = ("time_profiles",)
    _frame_columns = ("singular_values", "residuals", "relative_error_bound")

    def plot(self, ax=None):
        ax = axes(ax)
        idx = np.arange(1, self.singular_values.size + 1)
        ax.errorbar(idx, self.singular_values, yerr=self.residuals / np.sqrt(2), color=TRAINED, lw=1.2,
                    label=f"{self.method} ({self.captured:.1%} of ||A||²)")
        ax.set(xlabel="index", ylabel="singular value", yscale="log", title="gradient matrix, out of core")
        ax.legend()
        return ax


MIN_POWER_ITERS = 2


def gradient_svd(store_or_matrix: Any, *, k: int = 50, params=None, method: str = "auto", power_iters: int = 2,
                 engine: str = "local", client: Any = None, scheduler: str | None = None,
                 seed: int = 0) -> OutOfCoreSVD:
    """Top-``k`` singular values of a gradient store that may not fit in memory, each with an error bound.

    Args:
        store_or_matrix: a GradientStore (Zarr-backed), a store directory, or a matrix.
        k: values wanted. params: tensor names (default all).
        method: ``gram`` (streamed float64 Gram, exact, for up to ~2e4 steps), ``randomized``
            (``randomized_svd`` with ``power_iters`` >= 2; ``svd_compressed`` is its old name), or ``auto``
            (``gram`` up to 20000 steps).
        engine, client, scheduler: where the passes run (``local`` or ``dask``).
        seed: seed of the random test matrix.

    Returns:
        OutOfCoreSVD with per-value error bounds.
    """
    store = as_store(store_or_matrix)
    names = resolve_params(store, params)
    where = {"engine": engine, "client": client, "scheduler": scheduler}
    method = {"svd_compressed": "randomized"}.get(method, method)
    if method == "auto":
        method = "gram" if store.n_steps <= GRAM_MAX_STEPS else "randomized"
    if method == "gram":
        gg = compute_gram(store, params=names, per_param=False, **where)
        values, vecs = spectrum_of_gram(gg.gram)
        k = min(k, store.n_steps, gg.n_params)
        found = {"values": values[:k], "profiles": vecs[:, :k].T, "residuals": np.zeros(k),
                 "frobenius_sq": float(np.trace(gg.gram)), "n_params": gg.n_params}
        power_iters = 0
    elif method != "randomized":
        raise ModscopeError(f"unknown method '{method}'; use auto, gram or randomized")
    elif power_iters < MIN_POWER_ITERS:
        raise ModscopeError(f"power_iters={power_iters} is too few for a reliable spectrum; use >= {MIN_POWER_ITERS}")
    else:
        found = randomized_svd(store, params=names, rank=k, power_iters=power_iters, seed=seed, residuals=True, **where)
    values, residual, energy = found["values"], found["residuals"], found["frobenius_sq"]
    bound = residual / (np.sqrt(2) * np.where(values > 0, values, 1.0))
    return OutOfCoreSVD(values, found["profiles"], residual, bound, energy,
                        float(np.sum(values**2) / max(energy, 1e-300)), method, power_iters, store.n_steps,
                        found["n_params"])


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
