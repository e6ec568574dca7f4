"""Replay a recorded MNIST run with each step's gradient projected onto the top-k singular directions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, axes
from modscope.results import Result
from modscope.training.gram import compute_gram
from modscope.training.loop import accuracy, make_optimizer, run_steps
from modscope.training.mnist import TrainRun, build_model, prepare_task
from modscope.training.nulls import parse_null
from modscope.training.spectrum import spectrum_of_gram
from modscope.training.store import as_store

EXACT_MAX_ELEMENTS = 1 << 25  # below this the stored matrix is held in float64 for an exact projection


@dataclass(frozen=True)
class ReplayResult(Result):
    """Loss curves of replays whose gradients were confined to the top-k right-singular subspace.

    The projector is ``P_k = V_k V_k^T`` with ``V_k = A^T U_k S_k^{-1}`` (A: recorded steps x parameters),
    applied as ``P_k g = A^T U_k S_k^{-2} U_k^T (A g)`` so ``V_k`` is never formed. Parameters that were not
    recorded keep their full gradient.

    Attributes:
        ks: subspace sizes replayed (clipped to the numerical rank). rank: numerical rank of ``A``.
        losses: float64 [len(ks), steps], training loss per step of each replay (nats).
        original_losses: float64 [steps], the recorded run. final_loss: mean loss of the last 10% of steps
            per replay; original_final_loss: the same for the recorded run.
        valid_accuracy: final validation accuracy per replay; original_valid_accuracy: recorded run's.
        max_abs_loss_diff: per replay, max over steps of |replay loss - original loss| (nats).
    """

    ks: np.ndarray
    rank: int
    losses: np.ndarray = field(repr=False)
    original_losses: np.ndarray = field(repr=False)
    final_loss: np.ndarray
    original_final_loss: float
    valid_accuracy: np.ndarray
    original_valid_accuracy: float
    max_abs_loss_diff: np.ndarray

    _json_exclude = ("losses", "original_losses")
    _frame_columns = ("ks", "final_loss", "valid_accuracy", "max_abs_loss_diff")

    def plot(self, ax=None):
        ax = axes(ax)
        window = max(1, len(self.original_losses) // 50)
        smooth = np.ones(window) / window
        ax.plot(np.convolve(self.original_losses, smooth, "valid"), color="k", lw=1.5, label="original")
        shades = np.linspace(0.35, 1.0, len(self.ks))
        for k, loss, shade in zip(self.ks, self.losses, shades, strict=True):
            ax.plot(np.convolve(loss, smooth, "valid"), color=TRAINED, alpha=float(shade), lw=1,
                    label=f"k = {k}")
        ax.axhline(np.log(10), color=NULL, ls=":", lw=0.8, label="chance (ln 10)")
        ax.set(xlabel="step", ylabel=f"training loss (nats, {window}-step mean)")
        ax.legend(fontsize=7)
        return ax


def replay_projected(run, ks=(1, 5, 10, 50, 100), *, include_full_rank: bool = True) -> ReplayResult:
    """Re-run a recorded MNIST run with each step's gradient projected onto the top-k singular directions.

    Same initial weights, same batches, same optimizer; at each step, after ``backward()``, the recorded
    tensors' gradient is replaced by its projection onto the span of the top-k parameter-space singular
    vectors of the whole recorded gradient matrix. With k = rank the projection is the identity on the
    recorded gradients, so the replay reproduces the original losses (to float round-off).

    Args:
        run: a TrainRun recorded with ``recorder=...``, or the directory / GradientStore of one recorded
            by ``train_mnist`` (its manifest holds the configuration; the seeded init is rebuilt).
        ks: subspace sizes. include_full_rank: also replay k = rank (the reproduction check).
    Returns:
        ReplayResult.
    """
    if isinstance(run, TrainRun):
        store, config = getattr(run.recorder, "store", None), run.config
        init_state, original, original_acc = run.init_state, np.asarray(run.losses), run.valid_accuracy
    else:
        store = as_store(run)
        config, init_state, original_acc = store.meta, None, float("nan")
        original = np.asarray(store.losses, dtype=np.float64)
        if "arch" not in config:
            raise ModscopeError("this gradient store has no MNIST training configuration; replay works on "
                                "runs recorded by `modscope train mnist` / train_mnist")
    if store is None or store.steps != list(range(len(original))) or store.n_steps < 2:
        raise ModscopeError("replay needs a run recorded at every step: train_mnist(..., recorder=True) "
                            "(or a directory) with every=1")
    gg = compute_gram(store, per_param=False)
    values, vecs = spectrum_of_gram(gg.gram)
    rank = int(np.sum(values > values[0] * 1e-7))
    kept = sorted({min(int(k), rank) for k in ks if k >= 0} | ({rank} if include_full_rank else set()))
    exact = store.n_steps * store.n_params <= EXACT_MAX_ELEMENTS
    dtype = np.float64 if exact else np.float32
    blocks = {n: store.block(n).astype(dtype) for n in store.names}
    task = prepare_task(config)
    losses, accs = [], []
    for k in kept:
        mixer = vecs[:, :k] @ np.diag(1.0 / values[:k] ** 2) @ vecs[:, :k].T  # U_k S_k^-2 U_k^T, steps x steps
        model = build_model(config["arch"], parse_null(config["null"]), seed=config["seed"])
        if init_state is not None:
            model.load_state_dict(init_state)
        params = dict(model.named_parameters())
        opt = make_optimizer(model.parameters(), config["optimizer"], config["lr"])

        def project(_t: int, params=params, mixer=mixer) -> None:
            grads = {n: params[n].grad.detach().reshape(-1).numpy().astype(dtype) for n in store.names}
            coeff = (mixer @ sum(blocks[n] @ grads[n] for n in store.names)).astype(dtype)
            with torch.no_grad():
                for n in store.names:
                    projected = (coeff @ blocks[n]).reshape(params[n].grad.shape)
                    params[n].grad.copy_(torch.from_numpy(projected.astype(np.float32)))

        losses.append(run_steps(model, opt, task.inputs, task.targets, task.batches, grad_transform=project))
        accs.append(accuracy(model, *task.valid))
    losses = np.stack(losses)
    if np.isnan(original_acc) and include_full_rank:
        original_acc = accs[-1]
    tail = max(1, len(original) // 10)
    return ReplayResult(
        ks=np.array(kept), rank=rank, losses=losses, original_losses=original,
        final_loss=losses[:, -tail:].mean(axis=1), original_final_loss=float(np.mean(original[-tail:])),
        valid_accuracy=np.array(accs), original_valid_accuracy=float(original_acc),
        max_abs_loss_diff=np.abs(losses - original[None]).max(axis=1))
