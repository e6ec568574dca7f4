"""The whole exact spectrum of a causal sequence map's Jacobian, faster than jacrev + a dense float64 SVD.

For a causal map f: [T, d_in] → [T, d_out] (a sublayer with a causal mask) output token t depends on inputs ≤ t
only, so J is block lower-triangular in tokens, and a trained attention layer's J is far from full rank (at 10
tokens, layer-1 attention of SmolLM2-135M has rank 2190 of 5760: the value path enters through 192 of 576
dimensions per token, the score path through a few per head and token pair). Two exact savings follow:

1. Row block t is built by reverse mode on the prefix x[:t+1] (d_out vjps of a (t+1)-token map): about half
   the work of ``jacrev`` on all T tokens.
2. An orthonormal basis Q of J's row space is grown token by token (each row block has support on the first
   (t+1)·d_in inputs only), so that σ(J) = σ(J·Q) above the floor: a dense SVD of an n × r matrix (r = rank)
   replaces the n × n one, and everything before it is BLAS-3 on the non-zero blocks.

No singular value is squared (no Gram), so the floor and the rank are those of the dense SVD:
``max(n_in, n_out)·eps64·σ₁``. Directions dropped while growing Q have a residual ≤ √n·eps64·σ₁ each, so all of
them together move J by at most that floor; the n − r values not computed are reported as 0 (a dense SVD
returns rounding noise below the floor there).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch.func import vjp, vmap

from modscope.errors import ModscopeError
from modscope.jacobian.operator import TensorFn, as_input, jacobian_matrix
from modscope.jacobian.parts import part_map
from modscope.jacobian.rank import EPS64
from modscope.jacobian.spectrum import JacobianSpectrum, spectrum_from_values
from modscope.models.model import Model


def causal_jacobian(fn: TensorFn, x: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64,
                    check: float = 1e-10) -> np.ndarray:
    """The dense Jacobian [T·d_out, T·d_in] of a causal map, row block t by reverse mode on the prefix x[:t+1].

    ``fn`` must accept any prefix length and satisfy ``fn(x[:t+1]) == fn(x)[:t+1]`` (true of a causal
    sublayer that is called on the tokens it is given); each prefix's last output is checked against the full
    pass (relative ``check``) and a map that fails raises ModscopeError instead of returning a wrong J.
    """
    x0 = as_input(x, dtype)
    if x0.ndim != 2:
        raise ModscopeError(f"a causal Jacobian needs tokens as rows [tokens, d], got shape {tuple(x0.shape)}")
    with torch.no_grad():
        full = fn(x0)
    tokens, d_in = x0.shape
    if full.ndim != 2 or full.shape[0] != tokens:
        raise ModscopeError(f"fn must map [tokens, d_in] to [tokens, d_out]; got {tuple(full.shape)} from "
                            f"{tuple(x0.shape)}")
    d_out = full.shape[1]
    jac = np.zeros((tokens * d_out, tokens * d_in), dtype=np.float64 if dtype == torch.float64 else np.float32)
    basis = torch.eye(d_out, dtype=dtype)
    scale = float(full.abs().max()) or 1.0
    for t in range(tokens):
        last, pullback = vjp(lambda v: fn(v)[-1], x0[: t + 1])
        if float((last.detach() - full[t]).abs().max()) > check * scale:
            raise ModscopeError(f"fn is not causal on prefixes: its output at token {t} changes when the tokens "
                                "after it are dropped; use causal=False (jacrev on the whole map)")
        rows = vmap(pullback)(basis)[0].detach()  # [d_out, t+1, d_in]
        jac[t * d_out: (t + 1) * d_out, : (t + 1) * d_in] = rows.reshape(d_out, -1).numpy()
    return jac


def row_space(jac: np.ndarray, tokens: int, tol: float) -> np.ndarray:
    """An orthonormal basis Q [n_in, r] of the row space of a block lower-triangular J, token block by block.

    Row block t (support: the first (t+1)·d_in inputs) is projected off the basis so far (twice: classical
    Gram-Schmidt with one re-orthogonalisation), and the right singular vectors of what is left with a singular
    value above ``tol``·σ (σ: the largest residual seen, a lower bound on σ₁(J)) join the basis with their part
    that is new to it (``new_directions``)."""
    d_out, d_in = jac.shape[0] // tokens, jac.shape[1] // tokens
    n = jac.shape[1]
    basis, rank, scale = np.zeros((n, min(n, max(d_in, n // 2)))), 0, 0.0
    for t in range(tokens):
        width = (t + 1) * d_in
        rest = jac[t * d_out: (t + 1) * d_out, :width].copy()
        old = basis[:width, :rank]
        for _ in range(2):
            rest -= (rest @ old) @ old.T
        _, sigma, vt = np.linalg.svd(rest, full_matrices=False)
        scale = max(scale, float(sigma[0]) if len(sigma) else 0.0)
        new = new_directions(vt[sigma > tol * scale], old)
        if rank + len(new) > basis.shape[1]:  # grow the capacity by half (rarely: the start is n/2)
            grown = np.zeros((n, min(n, max(rank + len(new), basis.shape[1] * 3 // 2))))
            grown[:, :rank] = basis[:, :rank]
            basis = grown
        basis[:width, rank: rank + len(new)] = new.T
        rank += len(new)
    return basis[:, :rank]


def new_directions(candidates: np.ndarray, old: np.ndarray) -> np.ndarray:
    """The part of ``candidates`` (orthonormal rows) that is new to the basis ``old``, as orthonormal rows.

    A right singular vector of the projected residual with σ near the threshold carries the projection's rounding
    (≈ √rank·eps64 of the block, as large as the threshold once the rank is in the thousands) and can point back
    into span(old): at 34 tokens of SmolLM2's attention one old direction came back 19 times (‖Q‖₂ = 4.36), which
    inflated σ(J·Q). So the candidates are projected off ``old`` once more (twice) and only directions that keep
    more than half of their length are kept."""
    if not len(candidates):
        return candidates
    for _ in range(2):
        candidates = candidates - (candidates @ old) @ old.T
    _, kept, rows = np.linalg.svd(candidates, full_matrices=False)
    return rows[kept > 0.5]


def check_orthonormal(basis: np.ndarray, *, iterations: int = 30, seed: int = 0) -> float:
    """‖Q‖₂ by power iteration on QᵀQ (O(n·r) per step); raises ModscopeError unless it is 1 to 1e-8, since
    σ(J·Q) equals σ(J) only for an orthonormal Q."""
    if not basis.shape[1]:
        return 0.0
    v = np.random.default_rng(seed).standard_normal(basis.shape[1])
    norm = 0.0
    for _ in range(iterations):
        v = basis.T @ (basis @ v)
        norm = float(np.linalg.norm(v))
        v /= norm
    if abs(norm - 1.0) > 1e-8:
        raise ModscopeError(f"the row-space basis is not orthonormal (‖QᵀQ‖₂ = {norm:.6g}); its singular values would "
                            "be wrong: use causal=False (jacrev and one dense SVD)")
    return float(np.sqrt(norm))


def causal_product(jac: np.ndarray, tokens: int, basis: np.ndarray) -> np.ndarray:
    """J·Q for a block lower-triangular J: row block t only meets the first (t+1)·d_in rows of Q."""
    d_out, d_in = jac.shape[0] // tokens, jac.shape[1] // tokens
    out = np.empty((jac.shape[0], basis.shape[1]))
    for t in range(tokens):
        rows = slice(t * d_out, (t + 1) * d_out)
        out[rows] = jac[rows, : (t + 1) * d_in] @ basis[: (t + 1) * d_in]
    return out


def exact_spectrum(fn: TensorFn, x: torch.Tensor | np.ndarray, *, causal: bool = True,
                   floor: float | None = None) -> JacobianSpectrum:
    """Every singular value of J = ∂fn/∂x at ``x`` and its rank, through J's row space (module docstring).

    Args:
        fn: a map [T, d_in] → [T, d_out]; with ``causal`` it must accept prefixes (see ``causal_jacobian``).
        x: the point [T, d_in]. causal: use the block-triangular structure (False: jacrev and one dense SVD).
        floor: an absolute σ floor replacing ``max(n_in, n_out)·eps64·σ₁``.

    Returns:
        A JacobianSpectrum (method ``exact``): all min(n_in, n_out) values (those outside the row space found
        are 0), the rank above the floor and the gap at it (nan when σ_{r+1} lies outside the row space found).
    """
    x0 = as_input(x, torch.float64)
    if not causal:
        jac = jacobian_matrix(fn, x0, chunk_size=4096).numpy()
        values = np.linalg.svd(jac, compute_uv=False)
        return spectrum_from_values(values, "exact", jac.shape[1], jac.shape[0], floor=floor, width=x0.shape[-1])
    jac = causal_jacobian(fn, x0)
    tokens = x0.shape[0]
    basis = row_space(jac, tokens, tol=np.sqrt(jac.shape[1]) * EPS64)
    check_orthonormal(basis)
    reduced = causal_product(jac, tokens, basis)
    n_out, n_in = jac.shape
    del jac, basis
    values = np.zeros(min(n_in, n_out))
    found = np.linalg.svd(reduced, compute_uv=False)[: len(values)]
    values[: len(found)] = found
    spectrum = spectrum_from_values(values, "exact", n_in, n_out, floor=floor, width=x0.shape[-1])
    if spectrum.rank >= len(found):  # σ_{r+1} lies outside Q (reported as 0, not computed): the gap is unknown
        spectrum = replace(spectrum, rank_gap=float("nan"))
    return spectrum


def prefix_part_fn(model: Model, input_ids: torch.Tensor, *, layer: int, part: str) -> TensorFn:
    """A sublayer map (``part_map``) that takes any prefix of ``input_ids``' tokens, for ``causal_jacobian``:
    length L runs the part as recorded on ``input_ids[:, :L]`` (its own mask and position embeddings; built on
    first use, then kept)."""
    maps: dict[int, TensorFn] = {}

    def fn(v: torch.Tensor) -> torch.Tensor:
        length = v.shape[0]
        if length not in maps:
            maps[length] = part_map(model, input_ids[:, :length], layer=layer, part=part).fn
        return maps[length](v)

    return fn
