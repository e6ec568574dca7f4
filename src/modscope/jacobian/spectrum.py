"""Singular values of a Jacobian by the cheapest exact-enough method, with a stated noise floor and rank."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy.sparse.linalg import svds

from modscope import figures as style
from modscope.errors import ModscopeError
from modscope.jacobian.operator import TensorFn, as_input, jacobian_matrix, operator, output_shape, tokenwise_jacobians
from modscope.jacobian.rank import count_above, float32_floor, gap_at, noise_floor, rank_text
from modscope.jacobian.slq import SpectralDensity, slq_density
from modscope.results import Result

METHODS = ("auto", "exact", "lanczos", "slq")
EXACT_MAX_ENTRIES = 6000 * 6000  # the whole spectrum: a dense float64 J up to ~290 MB beats slq's estimate
LANCZOS_MIN_ENTRIES = 1536 * 1536  # top-k: above this, ARPACK on the operator beats jacrev + a dense SVD


@dataclass(frozen=True)
class JacobianSpectrum(Result):
    """Singular values of a Jacobian J [n_out, n_in] and its numerical rank.

    Attributes:
        singular_values: σ₁ ≥ σ₂ ≥ … (output units per input unit), all of them (exact, tokenwise) or the
            top k (lanczos); for slq the Ritz nodes of the density, sorted. (``values``: the old name, read-only.)
        method: ``exact`` (jacrev + svdvals), ``tokenwise`` (union of per-token block spectra), ``lanczos``
            (top-k by ARPACK on the matrix-free operator) or ``slq`` (stochastic Lanczos quadrature density).
        n_in, n_out: the sizes of J (input and output elements: tokens × width).
        noise_floor: σ at or below which a direction counts as zero (same units as values; for ``tokenwise`` the
            largest of the per-token floors, each token being counted against its own).
        floor_rule: how the floor was set, e.g. ``max(n_in, n_out)·eps64·σ₁``.
        rank: the number of singular values above the floor (a lower bound when ``rank_is_lower_bound``).
        rank_kind: ``exact`` (all values known), ``lower bound`` (top-k all above the floor: the true rank is ≥ rank,
            nothing below index k was computed) or ``estimate`` (slq).
        density: for slq, the SpectralDensity (Ritz nodes and weights); None otherwise.
        rank_gap: σ_r / σ_{r+1} at r = rank (dimensionless; for ``tokenwise`` the smallest per-token gap): decades
            between the last counted direction and the first uncounted one. nan when σ_{r+1} is unknown (full
            rank, a lower bound, an estimate), inf when σ_{r+1} = 0.
        float32_floor: √d·eps32·σ₁ (σ units), below which a float32 model cannot resolve a direction.
        float32_floor_rule: that rule with d stated. float32_rank: values above it. float32_rank_kind: as
            ``rank_kind``. A rank is robust where float32_rank equals rank (or the gap spans the difference).
        right_vectors: optional top input directions [k, n_in] (rows; not written to JSON).
        rank_is_lower_bound, rank_lower_bound, rank_text, float32_rank_text (derived): whether the rank is only a
            lower bound, the bound (None when exact), and the ranks as printed (``≥ 64``, ``≈ 300``, ``2190``).
    """

    singular_values: np.ndarray
    method: str
    n_in: int
    n_out: int
    noise_floor: float
    floor_rule: str
    rank: int
    rank_kind: str
    density: SpectralDensity | None = None
    rank_gap: float = float("nan")
    float32_floor: float = float("nan")
    float32_floor_rule: str = ""
    float32_rank: int = 0
    float32_rank_kind: str = "exact"
    right_vectors: np.ndarray | None = field(default=None, repr=False)
    rank_is_lower_bound: bool = field(init=False, default=False)
    rank_lower_bound: int | None = field(init=False, default=None)
    rank_text: str = field(init=False, default="")
    float32_rank_text: str = field(init=False, default="")

    _json_exclude = ("right_vectors",)
    _json_aliases = {"values": "singular_values"}
    _frame_columns = ("singular_values",)

    @property
    def values(self) -> np.ndarray:
        """Old name of ``singular_values`` (kept for one release)."""
        return self.singular_values

    @property
    def sigma_max(self) -> float:
        return float(self.singular_values[0]) if len(self.singular_values) else 0.0

    @property
    def full_size(self) -> int:
        return min(self.n_in, self.n_out)

    def __post_init__(self) -> None:
        # derived, but stored as fields so that every JSON (also nested in BlockSpectrum, PathSpectrum) carries them
        object.__setattr__(self, "rank_is_lower_bound", self.rank_kind == "lower bound")
        object.__setattr__(self, "rank_lower_bound", self.rank if self.rank_kind == "lower bound" else None)
        object.__setattr__(self, "rank_text", rank_text(self.rank, self.rank_kind))
        object.__setattr__(self, "float32_rank_text", rank_text(self.float32_rank, self.float32_rank_kind))

    def plot(self, ax=None, *, label: str | None = None, color: str = style.TRAINED, floor: bool = True):
        """Singular values on a log scale against their index, with the float64 floor and float32 threshold."""
        ax = style.axes(ax)
        index, sigma = (self.density.quantile_curve() if self.density is not None  # slq: the density's, in rank order
                        else (np.arange(1, len(self.singular_values) + 1), self.singular_values))
        shown = np.maximum(sigma, self.noise_floor * 1e-3)  # exact zeros would vanish from a log axis
        ax.plot(index, shown, color=color, lw=1.2,
                label=label or f"{self.method} ({self.n_out}×{self.n_in}), rank {self.rank_text}")
        if floor:
            ax.axhline(self.noise_floor, color=style.NULL, ls="--", lw=1, label=f"noise floor ({self.floor_rule})")
            if np.isfinite(self.float32_floor):
                ax.axhline(self.float32_floor, color=style.NULL, ls=":", lw=1,
                           label=f"float32 threshold ({self.float32_floor_rule})")
        ax.set(yscale="log", xlabel="index i", ylabel="singular value σᵢ")
        ax.legend(fontsize=7)
        return ax


def spectrum_from_values(
    values: np.ndarray, method: str, n_in: int, n_out: int, *, floor: float | None = None,
    complete: bool = True, right_vectors: np.ndarray | None = None, width: int | None = None,
) -> JacobianSpectrum:
    """Wrap known singular values: sort them, set the floors from σ₁ and count the ranks against them.

    ``complete``: every singular value is in ``values`` (else they are the top k). ``width``: d of the float32
    threshold (default n_in, the sum length of a fully mixing map)."""
    values = np.sort(np.asarray(values, dtype=np.float64))[::-1].copy()
    sigma_max = values[0] if len(values) else 0.0
    level, rule = noise_floor(sigma_max, n_in, n_out, floor)
    rank, kind = count_above(values, level, complete)
    level32, rule32 = float32_floor(sigma_max, width or n_in)
    rank32, kind32 = count_above(values, level32, complete)
    gap = gap_at(values, rank) if kind == "exact" else float("nan")
    return JacobianSpectrum(values, method, n_in, n_out, level, rule, rank, kind, None, gap, level32, rule32,
                            rank32, kind32, right_vectors)


def choose_method(n_in: int, n_out: int, k: int | None) -> str:
    """``auto``: dense when J is small or most values are wanted, Krylov otherwise."""
    if k is None:
        return "exact" if n_in * n_out <= EXACT_MAX_ENTRIES else "slq"
    return "exact" if n_in * n_out <= LANCZOS_MIN_ENTRIES or k >= min(n_in, n_out) // 2 else "lanczos"


def singular_values(
    fn: TensorFn, x: torch.Tensor | np.ndarray, *, k: int | None = None, method: str = "auto",
    dtype: torch.dtype = torch.float64, floor: float | None = None, vectors: bool = False,
    probes: int = 16, steps: int = 80, seed: int = 0,
) -> JacobianSpectrum:
    """Singular values of J = ∂fn/∂x at ``x`` (flattened: [n_out, n_in]).

    Args:
        fn: a tensor function (e.g. a sublayer). x: the point (e.g. the activations entering it).
        k: how many of the largest values (None: the whole spectrum, or its density for slq).
        method: ``exact`` (jacrev + float64 svdvals), ``lanczos`` (top-k by ARPACK on the jvp/vjp operator;
            Krylov methods stay accurate on flat spectra where randomized SVD is not), ``slq`` (the density of
            the whole spectrum) or ``auto`` (exact for small J or k ≥ n/2, else lanczos with k, slq without).
        dtype: computation dtype (float64: the floor is read against float64 eps).
        floor: an absolute noise floor replacing the default ``max(n_in, n_out)·eps64·σ₁``.
        vectors: keep the top input directions (rows of Vᵀ) in ``right_vectors`` (exact and lanczos).
        probes, steps, seed: slq probe count, Lanczos steps per probe and probe seed (lanczos start vector too).

    Returns:
        A JacobianSpectrum.
    """
    if method not in METHODS:
        raise ModscopeError(f"unknown method '{method}'; use one of {', '.join(METHODS)}")
    x0 = as_input(x, dtype)
    n_in, n_out = x0.numel(), int(np.prod(output_shape(fn, x0)))
    width = int(x0.shape[-1]) if x0.ndim else 1
    n = min(n_in, n_out)
    if k is not None and not 1 <= k <= n:
        raise ModscopeError(f"k must be between 1 and min(n_in, n_out) = {n}, got {k}")
    if method == "auto":
        method = choose_method(n_in, n_out, k)
    if method == "lanczos" and (k is None or k >= n):
        raise ModscopeError(f"lanczos finds the top k < {n} values: pass k, or use method='exact' or 'slq'")
    if method == "exact":
        jac = jacobian_matrix(fn, x0, dtype=dtype, chunk_size=4096).numpy()
        # the SVD, not building J, is the cost of the exact path: LAPACK gesdd through numpy, as in the token-wise
        # path below (torch's CPU svdvals was the slower of the two on (T·d)² attention Jacobians)
        if vectors:
            _, sigma, vh = np.linalg.svd(jac, full_matrices=False)
            right = vh[:k].copy()
        else:
            sigma, right = np.linalg.svd(jac, compute_uv=False), None
        full = spectrum_from_values(sigma, "exact", n_in, n_out, floor=floor, right_vectors=right, width=width)
        return full if k is None else truncate(full, k)
    op = operator(fn, x0, dtype=dtype)
    if method == "lanczos":
        start = np.random.default_rng(seed).standard_normal(min(op.shape))
        result = svds(op, k=k, tol=0, v0=start, solver="arpack", return_singular_vectors="vh" if vectors else False)
        sigma, right = (result[1], result[2]) if vectors else (result, None)
        order = np.argsort(-sigma)
        right = right[order] if right is not None else None
        return spectrum_from_values(sigma, "lanczos", n_in, n_out, floor=floor, complete=False, right_vectors=right,
                                    width=width)
    density = slq_density(op, probes=probes, steps=steps, seed=seed)
    nodes = np.sort(density.nodes)[::-1].copy()
    level, rule = noise_floor(nodes[0], n_in, n_out, floor)
    rank = int(round(density.fraction_above(level) * density.n))
    level32, rule32 = float32_floor(nodes[0], width)
    rank32 = int(round(density.fraction_above(level32) * density.n))
    return JacobianSpectrum(nodes, "slq", n_in, n_out, level, rule, rank, "estimate", density,
                            float32_floor=level32, float32_floor_rule=rule32, float32_rank=rank32,
                            float32_rank_kind="estimate")


def truncate(spectrum: JacobianSpectrum, k: int) -> JacobianSpectrum:
    """Keep the top k values; ranks, floors and gap stay those of the full spectrum."""
    return replace(spectrum, singular_values=spectrum.singular_values[:k].copy())


@dataclass(frozen=True)
class TokenwiseSpectrum(JacobianSpectrum):
    """The exact spectrum of a token-wise (block-diagonal) Jacobian, each token counted against its own floor.

    Attributes (beyond JacobianSpectrum):
        token_ranks: rank of each token's block against that block's floor [tokens].
        token_sigma_max: σ₁ of each token's block [tokens].
        token_floors: each block's floor, ``max(d_in, d_out)·eps64·σ₁(J_t)`` (or the user floor) [tokens].
        token_float32_ranks: each block's count above √d·eps32·σ₁(J_t) [tokens].
        token_gaps: each block's σ_r/σ_{r+1} at its rank (nan at full rank) [tokens].
    """

    token_ranks: np.ndarray | None = None
    token_sigma_max: np.ndarray | None = None
    token_floors: np.ndarray | None = None
    token_float32_ranks: np.ndarray | None = None
    token_gaps: np.ndarray | None = None


def tokenwise_singular_values(
    token_fn: TensorFn, x: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64,
    floor: float | None = None,
) -> TokenwiseSpectrum:
    """The exact full spectrum of a map acting on each token alone, from T small blocks instead of one big J.

    ``J = diag(J_1, …, J_T)`` so ``σ(J) = ∪_t σ(J_t)``: T batched d×d SVDs (O(T d³)) replace one (Td)×(Td) SVD
    (O(T³ d³)). Each block is its own d×d problem, so each token is counted against its own floor
    ``max(d_in, d_out)·eps64·σ₁(J_t)``: a token's rank does not depend on which other tokens are in the run, and
    ``rank = Σ_t token_ranks[t]`` (likewise the float32 counts; ``rank_gap`` is the smallest token gap).

    Args:
        token_fn: the per-token map [d_in] -> [d_out]. x: tokens [T, d_in]. dtype: computation dtype.
        floor: an absolute floor replacing the default (for every token).

    Returns:
        A TokenwiseSpectrum (method ``tokenwise``).
    """
    blocks = tokenwise_jacobians(token_fn, x, dtype=dtype)
    # LAPACK gesdd per block through numpy: torch's batched CPU svdvals is many times slower on d×d stacks
    per_token = np.linalg.svd(blocks.numpy(), compute_uv=False)  # [T, min(d_out, d_in)], each row descending
    tokens, d_out, d_in = blocks.shape
    each = [spectrum_from_values(values, "tokenwise", d_in, d_out, floor=floor, width=d_in) for values in per_token]
    token_ranks, token_float32_ranks, token_floors, token_gaps = (
        np.array([getattr(s, name) for s in each]) for name in ("rank", "float32_rank", "noise_floor", "rank_gap"))
    known = token_gaps[~np.isnan(token_gaps)]
    gap = float(known.min()) if len(known) else float("nan")
    rule = each[0].floor_rule if floor is not None else "per token: max(d_in, d_out)·eps64·σ₁(token block)"
    rule32 = f"per token: √d·eps32·σ₁(token block), d = {d_in}"
    values = np.sort(per_token.reshape(-1))[::-1].copy()
    return TokenwiseSpectrum(
        values, "tokenwise", tokens * d_in, tokens * d_out, float(token_floors.max()), rule, int(token_ranks.sum()),
        "exact", None, gap, float(max(s.float32_floor for s in each)), rule32, int(token_float32_ranks.sum()),
        "exact", None, token_ranks, per_token[:, 0].copy(), token_floors, token_float32_ranks, token_gaps)
