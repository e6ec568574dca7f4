"""Probe pages (result.json + figures + index.html) for training runs, gradient analyses and null sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modscope.figures import NULL, TRAINED, axes
from modscope.report import write_probe
from modscope.training.spectrum import THRESHOLDS


def _curves_figure(ylabel: str, curves: dict, smooth: bool = False):
    """Curves against step, the first in the trained colour (``smooth``: its 1/50-of-the-run running mean)."""
    ax = axes()
    for i, (label, series) in enumerate(curves.items()):
        window = max(1, len(series) // 50) if smooth and not i else 1
        ax.plot(np.convolve(series, np.ones(window) / window, "valid"), color=NULL if i else TRAINED, label=label)
    ax.set(xlabel="step", ylabel=ylabel)
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
        figures={"loss": _curves_figure("training loss (nats)", {"train": run.losses}, smooth=True)},
        settings=run.config)


def write_modadd_page(out: Path, run, payload: dict) -> Path:
    grok = run.grok_step
    return write_probe(
        out, probe="train-modadd", title=f"Modular addition mod {run.config['p']}",
        question="Does the small MLP grok (a + b) mod p, and when?", result=payload,
        headline=[f"train accuracy {run.train_accuracy[-1]:.3f}, test {run.test_accuracy[-1]:.3f} "
                  f"(chance {1 / run.config['p']:.3f}); test >= 0.95 first at step {grok}."],
        verdict="grokked" if grok is not None else "did not grok within the steps given; train longer",
        figures={"accuracy": _curves_figure("accuracy", {"train accuracy": run.train_accuracy,
                                                         "test accuracy": run.test_accuracy}),
                 "loss": _curves_figure("training loss (nats)", {"train": run.train_losses, "test": run.test_losses},
                                        smooth=True)},
        settings=run.config)


def count_table(analysis) -> pd.DataFrame:
    """The seed's table: counts per threshold for all steps (plain / centred), sampled, per tensor."""
    spec, walk = analysis.spectrum, analysis.random_walk
    rows = [("all steps", spec.counts.get), ("all steps, centred", analysis.centred.counts.get)]
    rows += [(f"{s.repeats} x {s.size} {name} (mean ± sd)", lambda f, s=s: f"{s.mean[f]:.1f} ± {s.sd[f]:.1f}")
             for name, s in analysis.sampling.items()]
    rows.append((f"random-walk null ({walk.n_steps} steps)", walk.counts.get))
    rows += [(f"tensor {tensor}", counts.get) for tensor, counts in spec.per_param_counts.items()]
    return pd.DataFrame([{"what": what, **_per_threshold(cell)} for what, cell in rows])


def _per_threshold(cell) -> dict:
    """``{"> 0.05": cell(0.05), ...}``: one column per count threshold."""
    return {f"> {f:.2f}": cell(f) for f in THRESHOLDS}


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
        figures["replay"] = replay.plot().figure
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
    table = pd.DataFrame({"condition": result.conditions, **_per_threshold(result.counts.get),
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
