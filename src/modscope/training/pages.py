"""Probe pages (result.json + figures + index.html) for training runs, gradient analyses and null sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modscope.figures import NULL, TRAINED, axes
from modscope.report import write_probe
from modscope.training.spectrum import THRESHOLDS


def _loss_figure(losses, label="training loss (nats)", extra=None):
    ax = axes()
    window = max(1, len(losses) // 50)
    ax.plot(np.convolve(losses, np.ones(window) / window, "valid"), color=TRAINED, label="train")
    for name, series in (extra or {}).items():
        ax.plot(series, color=NULL, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.legend()
    return ax.figure


def write_train_page(out: Path, run, payload: dict) -> Path:
    return write_probe(
        out, probe="train", title=f"MNIST {run.config['arch']} training ({run.config['null'] or 'no null'})",
        question="Does the seeded MNIST run train, and where are its per-step gradients?", result=payload,
        headline=[f"{run.n_steps} steps, {run.n_params} parameters; final loss {payload['final_loss']:.3f} nats "
                  f"(chance ln 10 = 2.303).",
                  f"validation accuracy {run.valid_accuracy:.4f}, test {run.test_accuracy:.4f} (chance 0.1)."],
        verdict=f"trained to {run.test_accuracy:.1%} test accuracy; analyse with `modscope gradients --store {out}`.",
        figures={"loss": _loss_figure(run.losses)}, settings=run.config)


def write_modadd_page(out: Path, run, payload: dict) -> Path:
    ax = axes()
    ax.plot(run.train_accuracy, color=TRAINED, label="train accuracy")
    ax.plot(run.test_accuracy, color=NULL, label="test accuracy")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.legend()
    grok = run.grok_step
    return write_probe(
        out, probe="train-modadd", title=f"Modular addition mod {run.config['p']}",
        question="Does the small MLP grok (a + b) mod p, and when?", result=payload,
        headline=[f"train accuracy {run.train_accuracy[-1]:.3f}, test {run.test_accuracy[-1]:.3f} "
                  f"(chance {1 / run.config['p']:.3f}); test >= 0.95 first at step {grok}."],
        verdict="grokked" if grok is not None else "did not grok within the steps given; train longer",
        figures={"accuracy": ax.figure, "loss": _loss_figure(run.train_losses, extra={"test":
                                                                                      run.test_losses})},
        settings=run.config)


def count_table(analysis) -> pd.DataFrame:
    """The seed's table: counts per threshold for all steps (plain / centred), sampled, per tensor."""
    rows = []
    for name, spec in (("all steps", analysis.spectrum), ("all steps, centred", analysis.centred)):
        rows.append({"what": name, **{f"> {f:.2f}": spec.counts[f] for f in THRESHOLDS}})
    for name, study in analysis.sampling.items():
        rows.append({"what": f"{study.repeats} x {study.size} {name} (mean ± sd)",
                     **{f"> {f:.2f}": f"{study.mean[f]:.1f} ± {study.sd[f]:.1f}" for f in THRESHOLDS}})
    rows.append({"what": f"random-walk null ({analysis.random_walk.n_steps} steps)",
                 **{f"> {f:.2f}": analysis.random_walk.counts[f] for f in THRESHOLDS}})
    for tensor, counts in analysis.spectrum.per_param_counts.items():
        rows.append({"what": f"tensor {tensor}", **{f"> {f:.2f}": counts[f] for f in THRESHOLDS}})
    return pd.DataFrame(rows)


def write_gradients_page(out: Path, analysis, replay, store, note: str = "") -> Path:
    spec = analysis.spectrum
    rand = analysis.sampling["random"]
    rank = min(spec.n_steps, spec.n_params)
    spectrum_ax = spec.plot()
    analysis.centred.plot(spectrum_ax, colour=NULL, label="mean gradient subtracted", thresholds=False)
    figures = {"spectrum": spectrum_ax.figure, "sampling": rand.plot().figure,
               "residual": analysis.residual.plot().figure, "time_profiles": analysis.profiles.plot().figure}
    if analysis.logits is not None:
        figures["logit_pca"] = analysis.logits.plot().figure
    if replay is not None:
        figures["replay"] = replay.plot().figure
    held = analysis.residual
    headline = [
        f"{spec.counts[0.10]} of {rank} singular values exceed 10% of the largest over all {spec.n_steps} steps "
        f"({spec.counts[0.05]} at 5%, {spec.counts[0.15]} at 15%); a random walk of the same length keeps "
        f"{analysis.random_walk.counts[0.10]}.",
        f"sampling {rand.repeats} x {rand.size} random steps gives {rand.mean[0.10]:.1f} ± {rand.sd[0.10]:.1f} "
        f"at 10% (even spacing {analysis.sampling['even'].mean[0.10]:.1f}); centring: "
        f"{analysis.centred.counts[0.10]} all-steps.",
        f"top-10 directions of {held.n_fit} fit steps explain "
        f"{held.heldout_explained[np.searchsorted(held.ks, min(10, held.ks[-1]))]:.1%} of held-out gradient "
        f"norm² (random directions: {10 / spec.n_params:.1e}).",
    ]
    if np.isfinite(analysis.trajectory_pc[0]):
        headline.append(f"weight-trajectory PC1 holds {analysis.trajectory_pc[0]:.1%} of its variance "
                        f"(random walk: {analysis.random_walk.pc1_theory:.1%}).")
    if replay is not None:
        headline.append("replay final loss per k: " + ", ".join(
            f"k={k}: {v:.3f}" for k, v in zip(replay.ks, replay.final_loss, strict=True))
            + f" (original {replay.original_final_loss:.3f}; full rank max |diff| "
              f"{replay.max_abs_loss_diff[-1]:.2g} nats).")
    frac = spec.count_fraction[0.10]
    shape = "low-rank" if frac < 0.1 else "moderately low-rank" if frac < 0.6 else "not low-rank"
    verdict = (f"the gradient matrix is {shape}: {frac:.1%} of its possible rank lies above 10% of the largest "
               f"singular value (random walk {analysis.random_walk.counts[0.10] / rank:.0%}); "
               f"{rand.size}-step samples count {rand.mean[0.10]:.0f}, all steps {spec.counts[0.10]}.")
    return write_probe(
        out, probe="gradients", title="Spectrum of the per-step gradient matrix",
        question="How many directions does training move the weights in, and when does each act?",
        result={"analysis": analysis.to_json(), "replay": replay.to_json() if replay else None},
        headline=headline + ([note] if note else []), verdict=verdict, figures=figures,
        tables={"counts": count_table(analysis)},
        settings={"store": str(store.path) if store.path else "in memory", "steps": spec.n_steps,
                  "params": spec.n_params, **store.meta})


def write_sweep_page(out: Path, result) -> Path:
    table = pd.DataFrame({"condition": result.conditions, **{f"> {f:.2f}": result.counts[f] for f in THRESHOLDS},
                          "steps": result.n_steps, "params": result.n_params, "final loss": result.final_loss,
                          "valid acc": result.valid_accuracy})
    ref = result.conditions.index("none") if "none" in result.conditions else None
    ref_text = f"the unchanged run keeps {result.counts[0.10][ref]}" if ref is not None else "no unchanged run"
    return write_probe(
        out, probe="sweep", title="Gradient-spectrum counts under null conditions",
        question="Do the 'few singular values' survive when the data or model has no structure to learn?",
        result=result, headline=[f"{ref_text} above 10% of max; the null conditions range "
                                 f"{int(result.counts[0.10].min())}–{int(result.counts[0.10].max())}."],
        verdict=_sweep_verdict(result, ref),
        figures={"counts": result.plot().figure, "spectra": result.plot_spectra().figure},
        tables={"conditions": table}, settings={"center": result.center})


def _sweep_verdict(result, ref: int | None) -> str:
    if ref is None:
        return "add 'none' to --nulls to compare the null conditions with the unchanged run"
    base = int(result.counts[0.10][ref])
    others = [(c, int(n)) for i, (c, n) in enumerate(zip(result.conditions, result.counts[0.10], strict=True))
              if i != ref]
    more = [c for c, n in others if n > 2 * base]
    fewer = [c for c, n in others if n < base / 2]
    return (f"unchanged run: {base}; more than twice as many: {', '.join(more) or 'none'}; "
            f"fewer than half: {', '.join(fewer) or 'none'}.")
