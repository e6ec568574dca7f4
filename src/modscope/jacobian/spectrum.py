"""Singular values of a Jacobian by the cheapest exact-enough method, with a stated noise floor and rank."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse.linalg import svds

from modscope.errors import ModscopeError
from modscope.jacobian.operator import TensorFn, as_input, jacobian_matrix, operator, output_shape, tokenwise_jacobians
from modscope.jacobian.slq import SpectralDensity, slq_density
from modscope.report import style
from modscope.results import Result

METHODS = ("auto", "exact", "lanczos", "slq")
EPS64 = float(np.finfo(np.float64).eps)
EXACT_MAX_ENTRIES = 6000 * 6000  # the whole spectrum: a dense float64 J up to ~290 MB beats slq's estimate
LANCZOS_MIN_ENTRIES = 1536 * 1536  # top-k: above this, ARPACK on the operator beats jacrev + a dense SVD


@dataclass(frozen=True)
class JacobianSpectrum(Result):
    """Singular values of a Jacobian J [n_out, n_in] and its numerical rank.

    Attributes:
        values: singular values σ₁ ≥ σ₂ ≥ … (output units per input unit), all of them (exact, tokenwise) or the
            top k (lanczos); for slq the Ritz nodes of the density, sorted.
        method: ``exact`` (jacrev + svdvals), ``tokenwise`` (union of per-token block spectra), ``lanczos``
            (top-k by ARPACK on the matrix-free operator) or ``slq`` (stochastic Lanczos quadrature density).
        n_in, n_out: the sizes of J (input and output elements: tokens × width).
        noise_floor: σ at or below which a direction counts as zero (same units as values).
        floor_rule: how the floor was set, e.g. ``max(n_in, n_out)·eps64·σ₁``.
        rank: the number of singular values above the floor.
        rank_kind: ``exact`` (all values known), ``lower bound`` (top-k all above the floor) or ``estimate`` (slq).
        density: for slq, the SpectralDensity (Ritz nodes and weights); None otherwise.
        right_vectors: optional top input directions [k, n_in] (rows; not written to JSON).
    """

    values: np.ndarray
    method: str
    n_in: int
    n_out: int
    noise_floor: float
    floor_rule: str
    rank: int
    rank_kind: str
    density: SpectralDensity | None = None
    right_vectors: np.ndarray | None = field(default=None, repr=False)

    _json_exclude = ("right_vectors",)

    @property
    def sigma_max(self) -> float:
        return float(self.values[0]) if len(self.values) else 0.0

    @property
    def full_size(self) -> int:
        return min(self.n_in, self.n_out)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(index from 1, σ) in rank order; for slq the density's quantile curve."""
        if self.density is not None:
            return self.density.quantile_curve()
        return np.arange(1, len(self.values) + 1), self.values

    def plot(self, ax=None, *, label: str | None = None, color: str = style.TRAINED, floor: bool = True):
        """Singular values on a log scale against their index, with the noise floor drawn."""
        ax = style.axes(ax)
        index, sigma = self.curve()
        shown = np.maximum(sigma, self.noise_floor * 1e-3)  # exact zeros would vanish from a log axis
        ax.plot(index, shown, color=color, lw=1.2, label=label or f"{self.method} ({self.n_out}×{self.n_in})")
        if floor:
            ax.axhline(self.noise_floor, color=style.NULL, ls="--", lw=1, label=f"noise floor ({self.floor_rule})")
        ax.set_yscale("log")
        ax.set_xlabel("index i")
        ax.set_ylabel("singular value σᵢ")
        ax.legend(fontsize=7)
        return ax


def noise_floor(sigma_max: float, n_in: int, n_out: int, floor: float | None = None) -> tuple[float, str]:
    """The σ below which a direction is numerically zero, and the rule that set it.

    Default: ``max(n_in, n_out) · eps_float64 · σ₁``, the rank tolerance of ``numpy.linalg.matrix_rank`` (Golub &
    Van Loan §2.4.8; Press et al., Numerical Recipes §2.6): rounding in a float64 evaluation of J and its SVD moves
    singular values by about that much. A user ``floor`` (absolute, in σ units) replaces it.
    """
    if floor is not None:
        if floor < 0:
            raise ModscopeError(f"floor must be ≥ 0 (an absolute singular value), got {floor}")
        return float(floor), "user floor"
    return max(n_in, n_out) * EPS64 * float(sigma_max), "max(n_in, n_out)·eps64·σ₁"


def spectrum_from_values(
    values: np.ndarray, method: str, n_in: int, n_out: int, *, floor: float | None = None,
    complete: bool = True, right_vectors: np.ndarray | None = None,
) -> JacobianSpectrum:
    """Wrap known singular values: sort them, set the floor from σ₁ and count the rank against it."""
    values = np.sort(np.asarray(values, dtype=np.float64))[::-1].copy()
    level, rule = noise_floor(values[0] if len(values) else 0.0, n_in, n_out, floor)
    rank = int((values > level).sum())
    kind = "exact" if complete or rank < len(values) else "lower bound"
    return JacobianSpectrum(values, method, n_in, n_out, level, rule, rank, kind, None, right_vectors)


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
    n = min(n_in, n_out)
    if k is not None and not 1 <= k <= n:
        raise ModscopeError(f"k must be between 1 and min(n_in, n_out) = {n}, got {k}")
    if method == "auto":
        method = choose_method(n_in, n_out, k)
    if method == "lanczos" and (k is None or k >= n):
        raise ModscopeError(f"lanczos finds the top k < {n} values: pass k, or use method='exact' or 'slq'")
    if method == "exact":
        jac = jacobian_matrix(fn, x0, dtype=dtype, chunk_size=4096)
        if vectors:
            _, sigma, vh = torch.linalg.svd(jac, full_matrices=False)
            right = vh[:k].numpy()
        else:
            sigma, right = torch.linalg.svdvals(jac), None
        full = spectrum_from_values(sigma.numpy(), "exact", n_in, n_out, floor=floor, right_vectors=right)
        return full if k is None else truncate(full, k)
    op = operator(fn, x0, dtype=dtype)
    if method == "lanczos":
        start = np.random.default_rng(seed).standard_normal(min(op.shape))
        result = svds(op, k=k, tol=0, v0=start, solver="arpack", return_singular_vectors="vh" if vectors else False)
        sigma, right = (result[1], result[2]) if vectors else (result, None)
        order = np.argsort(-sigma)
        right = right[order] if right is not None else None
        return spectrum_from_values(sigma, "lanczos", n_in, n_out, floor=floor, complete=False, right_vectors=right)
    density = slq_density(op, probes=probes, steps=steps, seed=seed)
    nodes = np.sort(density.nodes)[::-1].copy()
    level, rule = noise_floor(nodes[0], n_in, n_out, floor)
    rank = int(round(density.fraction_above(level) * density.n))
    return JacobianSpectrum(nodes, "slq", n_in, n_out, level, rule, rank, "estimate", density)


def truncate(spectrum: JacobianSpectrum, k: int) -> JacobianSpectrum:
    """Keep the top k values; rank and floor stay those of the full spectrum."""
    return JacobianSpectrum(spectrum.values[:k].copy(), spectrum.method, spectrum.n_in, spectrum.n_out,
                            spectrum.noise_floor, spectrum.floor_rule, spectrum.rank, spectrum.rank_kind,
                            spectrum.density, spectrum.right_vectors)


@dataclass(frozen=True)
class TokenwiseSpectrum(JacobianSpectrum):
    """The exact spectrum of a token-wise (block-diagonal) Jacobian, with each token's share.

    Attributes (beyond JacobianSpectrum):
        token_ranks: rank of each token's block against the same floor [tokens].
        token_sigma_max: σ₁ of each token's block [tokens].
    """

    token_ranks: np.ndarray | None = None
    token_sigma_max: np.ndarray | None = None


def tokenwise_singular_values(
    token_fn: TensorFn, x: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64,
    floor: float | None = None,
) -> TokenwiseSpectrum:
    """The exact full spectrum of a map acting on each token alone, from T small blocks instead of one big J.

    ``J = diag(J_1, …, J_T)`` so ``σ(J) = ∪_t σ(J_t)``: T batched d×d SVDs (O(T d³)) replace one (Td)×(Td) SVD
    (O(T³ d³)). The floor is the one of the full J (``max(n_in, n_out)·eps64·σ₁`` with n = T·d), so
    ``rank = Σ_t token_ranks[t]``.

    Args:
        token_fn: the per-token map [d_in] -> [d_out]. x: tokens [T, d_in]. dtype: computation dtype.
        floor: an absolute floor replacing the default.

    Returns:
        A TokenwiseSpectrum (method ``tokenwise``).
    """
    blocks = tokenwise_jacobians(token_fn, x, dtype=dtype)
    # LAPACK gesdd per block through numpy: torch's batched CPU svdvals is many times slower on d×d stacks
    per_token = np.linalg.svd(blocks.numpy(), compute_uv=False)  # [T, min(d_out, d_in)]
    tokens, d_out, d_in = blocks.shape
    full = spectrum_from_values(per_token.reshape(-1), "tokenwise", tokens * d_in, tokens * d_out, floor=floor)
    token_ranks = (per_token > full.noise_floor).sum(axis=1)
    return TokenwiseSpectrum(full.values, "tokenwise", full.n_in, full.n_out, full.noise_floor, full.floor_rule,
                             full.rank, "exact", None, None, token_ranks, per_token[:, 0].copy())
