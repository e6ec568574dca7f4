"""The model-facing side of ``modscope grokking``: read a modadd run, find its Fourier components, ablate them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, TWIN, axes
from modscope.results import Result
from modscope.training.fourier import (
    TOP_K,
    LossPCA,
    ablate_direction,
    fourier_directions,
    fourier_null,
    loss_pca,
    per_example_loss,
    top_directions,
)
from modscope.training.modadd import CHECKPOINTS_FILE, make_modadd_mlp, modadd_data

EMBEDDING = "0.weight"  # the first layer's weight [width, 2p]: one column per residue of a and of b


@dataclass(frozen=True)
class GrokkingStudy(Result):
    """Fourier components of a modular-addition run and what removing each does.

    Fields:
        config: the run's settings (p, width, steps, ...). grok_step: first step with test accuracy >= 0.95.
        components: one record per top singular direction of the embedding's gradient matrix (``gradient``,
            uncentred) and of its weight trajectory over checkpoints (``weights``, mean-subtracted), restricted
            to the first-layer weight: Fourier top-k share, IPR, n_effective, dominant frequencies, sparse/dense.
        null: FourierNull of random directions. ablations: per component, train/test accuracy and loss (nats)
            of the final weights with that direction projected out, next to ``baseline``.
        loss_pca: LossPCA of per-example losses of the probe over checkpoints (None without checkpoints).
        curves: step, train/test loss and accuracy (thinned to <= 500 points).
    """

    config: dict
    grok_step: int | None
    components: list
    null: object
    baseline: dict
    ablations: list
    loss_pca: LossPCA | None
    curves: dict

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame([{k: v for k, v in c.items() if k != "dominant"} for c in self.components])
        frame["dominant"] = [", ".join(str(f) for f, _ in c["dominant"][:3]) for c in self.components]
        return frame.merge(pd.DataFrame(self.ablations), on=["source", "component"], how="left")

    def plot(self, ax=None):
        """Top-k Fourier share of each component (gradient, weights) against the random-direction null band."""
        ax = axes(ax)
        frame = self.table()
        for source, colour, marker in (("gradient", TRAINED, "o"), ("weights", TWIN, "s")):
            part = frame[frame["source"] == source]
            ax.plot(part["component"], part["top_share"], marker, color=colour, label=f"{source} SVD direction")
        null = self.null
        ax.axhspan(null.top_share_mean - 2 * null.top_share_sd, null.top_share_q99, color=NULL, alpha=0.3,
                   label=f"random directions (mean-2sd .. q99, n={null.n})")
        ax.set(xlabel="component (singular direction, by size)", ylabel=f"energy share in top {TOP_K} frequencies",
               ylim=(0, 1.02))
        ax.legend(fontsize=7)
        return ax


def load_run(run_dir: Path) -> dict:
    """The pieces of a ``modscope train modadd --out RUN_DIR`` run: config, gradient store, final state, checkpoints."""
    from modscope.training.store import GradientStore

    run_dir = Path(run_dir)
    grads = run_dir / "grads" if (run_dir / "grads").is_dir() else run_dir
    try:
        store = GradientStore.open(grads)
    except (ModscopeError, FileNotFoundError, OSError):
        raise ModscopeError(f"{run_dir} holds no gradient store; give the --out of `modscope train modadd`") from None
    if store.meta.get("task") != "modadd":
        raise ModscopeError(f"{run_dir} is not a modadd run (task {store.meta.get('task')!r}); train one with "
                            "`modscope train modadd --out DIR`")
    if EMBEDDING not in store.names or store.state_file is None:
        raise ModscopeError(f"{run_dir} lacks the first-layer gradients or the final state; retrain with "
                            "`modscope train modadd --out DIR` (all parameters are recorded by default)")
    state = torch.load(grads / store.state_file, weights_only=False)["model"]
    checkpoints = None
    if (grads / CHECKPOINTS_FILE).is_file():
        with np.load(grads / CHECKPOINTS_FILE) as data:
            checkpoints = {k: data[k] for k in data.files}
    return {"config": dict(store.meta), "store": store, "state": state, "checkpoints": checkpoints}


def evaluate(config: dict, state: dict, embedding: np.ndarray | None = None) -> dict:
    """Train/test accuracy and mean cross-entropy (nats) of the modadd MLP with ``state`` (first layer replaced)."""
    p, width = int(config["p"]), int(config["width"])
    inputs, labels, train_idx, test_idx = modadd_data(p, float(config["train_frac"]), int(config.get("seed", 0)))
    model = make_modadd_mlp(p, width)
    model.load_state_dict(state)
    if embedding is not None:
        model[0].weight.data = torch.as_tensor(embedding, dtype=torch.float32).reshape(width, 2 * p)
    out = {}
    with torch.no_grad():
        for split, idx in (("train", train_idx), ("test", test_idx)):
            logits = model(inputs[idx])
            out[f"{split}_accuracy"] = float((logits.argmax(-1) == labels[idx]).float().mean())
            out[f"{split}_loss"] = float(torch.nn.functional.cross_entropy(logits, labels[idx]))
    return out


def grokking_study(run: dict, *, components: int = 5, max_rows: int = 1000, n_null: int = 200,
                   seed: int = 0) -> GrokkingStudy:
    """Fourier sparsity and ablation of the top ``components`` directions of gradient and weight SVDs (``load_run``).

    Gradient rows beyond ``max_rows`` are thinned to evenly spaced steps.
    """
    config, store, state, ckpt = run["config"], run["store"], run["state"], run["checkpoints"]
    p, width = int(config["p"]), int(config["width"])
    shape = (width, 2, p)
    rows = np.unique(np.linspace(0, store.n_steps - 1, min(max_rows, store.n_steps)).round().astype(int))
    null = fourier_null(shape, p, n=n_null, seed=seed)
    matrices = {"gradient": (store.block(EMBEDDING, rows), False)}  # (matrix, centre: a trajectory's PCA)
    if ckpt is not None and len(ckpt["checkpoint_steps"]) >= 3:
        matrices["weights"] = (ckpt["embedding_snapshots"].reshape(len(ckpt["checkpoint_steps"]), -1), True)
    records, directions = [], {}
    for source, (matrix, centre) in matrices.items():
        values, vecs, total = top_directions(matrix, components, centre=centre, seed=seed)
        records += fourier_directions(vecs, values, p=p, shape=shape, null=null, total=total, source=source)
        directions[source] = vecs
    final = state[EMBEDDING].numpy()
    baseline = evaluate(config, state)
    ablations = [{"source": source, "component": k,
                  **{f"ablated_{key}": value for key, value in evaluate(config, state,
                                                                        ablate_direction(final, v)).items()}}
                 for source, vecs in directions.items() for k, v in enumerate(vecs)]
    pca, curves, grok = None, {}, None
    if ckpt is not None:
        labels = modadd_data(p, float(config["train_frac"]), int(config.get("seed", 0)))[1].numpy()
        if len(ckpt["checkpoint_steps"]) >= 3:
            losses = per_example_loss(ckpt["probe_logits"], labels[ckpt["probe_index"]])
            pca = loss_pca(losses, ckpt["checkpoint_steps"])
        keep = np.unique(np.linspace(0, len(ckpt["train_losses"]) - 1, 500).round().astype(int))
        curves = {"step": keep.tolist(), **{k: ckpt[k][keep].tolist() for k in
                                            ("train_losses", "test_losses", "train_accuracy", "test_accuracy")}}
        grokked = np.flatnonzero(ckpt["test_accuracy"] >= 0.95)
        grok = int(grokked[0]) if grokked.size else None
    return GrokkingStudy(config=config, grok_step=grok, components=records, null=null, baseline=baseline,
                         ablations=ablations, loss_pca=pca, curves=curves)


def verdict(study: GrokkingStudy) -> str:
    """Is there a dense component among the top ones, and does removing it help the test loss?"""
    frame = study.table()
    dense = frame[~frame["sparse"]]
    base = study.baseline
    caution = ""
    if float(frame["top_share"].max()) < 2 * study.null.top_share_mean:
        # above the null's q99 is not the same as concentrated: say how close to random every direction is
        caution = (f" Every top direction is close to dense, though: top-{TOP_K} shares "
                   f"{frame['top_share'].min():.3f}–{frame['top_share'].max():.3f} against "
                   f"{study.null.top_share_mean:.3f} for random directions (at least "
                   f"{frame['n_effective'].min():.0f} effective frequencies of {int(study.config['p']) // 2 + 1}), "
                   "so 'sparse' means only above the random q99; a direction pooled over hidden units is broad "
                   "when different units use different frequencies.")
    if dense.empty:
        return (f"No dense component: all {len(frame)} top directions are Fourier-sparse (top-{TOP_K} share above "
                f"the random-direction q99 {study.null.top_share_q99:.2f}).{caution}")
    row = dense.sort_values("singular_value", ascending=False).iloc[0]
    p = int(study.config["p"])
    n_test = p * p - int(round(float(study.config["train_frac"]) * p * p))
    acc = float(base["test_accuracy"])
    # "helps" only when test accuracy rises by more than twice its binomial standard error on the test pairs
    margin = 2 * np.sqrt(max(acc * (1 - acc), 1.0 / n_test) / n_test)
    gain = float(row["ablated_test_accuracy"]) - acc
    effect = ("helps generalization" if gain > margin else "hurts generalization" if gain < -margin else
              f"does not change test accuracy beyond its noise (±{margin:.3f}, {n_test:,} test pairs)")
    grokked = ("" if study.grok_step is not None else
               f" This run did not grok (test accuracy never reached 0.95; {acc:.3f} at the end), so it cannot show "
               "whether removing the dense component helps a grokked model.")
    return (f"Dense component: {row['source']} component {int(row['component'])} (variance share "
            f"{100 * row['variance_share']:.0f}%, top-{TOP_K} share {row['top_share']:.3f}, random directions "
            f"{study.null.top_share_mean:.3f} ± {study.null.top_share_sd:.3f}); removing it {effect}: test accuracy "
            f"{acc:.3f} → {row['ablated_test_accuracy']:.3f}, test loss {base['test_loss']:.3f} → "
            f"{row['ablated_test_loss']:.3f} nats.{grokked}{caution}")


def grokking_report(run_dir: Path, *, components: int = 5, max_rows: int = 1000, seed: int = 0,
                    out: Path | None = None) -> dict:
    """Seed 004's comments on a modadd run: page with the components, null, ablations and loss PCA."""
    from modscope.figures import subplots
    from modscope.report import write_probe

    study = grokking_study(load_run(run_dir), components=components, max_rows=max_rows, seed=seed)
    frame = study.table()
    base = study.baseline
    headline = [f"final weights: train accuracy {base['train_accuracy']:.3f}, test {base['test_accuracy']:.3f}; "
                f"test loss {base['test_loss']:.3f} nats; test accuracy >= 0.95 first at step "
                f"{study.grok_step if study.grok_step is not None else 'never (the run did not grok)'}.",
                f"random directions: top-{TOP_K} Fourier share {study.null.top_share_mean:.3f} ± "
                f"{study.null.top_share_sd:.3f} (q99 {study.null.top_share_q99:.3f}), "
                f"{study.null.n_effective_mean:.1f} effective frequencies of {study.config['p'] // 2 + 1}."]
    for source in dict.fromkeys(frame["source"]):
        part = frame[frame["source"] == source]
        headline.append(f"{source} SVD: {int(part['sparse'].sum())} of {len(part)} top directions sparse; top-"
                        f"{TOP_K} shares " + ", ".join(f"{v:.2f}" for v in part["top_share"]) + ".")
    figs = {"fourier_sparsity": study.plot().figure}
    if study.loss_pca is not None:
        headline.append(f"per-example loss PCA: PC1 {100 * study.loss_pca.explained[0]:.0f}%, PC2 "
                        f"{100 * study.loss_pca.explained[1]:.0f}%; sharpest turns at steps "
                        f"{', '.join(str(s) for s in study.loss_pca.turning_steps)}.")
        fig, (left, right) = subplots(1, 2, figsize=(10, 3.6))
        study.loss_pca.plot(left)
        curves = study.curves
        right.plot(curves["step"], curves["train_losses"], color=TRAINED, label="train loss")
        right.plot(curves["step"], curves["test_losses"], color=NULL, label="test loss")
        right.set_yscale("log")
        for step in study.loss_pca.turning_steps:
            right.axvline(step, color=TRAINED, ls=":", lw=1)
        if study.grok_step is not None:
            right.axvline(study.grok_step, color="k", ls="--", lw=1, label=f"grok step {study.grok_step}")
        right.set(xlabel="step", ylabel="loss (nats)")
        right.legend(fontsize=7)
        figs["loss_pca"] = fig
    payload = {"probe": "grokking", "headline": headline, "verdict": verdict(study), "result": study.to_json()}
    if out is not None:
        write_probe(out, probe="grokking", title="Grokking components in the Fourier basis",
                    question="Is one top gradient/weight component dense in the Fourier basis of Z_p, and does "
                             "removing it help generalization (seed 004's comments)?",
                    result=study, headline=headline, verdict=payload["verdict"], figures=figs,
                    tables={"components": frame.round(4)},
                    settings={"run": str(run_dir), "components": components, "max_rows": max_rows, "seed": seed})
    return payload
