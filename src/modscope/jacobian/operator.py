"""The Jacobian of a tensor function as a matrix-free scipy LinearOperator (jvp for J·v, vjp for Jᵀ·u)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch.func import jacrev, jvp, vjp, vmap

from modscope.errors import ModscopeError

TensorFn = Callable[[torch.Tensor], torch.Tensor]


def as_input(x: torch.Tensor | np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as a detached tensor of ``dtype`` (the point at which the Jacobian is taken)."""
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        raise ModscopeError(f"the Jacobian needs a floating-point input, got dtype {x.dtype}; pass activations")
    if x.numel() == 0:
        raise ModscopeError("the input is empty; pass at least one token's activation")
    return x.detach().to(dtype)


def output_shape(fn: TensorFn, x: torch.Tensor) -> torch.Size:
    """The shape of ``fn(x)`` (one forward pass without autograd)."""
    with torch.no_grad():
        y = fn(x)
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise ModscopeError("the function must return one floating-point tensor (e.g. a sublayer's output)")
    return y.shape


def operator(
    fn: TensorFn, x: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64, forward: str = "transpose"
) -> LinearOperator:
    """The Jacobian J = ∂fn/∂x at ``x`` as a LinearOperator, never materialised.

    With ``n_in = x.numel()`` and ``n_out = fn(x).numel()``, J is the [n_out, n_in] matrix
    ``J[i, j] = ∂ vec(fn(x))_i / ∂ vec(x)_j`` (row-major flattening). ``matvec(v) = J v`` is one forward-mode
    product (``torch.func.jvp``), ``rmatvec(u) = Jᵀ u`` one reverse-mode product (``torch.func.vjp``, whose
    linearisation is recorded once and reused), and ``matmat``/``rmatmat`` ``vmap`` them over columns.
    With ``forward="transpose"`` (default) J v is instead the vjp of the linear map u ↦ Jᵀu, recorded once
    too (the transpose trick, as JAX's ``linear_transpose``): the same numbers to rounding, without re-running
    ``fn``'s Python (Hugging Face modules) on every product, several times faster on small maps.
    Cost per product: about one forward or backward pass of ``fn``; memory O(n_in + n_out) plus one graph.

    Args:
        fn: a function of one tensor returning one tensor; it must be written in torch (no numpy inside).
        x: the point at which J is taken (any shape).
        dtype: the dtype of the products (float64 by default: the spectrum's tail is read against float64 eps).
        forward: how J v is computed: ``transpose`` (reverse over reverse, recorded once) or ``jvp``.

    Returns:
        A ``scipy.sparse.linalg.LinearOperator`` of shape (n_out, n_in) and dtype float64 (or float32).
    """
    x0 = as_input(x, dtype)
    y0, pullback = vjp(fn, x0)
    in_shape, out_shape = x0.shape, y0.shape
    np_dtype = np.float64 if dtype == torch.float64 else np.float32

    if forward not in ("transpose", "jvp"):
        raise ModscopeError(f"unknown forward product '{forward}'; use 'transpose' or 'jvp'")
    if forward == "transpose":
        # u ↦ Jᵀu is linear, so its own pullback at any u (zero here) is v ↦ J v
        _, transpose = vjp(lambda u: pullback(u)[0], torch.zeros_like(y0))

        def push(v: torch.Tensor) -> torch.Tensor:
            return transpose(v.reshape(in_shape))[0].reshape(-1)
    else:
        def push(v: torch.Tensor) -> torch.Tensor:
            # each tangent is a direction at the same point x0: the Jacobian is the same for every column
            return jvp(fn, (x0,), (v.reshape(in_shape),))[1].reshape(-1)

    def pull(u: torch.Tensor) -> torch.Tensor:
        return pullback(u.reshape(out_shape))[0].reshape(-1)

    def on_numpy(product: TensorFn, columns: bool = False) -> Callable[[np.ndarray], np.ndarray]:
        """``product`` on numpy arrays: of one vector, or (``columns``) of each column of a matrix."""
        product = vmap(product, in_dims=1, out_dims=1) if columns else product
        return lambda a: product(torch.from_numpy(np.ascontiguousarray(a, dtype=np_dtype))).detach().numpy()

    return LinearOperator((y0.numel(), x0.numel()), matvec=on_numpy(push), rmatvec=on_numpy(pull),
                          matmat=on_numpy(push, True), rmatmat=on_numpy(pull, True), dtype=np_dtype)


def jacobian_matrix(
    fn: TensorFn, x: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64, chunk_size: int | None = None
) -> torch.Tensor:
    """The dense Jacobian [n_out, n_in] by reverse mode: n_out vjps of one recorded linearisation, O(n_out·n_in) memory.

    The rows are ``torch.func.jacrev``'s (one ``vjp``, the standard basis pulled back ``chunk_size`` rows at a
    time under ``vmap``), but each chunk is detached as soon as it is computed: ``torch.func`` builds every
    backward with ``create_graph=True``, so when ``fn`` closes over tensors that require grad (a module's
    weights) each chunk would otherwise carry the graph of its own backward pass, and ``jacrev`` keeps all chunks
    until the end (memory growing with n_out times the size of ``fn``'s graph).

    Args:
        fn: a tensor function. x: the point. dtype: computation dtype.
        chunk_size: vjps per vmapped batch (bounds memory on large outputs; None = all at once; 1 = no vmap).

    Returns:
        J with ``J[i, j] = ∂ vec(fn(x))_i / ∂ vec(x)_j``.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ModscopeError(f"chunk_size must be a positive number of rows, got {chunk_size}")
    x0 = as_input(x, dtype)
    y0, pullback = vjp(lambda v: fn(v.reshape(x0.shape)).reshape(-1), x0.reshape(-1))
    n_out = y0.numel()
    if n_out == 0:
        return y0.new_zeros(0, x0.numel())
    step = n_out if chunk_size is None else min(chunk_size, n_out)
    rows = []
    for start in range(0, n_out, step):
        count = min(step, n_out - start)
        basis = y0.new_zeros(count, n_out)
        basis[torch.arange(count), torch.arange(start, start + count)] = 1
        if count == 1 and chunk_size == 1:
            rows.append(pullback(basis[0])[0].detach()[None])
        else:
            rows.append(vmap(pullback)(basis)[0].detach())
    return rows[0] if len(rows) == 1 else torch.cat(rows)


def tokenwise_jacobians(
    token_fn: TensorFn, x: torch.Tensor | np.ndarray, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Per-token Jacobians of a map that acts on each token alone (an MLP or norm without attention).

    For ``f(X)[t] = g(X[t])`` the Jacobian over all tokens is block diagonal,
    ``J = diag(J_1, …, J_T)`` with ``J_t = ∂g/∂x at X[t]`` ([d_out, d_in]), so its spectrum is the union of the
    T per-token spectra. The blocks are computed together by ``vmap(jacrev(g))``.

    Args:
        token_fn: g, mapping one token's vector [d_in] to [d_out].
        x: the tokens [T, d_in].
        dtype: computation dtype.

    Returns:
        The blocks [T, d_out, d_in].
    """
    x0 = as_input(x, dtype)
    if x0.ndim != 2:
        raise ModscopeError(f"token-wise Jacobians need tokens as rows [tokens, d], got shape {tuple(x0.shape)}")
    return vmap(jacrev(token_fn))(x0).detach()
