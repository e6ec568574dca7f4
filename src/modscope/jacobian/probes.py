"""Model-facing Jacobian probes: sublayer spectra, end-to-end path spectra and ranks across layers."""

from __future__ import annotations

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.jacobian.parts import PARTS, part_map, path_map, stream_index
from modscope.jacobian.results import BlockSpectrum, LayerRanks, PathSpectrum, effective_rank
from modscope.jacobian.spectrum import (
    METHODS,
    JacobianSpectrum,
    singular_values,
    tokenwise_singular_values,
    truncate,
)
from modscope.models.model import Model


def token_ids(model: Model, text: str, tokens: int) -> torch.Tensor:
    """The first ``tokens`` token ids of ``text`` as [1, tokens]; too short a text is an error."""
    if tokens < 1:
        raise ModscopeError(f"tokens must be ≥ 1, got {tokens}")
    ids = model.tokenize([text], max_tokens=tokens)[0]
    if len(ids) < tokens:
        raise ModscopeError(f"the text has {len(ids)} tokens but {tokens} were asked for: give a longer text "
                            f"or fewer tokens")
    return torch.tensor([ids])


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    scale = float(want.abs().max()) or 1.0
    return float((got.detach().to(torch.float64) - want.to(torch.float64)).abs().max()) / scale


def part_spectrum(part_fn, token_fn, x: torch.Tensor, *, k: int | None, method: str,
                  floor: float | None, vectors: bool = False) -> JacobianSpectrum:
    """Token-wise (block-diagonal) exact spectrum where the part allows it, else ``singular_values``."""
    if method not in (*METHODS, "tokenwise"):
        raise ModscopeError(f"unknown method '{method}'; use one of {', '.join((*METHODS, 'tokenwise'))}")
    if token_fn is not None and method in ("auto", "tokenwise") and not vectors:
        full = tokenwise_singular_values(token_fn, x, floor=floor)
        return full if k is None else truncate(full, k)
    if method == "tokenwise":
        raise ModscopeError("method 'tokenwise' needs a part that acts token by token (part='mlp')")
    return singular_values(part_fn, x, k=k, method=method, floor=floor, vectors=vectors)


def block_spectrum(
    model: Model, text: str, *, layer: int, part: str = "mlp", residual: bool = False, tokens: int = 34,
    k: int | None = None, method: str = "auto", floor: float | None = None,
) -> BlockSpectrum:
    """Singular values of one sublayer's Jacobian on the first ``tokens`` tokens of ``text``.

    The part is the sublayer with its own pre-norm and without the residual addition (``residual=True`` adds
    the identity back), evaluated at the residual stream that enters it in the real forward pass; J is
    [tokens·d, tokens·d]. An MLP acts token by token, so its exact spectrum is the union of per-token d×d
    spectra (``tokenwise``, chosen by ``auto``); attention is lower block-triangular and goes to
    exact/lanczos/slq by size (see ``singular_values``).

    Args:
        model: a Model (a float64 eager copy is used for the maths). text: input text.
        layer: block index (negative counts from the end). part: ``attn`` | ``mlp`` | ``block``.
        residual: include the identity path. tokens: input length. k: top-k values only.
        method: ``auto`` | ``exact`` | ``tokenwise`` | ``lanczos`` | ``slq``. floor: absolute noise floor.

    Returns:
        A BlockSpectrum.
    """
    if part not in PARTS:
        raise ModscopeError(f"unknown part '{part}'; use one of {', '.join(PARTS)}")
    ids = token_ids(model, text, tokens)
    pm = part_map(model, ids, layer=layer, part=part, residual=residual)
    spectrum = part_spectrum(pm.fn, pm.token_fn, pm.x, k=k, method=method, floor=floor)
    return BlockSpectrum(model.name, layer % model.n_layers, part, residual, tokens, spectrum,
                         reproduction_error(model, ids, layer % model.n_layers, part, residual, pm))


def reproduction_error(model: Model, ids: torch.Tensor, layer: int, part: str, residual: bool, pm) -> float:
    """How far the isolated part's output is from the model's own float32 forward pass (relative max error)."""
    sites = {"attn": f"attn_out.{layer}", "mlp": f"mlp_out.{layer}", "block": f"resid_post.{layer}"}
    seen = model.run_with_sites(ids, [sites[part], f"resid_pre.{layer}"])
    want = seen[sites[part]][0].to(torch.float64)
    if part == "block" and not residual:
        want = want - seen[f"resid_pre.{layer}"][0].to(torch.float64)
    with torch.no_grad():
        got = pm.fn(pm.x) - (pm.x if residual and part != "block" else 0)
    return relative_error(got, want)


def path_spectrum(
    model: Model, text: str, *, src: str = "resid_pre.0", dst: str | None = None, src_pos: int = 0,
    dst_pos: int | None = None, k: int | None = None, method: str = "auto", floor: float | None = None,
    vectors: bool = False,
) -> PathSpectrum:
    """Singular values of ∂ x_dst[dst_pos] / ∂ x_src[src_pos] end to end (seed 000's question: last residual
    stream with respect to the first, at the same token or a later one).

    Args:
        model: a Model. text: input text (needs more than ``dst_pos`` tokens).
        src: ``embed`` | ``resid_pre.L`` | ``resid_post.L``. dst: a later stream site or ``final``
            (default: the last ``resid_post``). src_pos: source token. dst_pos: destination token (default src_pos).
        k, method, floor: as in ``singular_values``. vectors: keep the top input directions.

    Returns:
        A PathSpectrum.
    """
    dst = dst or f"resid_post.{model.n_layers - 1}"
    dst_pos = src_pos if dst_pos is None else dst_pos
    ids = token_ids(model, text, dst_pos + 1) if dst_pos >= 0 else token_ids(model, text, 1)
    pm = path_map(model, ids, src=src, dst=dst, src_pos=src_pos, dst_pos=dst_pos)
    spectrum = singular_values(pm.fn, pm.x, k=k, method=method, floor=floor, vectors=vectors)
    stop = stream_index(model, dst, "dst")
    site = "final" if stop > model.n_layers else f"resid_post.{stop - 1}"
    want = model.run_with_sites(ids, [site])[site][0, dst_pos]
    with torch.no_grad():
        error = relative_error(pm.fn(pm.x), want)
    return PathSpectrum(model.name, src, dst, src_pos, dst_pos, spectrum, error)


def layer_ranks(
    model: Model, text: str, *, part: str = "mlp", tokens: int = 34, layers: list[int] | None = None,
    residual: bool = False, method: str = "auto", floor: float | None = None,
) -> LayerRanks:
    """The numerical rank of one part's Jacobian at every layer (a tight pass is a dip below full rank).

    Args:
        model, text, part, tokens, residual, floor: as in ``block_spectrum``.
        layers: which blocks (default all). method: how each full spectrum is found (``auto``: token-wise for the
            MLP, exact for small attention inputs, slq estimates beyond).

    Returns:
        A LayerRanks.
    """
    layers = list(range(model.n_layers)) if layers is None else [layer % model.n_layers for layer in layers]
    ids = token_ids(model, text, tokens)
    spectra = []
    for layer in layers:  # each part map runs the model only up to its own block
        pm = part_map(model, ids, layer=layer, part=part, residual=residual)
        spectra.append(part_spectrum(pm.fn, pm.token_fn, pm.x, k=None, method=method, floor=floor))
    kinds = {s.rank_kind for s in spectra}
    return LayerRanks(
        model.name, part, residual, tokens, np.asarray(layers), np.array([s.rank for s in spectra]),
        spectra[0].full_size, np.array([s.sigma_max for s in spectra]), np.array([s.noise_floor for s in spectra]),
        kinds.pop() if len(kinds) == 1 else "mixed",
        np.array([effective_rank(s.singular_values) if s.density is None else np.nan for s in spectra]),
        np.array([s.float32_rank for s in spectra]), np.array([s.rank_gap for s in spectra]),
    )
