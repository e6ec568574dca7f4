"""Weight matrices of real networks as layered graphs: torch MLPs and every MLP block of a causal LM."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from modscope.errors import ModscopeError
from modscope.models.adapters import linear_weight_in_out

GATE_COMBINE = ("sum", "up", "gate")
_UP_NAMES = ("up_proj", "c_fc", "fc1", "dense_h_to_4h", "w1", "fc_in")
_GATE_NAMES = ("gate_proj", "w3")


def _numpy(weight: torch.Tensor) -> np.ndarray:
    return weight.detach().to(torch.float32).cpu().numpy()


def mlp_weights(module: nn.Module) -> list[np.ndarray]:
    """The ``nn.Linear`` weights of an MLP, in module order, each oriented ``[n_in, n_out]``.

    Biases and elementwise nonlinearities are not edges between neurons, so they are left out (as in Filan et
    al. 2021).

    Args:
        module: e.g. ``nn.Sequential(Linear, ReLU, Linear, ...)``; every Linear must feed the next one.

    Returns:
        ``[W_0 [n_0, n_1], W_1 [n_1, n_2], ...]`` as float32 arrays.
    """
    convs = [name for name, m in module.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if convs:
        raise ModscopeError(f"clusterability's neuron graph is defined for MLPs; this module has convolutions "
                            f"({', '.join(convs[:3])}); pass the weight matrices of its Linear layers instead")
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModscopeError(f"{type(module).__name__} has no nn.Linear layers; pass a list of weight matrices")
    return [_numpy(m.weight.T) for m in linears]


def _find(container: nn.Module, names: tuple[str, ...]) -> nn.Module | None:
    return next((getattr(container, name) for name in names if hasattr(container, name)), None)


def block_mlp_weights(model, layer: int, *, gate: str = "sum", fold_norm: bool = False) -> list[np.ndarray]:
    """The MLP of one transformer block as a 3-layer graph ``d_model -> d_mlp -> d_model``.

    ``W_in`` is the up projection ``[d_model, d_mlp]``; for gated MLPs (Llama's
    ``down(act(gate x) * up x)``) the input edge combines both input matrices:

    - ``gate="sum"`` (default): ``|W_gate| + |W_up|``. The residual dimension ``j`` reaches hidden unit ``i`` along
      two parallel edges, and parallel edges of a multigraph add. It is also the activation-free proxy of the
      unit's sensitivity ``dh_i/dx_j = act'(.) (W_up x)_i W_gate[j, i] + act(.) W_up[j, i]``, with both scales 1.
    - ``gate="up"`` / ``"gate"``: use one of the two matrices only.

    Args:
        model: a ``modscope.models.Model``.
        layer: block index.
        gate: how to combine gate and up for gated MLPs (ignored for ungated ones).
        fold_norm: multiply ``W_in``'s rows by the gain of the pre-MLP norm (the effective input weights).

    Returns:
        ``[W_in [d_model, d_mlp], W_out [d_mlp, d_model]]`` (signed; the graph takes absolute values).
    """
    if gate not in GATE_COMBINE:
        raise ModscopeError(f"unknown gate combination '{gate}'; use one of {', '.join(GATE_COMBINE)}")
    if not 0 <= layer < model.n_layers:
        raise ModscopeError(f"layer {layer} out of range: {model.name} has layers 0..{model.n_layers - 1}")
    modules = model.adapter.layers[layer]
    container = getattr(modules.block, "mlp", modules.block)
    up = _find(container, _UP_NAMES)
    gate_module = _find(container, _GATE_NAMES)
    if up is None:
        raise ModscopeError(f"cannot find the MLP input projection of {model.adapter.arch} block {layer} "
                            f"(looked for {', '.join(_UP_NAMES)}); pass the matrices to clusterability directly")
    w_up = _numpy(linear_weight_in_out(up))
    w_gate = None if gate_module is None or gate == "up" else _numpy(linear_weight_in_out(gate_module))
    w_in = w_up if w_gate is None else w_gate if gate == "gate" else np.abs(w_gate) + np.abs(w_up)
    if fold_norm and getattr(modules.ln_mlp, "weight", None) is not None:
        w_in = w_in * _numpy(modules.ln_mlp.weight)[:, None]
    w_out = _numpy(linear_weight_in_out(modules.mlp_down))
    return [w_in, w_out]


def model_mlp_blocks(
    model, layers: list[int] | None = None, *, gate: str = "sum", fold_norm: bool = False
) -> dict[str, list[np.ndarray]]:
    """``{"mlp.L": [W_in, W_out]}`` for each requested block (default: all), see :func:`block_mlp_weights`."""
    chosen = range(model.n_layers) if layers is None else layers
    return {f"mlp.{layer}": block_mlp_weights(model, layer, gate=gate, fold_norm=fold_norm) for layer in chosen}


def mlp_units(weights: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """An MLP classifier as analysis units: the whole network, then each weight matrix's bipartite graph."""
    units = {"all": list(weights)}
    if len(weights) > 1:
        units.update({f"layer.{i}": [w] for i, w in enumerate(weights)})
    return units
