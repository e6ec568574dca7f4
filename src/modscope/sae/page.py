"""The SAE report page: evaluation, density over training, feature logit tables and top contexts.

Gathers results computed elsewhere in this package and hands them to ``modscope.report.write_probe``; no maths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from modscope.results import Result

QUESTION = ("Which sparse features does this site decompose into, which tokens does each feature push up or down "
            "through the direct path to the logits, and are its ultra-rare features on their way to dying?")


@dataclass(frozen=True)
class SAEReport(Result):
    """Everything on an SAE's page (JSON-ready parts; the density history object is kept for its plots).

    Attributes:
        config: the SAEConfig as a dict. meta: the SAE's provenance (model, site, logit space, input scale).
        reconstruction: held-out MSE / FVE / cosine / L0 / dead fraction (see ``Reconstruction``).
        spliced: clean / spliced / zero-ablated loss and fraction recovered (``None`` without a model).
        density: the density history (dead, ultra-rare counts per checkpoint, trends of ultra-rare features).
        features: per shown feature, its density and top promoted / suppressed tokens.
        contexts: per shown feature, its top-activating contexts.
        tokens_per_second: training throughput.
    """

    config: dict
    meta: dict
    reconstruction: dict
    spliced: dict | None
    density: dict
    features: list
    contexts: list
    tokens_per_second: float
    history: Any = field(default=None, repr=False)
    loss_curve: dict = field(default_factory=dict)

    _json_exclude = ("history",)

    def plot(self, ax=None):
        return self.history.plot(ax)

    def plot_loss(self, ax=None):
        from modscope.figures import TRAINED, TWIN, axes, label

        ax = axes(ax)
        ax.plot(self.loss_curve["tokens"], self.loss_curve["mse"], color=TRAINED, label="MSE (normalised units)")
        ax.set_yscale("log")
        label(ax, x="training tokens", y="MSE")
        twin = ax.twinx()
        twin.plot(self.loss_curve["tokens"], self.loss_curve["l0"], color=TWIN, label="L0")
        twin.set_ylabel("L0 (latents/token)")
        ax.set_title("training curve")
        return ax


def pick_features(counts: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` live features drawn at random (seeded), sorted; fewer if fewer are alive."""
    alive = np.flatnonzero(np.asarray(counts) > 0)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(alive, size=min(n, len(alive)), replace=False)) if len(alive) else alive


def build_report(sae, model=None, windows: torch.Tensor | None = None, heldout: torch.Tensor | None = None, *,
                 n_features: int = 12, n_contexts: int = 6, top_tokens: int = 8) -> SAEReport:
    """Compute the page's results. ``heldout`` activations give the reconstruction metrics; ``model`` and token
    ``windows`` give the spliced loss, the logit tables and the top contexts (and held-out activations if none).
    """
    from modscope.sae.contexts import top_contexts
    from modscope.sae.evaluate import evaluate_reconstruction
    from modscope.sae.features import feature_logits
    from modscope.sae.logit_map import logit_map
    from modscope.sae.sources import site_activations
    from modscope.sae.splice import spliced_loss

    log = sae.log
    history = log.density() if log is not None and log.checkpoint_counts else None
    if heldout is None and model is not None and windows is not None:
        lmap = logit_map(model, sae.meta["site"]) if sae.meta.get("logit_space") else None
        heldout = site_activations(model, sae.meta["site"], windows, lmap)
    recon = evaluate_reconstruction(sae, heldout).to_json() if heldout is not None else {}
    counts = np.array(log.checkpoint_counts[-1]) if history is not None else np.ones(sae.n_latents)
    shown = pick_features(counts, n_features)
    features, contexts, spliced = [], [], None
    if model is not None:
        logits = feature_logits(model, sae, features=shown, top=top_tokens)
        density = counts / max(log.n_heldout, 1) if history is not None else np.full(sae.n_latents, np.nan)
        features = [{"feature": int(f), "density": float(density[f]),
                     "promoted": " ".join(map(repr, logits.promoted_tokens[i])),
                     "top_logit_weight": float(logits.promoted[i][0]),
                     "suppressed": " ".join(map(repr, logits.suppressed_tokens[i])),
                     "bottom_logit_weight": float(logits.suppressed[i][0])} for i, f in enumerate(shown)]
        if windows is not None:
            spliced = spliced_loss(model, sae, windows).to_json()
            found = top_contexts(model, sae, windows, features=shown, n_top=n_contexts)
            contexts = [{"feature": int(f), "examples": ex} for f, ex in zip(found.features, found.examples)]
    curve = ({k: getattr(log, k) for k in ("tokens", "mse", "l0", "dead", "aux_loss", "resampled")}
             if log is not None else {})
    return SAEReport(
        config=sae.cfg.to_dict(), meta=dict(sae.meta), reconstruction=recon, spliced=spliced,
        density=history.to_json() if history is not None else {}, features=features, contexts=contexts,
        tokens_per_second=float(log.tokens_per_second) if log is not None else float("nan"), history=history,
        loss_curve=curve,
    )


def headline(report: SAEReport) -> tuple[list[str], str]:
    """The page's headline sentences (each with its null) and its one-line verdict."""
    lines = []
    r = report.reconstruction
    if r:
        lines.append(f"Held-out FVE {r['fve']:.3f} (nulls: mean ablation 0, zero ablation "
                     f"{r.get('fve_zero_ablation', float('nan')):.3f}) at L0 {r['l0']:.1f} latents/token; "
                     f"{r.get('dead', 0)} latents ({r['dead_fraction']:.1%}) never fire on these tokens, "
                     f"{r.get('dense', 0)} are dense (fire on > {r.get('dense_threshold', 0.1):.0%} of them).")
    s = report.spliced
    if s:
        lines.append(f"Loss with the SAE spliced in {s['spliced']:.3f} nats/token vs clean {s['clean']:.3f}, "
                     f"zero-ablated {s['zero_ablated']:.3f} and mean-ablated {s.get('mean_ablated', float('nan')):.3f} "
                     f"(nulls): {s['loss_recovered']:.1%} of the loss recovered against zero ablation (SAELens' "
                     f"ce_loss_score), {s.get('loss_recovered_mean', float('nan')):.1%} against mean ablation.")
    d = report.density
    if d:
        lines.append(f"At the last checkpoint {d['dead'][-1]} features are dead and {d['ultra_rare'][-1]} ultra-rare "
                     f"(density < {d['threshold']:.0e}; resolution 1/{d['n_heldout']}); of the ultra-rare, "
                     f"{d['n_falling']} are falling and {d['n_rising']} rising by > 2 s.e. (null: slope 0).")
    verdict = "no evaluation available"
    if s and d:
        rare = d["ultra_rare"][-1]
        fate = (f"{d['n_falling'] / rare:.0%} of its {rare} ultra-rare features are still heading towards dead"
                if rare else f"none of its features is ultra-rare at this resolution (1/{d['n_heldout']} tokens), "
                             f"{d['dead'][-1]} are dead")
        verdict = f"The SAE recovers {s['loss_recovered']:.0%} of the site's loss contribution; {fate}."
    elif r:
        verdict = f"The SAE explains {r['fve']:.0%} of held-out variance at L0 {r['l0']:.1f}."
    return lines, verdict


def write_report(out: str | Path, report: SAEReport, settings: dict | None = None) -> Path:
    """Write the SAE page (result.json, figures, index.html) into ``out``."""
    from modscope.figures import axes
    from modscope.report import write_probe

    figures = {}
    if report.history is not None:
        figures["density_heatmap"] = report.history.plot(axes(figsize=(7, 4))).figure
        if len(report.history.ultra_rare_features):
            figures["ultra_rare_trends"] = report.history.plot_trends(axes(figsize=(6, 3.6))).figure
    if report.loss_curve:
        figures["training_curve"] = report.plot_loss(axes(figsize=(6, 3.6))).figure
    tables = {}
    if report.features:
        tables["feature logit weights (direct path, frozen final-norm scale)"] = pd.DataFrame(report.features)
    if report.contexts:
        rows = [{"feature": c["feature"], "activation": e["activation"], "context": e["context"]}
                for c in report.contexts for e in c["examples"]]
        tables["top-activating contexts ([[token]] is where the feature fires)"] = pd.DataFrame(rows)
    lines, verdict = headline(report)
    site = report.meta.get("site", "?") + (" (logit space)" if report.meta.get("logit_space") else "")
    return write_probe(out, probe="sae", title=f"SAE on {report.meta.get('model', '?')} {site}", question=QUESTION,
                       result=report, headline=lines, verdict=verdict, figures=figures, tables=tables,
                       settings=settings or {})
