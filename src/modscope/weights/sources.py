"""Where clusterability's weight matrices come from: the MNIST MLP (trained once, cached) or a causal LM by name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.errors import ModscopeError
from modscope.paths import cache_dir
from modscope.weights.models import mlp_units, mlp_weights, model_mlp_blocks

MNIST_NAMES = ("mnist-mlp", "random:mnist-mlp")


@dataclass(frozen=True)
class MnistWeights:
    """The MNIST MLP's weight matrices (``[n_in, n_out]``, float32) after training and at initialisation.

    Attributes:
        trained: weights after ``epochs`` of SGD. init: the same network's initial weights (its random twin).
        test_accuracy: accuracy of the trained network on the 10k test images (fraction).
        epochs, seed: the training run that produced them.
    """

    trained: list[np.ndarray]
    init: list[np.ndarray]
    test_accuracy: float
    epochs: int
    seed: int


def mnist_mlp_weights(*, epochs: int = 1, seed: int = 0, refresh: bool = False) -> MnistWeights:
    """Train the MNIST MLP of ``modscope.training.mnist`` once per (seed, epochs) and cache its weights.

    The cache file is ``cache_dir("mnist-mlp")/seed{seed}-epochs{epochs}.npz``; later calls read it (~ms).

    Args:
        epochs: training epochs (1 epoch of SGD reaches ~95% test accuracy). seed: init and batch-order seed.
        refresh: retrain even if cached.

    Returns:
        :class:`MnistWeights`.
    """
    if epochs < 1:
        raise ModscopeError(f"epochs must be >= 1, got {epochs}")
    path = cache_dir("mnist-mlp") / f"seed{seed}-epochs{epochs}.npz"
    if path.exists() and not refresh:
        with np.load(path) as data:
            n = int(data["n_layers"])
            return MnistWeights([data[f"trained_{i}"] for i in range(n)], [data[f"init_{i}"] for i in range(n)],
                                float(data["test_accuracy"]), epochs, seed)
    from modscope.training.mnist import train_mnist

    run = train_mnist(arch="mlp", epochs=epochs, seed=seed)
    trained = mlp_weights(run.model)
    # The state dict lists the Linear weights in module order, like mlp_weights does for the live model.
    init = [t.detach().float().numpy().T.copy() for key, t in run.init_state.items()
            if key.endswith("weight") and t.ndim == 2]
    arrays = {f"trained_{i}": w for i, w in enumerate(trained)} | {f"init_{i}": w for i, w in enumerate(init)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, n_layers=len(trained), test_accuracy=run.test_accuracy, **arrays)
    tmp.replace(path)
    return MnistWeights(trained, init, float(run.test_accuracy), epochs, seed)


def network_units(
    name: str,
    *,
    layers: list[int] | None = None,
    gate: str = "sum",
    fold_norm: bool = False,
    epochs: int = 1,
    seed: int = 0,
    model_loader=None,
) -> tuple[dict[str, list[np.ndarray]], str]:
    """The analysis units of a network given by name, and a description of the graph.

    ``mnist-mlp`` is the trained MNIST MLP (units: the whole network, then each layer); ``random:mnist-mlp`` is
    its initial weights. Any other name is a causal LM (``load_model`` name); its units are the MLP blocks.

    Args:
        name: network name. layers: LM blocks / MLP layers to keep (default all).
        gate, fold_norm: see :func:`modscope.weights.models.block_mlp_weights`.
        epochs, seed: MNIST training run. model_loader: ``callable(name) -> Model`` (default ``load_model``).

    Returns:
        ``(units, graph_description)``.
    """
    if name in MNIST_NAMES:
        weights = mnist_mlp_weights(epochs=epochs, seed=seed)
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
