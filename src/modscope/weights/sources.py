"""Where clusterability's weight matrices come from: the MNIST MLP (trained by ``mnist_loader``) or a causal LM."""

from __future__ import annotations

import numpy as np

from modscope.errors import ModscopeError
from modscope.weights.models import mlp_units, model_mlp_blocks

MNIST_NAMES = ("mnist-mlp", "random:mnist-mlp")


def network_units(
    name: str,
    *,
    layers: list[int] | None = None,
    gate: str = "sum",
    fold_norm: bool = False,
    epochs: int = 1,
    seed: int = 0,
    model_loader=None,
    mnist_loader=None,
) -> tuple[dict[str, list[np.ndarray]], str]:
    """The analysis units of a network given by name, and a description of the graph.

    ``mnist-mlp`` is the trained MNIST MLP (units: the whole network, then each layer); ``random:mnist-mlp`` is
    its initial weights. Any other name is a causal LM (``load_model`` name); its units are the MLP blocks.

    Args:
        name: network name. layers: LM blocks / MLP layers to keep (default all).
        gate, fold_norm: see :func:`modscope.weights.models.block_mlp_weights`.
        epochs, seed: MNIST training run. model_loader: ``callable(name) -> Model`` (default ``load_model``).
        mnist_loader: ``callable(epochs=, seed=)`` -> trained and initial weights (``trained``, ``init``,
            ``test_accuracy``) for the ``mnist-mlp`` names: ``modscope.training.mnist.mnist_mlp_weights``, passed
            in because training is a sibling probe package that this one does not import.

    Returns:
        ``(units, graph_description)``.
    """
    if name in MNIST_NAMES:
        if mnist_loader is None:
            raise ModscopeError(f"'{name}' is trained by modscope.training: pass "
                                "mnist_loader=modscope.training.mnist.mnist_mlp_weights")
        weights = mnist_loader(epochs=epochs, seed=seed)
        units = mlp_units(weights.trained if name == "mnist-mlp" else weights.init)
        if layers is not None:
            n_layers = sum(key.startswith("layer.") for key in units)
            bad = [layer for layer in layers if f"layer.{layer}" not in units]
            if bad:
                raise ModscopeError(f"layers {bad} out of range: {name} has layers 0..{n_layers - 1}")
            units = {"all": units["all"]} | {f"layer.{i}": units[f"layer.{i}"] for i in layers}
        sizes = "-".join(str(w.shape[0]) for w in weights.trained) + f"-{weights.trained[-1].shape[1]}"
        state = f"trained {epochs} epoch(s), test accuracy {weights.test_accuracy:.3f}" \
            if name == "mnist-mlp" else "initial weights of the same run"
        return units, f"MNIST MLP {sizes} ({state}); units: whole network and each layer; edges |W|"
    if model_loader is None:
        from modscope.models import load_model as model_loader
    model = model_loader(name)
    if layers is not None:
        bad = [layer for layer in layers if not 0 <= layer < model.n_layers]
        if bad:
            raise ModscopeError(f"layers {bad} out of range: {name} has blocks 0..{model.n_layers - 1}")
    units = model_mlp_blocks(model, layers, gate=gate, fold_norm=fold_norm)
    gated = any(hasattr(getattr(b.block, "mlp", b.block), "gate_proj") for b in model.adapter.layers[:1])
    w_in = {"sum": "|W_gate| + |W_up|", "up": "|W_up|", "gate": "|W_gate|"}[gate] if gated else "|W_in|"
    norm = ", pre-MLP norm gain folded into W_in" if fold_norm else ""
    return units, (f"MLP blocks d_model {model.d_model} -> d_mlp {model.d_mlp} -> d_model; "
                   f"edges in: {w_in}, out: |W_out|{norm}")
