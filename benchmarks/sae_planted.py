"""Planted-dictionary recovery and dead latents of a TopK SAE: no aux loss, Gao et al.'s aux-K, modscope's aux-K.

Data: ``x = c D`` with ``atoms`` random unit atoms ``D`` in 32 dimensions, ``active`` of them per row with
coefficients uniform in [0.5, 1.5]; 100k rows, the last 20k held out (never trained on). SAE: TopK with 128
latents (more than atoms, so the surplus latents can only stay alive by splitting atoms), ``k = active + 2``,
2.4M tokens, batch 512, Adam 2e-3; everything else (aux-K coefficient 1/32, k_aux = d_in/2, dead window
= min(1e7, tokens/10, held-out tokens) = 20k tokens, tied initialisation) is `modscope sae train`'s default.
Reported per run: atoms recovered (some decoder row with |cos| > 0.9), dead latents (firing on none of the 20k
held-out rows, the same length as the training dead window), held-out FVE, for three arms: ``off`` (no aux
loss), ``paper`` (Gao et al. 2024's ``nmse(e_hat, e)``, swapped in here) and ``modscope`` (the default,
``1 - cos(e_hat, e)``, see ``modscope.sae.topk``).

Usage: .venv/bin/python benchmarks/sae_planted.py [--quick] [--threads 1] [--arms modscope,off,paper]
  full: 4 cells x 3 seeds x 3 arms (~30 s a run on one loaded core); --quick: one cell, one seed, 600k tokens.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from modscope.sae import SAEConfig, TopKSAE, train
from modscope.sae.planted import planted_dictionary
from modscope.sae.topk import _SelectedPreActs

RESULT = Path(__file__).resolve().parent / "results" / "sae_planted.json"
D_IN, LATENTS, ROWS, HELDOUT, BATCH, LR = 32, 128, 100_000, 20_000, 512, 2e-3
CELLS = [(96, 3), (96, 2), (64, 3), (64, 2)]


def paper_aux_k_loss(self, centred, pre, dead, k_aux, residual):
    """Gao et al. (2024) sec. A.2 as in their code: ``sum ||e - e_hat||^2 / sum ||e - mean e||^2``."""
    with torch.no_grad():
        values, idx = pre.masked_fill(~dead, float("-inf")).topk(k_aux, dim=-1)
    selected = _SelectedPreActs.apply(centred, self.W_enc, self.b_enc, idx, values)
    e_hat = F.embedding_bag(idx, self.W_dec, per_sample_weights=torch.relu(selected), mode="sum")
    return (e_hat - residual).pow(2).sum() / (residual - residual.mean(dim=0)).pow(2).sum().clamp_min(1e-12)


@contextmanager
def aux_form(arm: str):
    """Swap the paper's aux-K loss into TopKSAE for the ``paper`` arm."""
    ours = TopKSAE._aux_k_loss
    if arm == "paper":
        TopKSAE._aux_k_loss = paper_aux_k_loss
    try:
        yield
    finally:
        TopKSAE._aux_k_loss = ours


def run_cell(atoms: int, active: int, seed: int, arm: str, tokens: int) -> dict:
    x, dictionary = planted_dictionary(D_IN, atoms, ROWS, active, seed)
    cfg = SAEConfig(d_sae=LATENTS, architecture="topk", k=active + 2, batch_size=BATCH, tokens=tokens, lr=LR,
                    heldout_tokens=HELDOUT, checkpoints=4, seed=seed,
                    aux_k_coefficient=0.0 if arm == "off" else SAEConfig.aux_k_coefficient)
    start = time.perf_counter()
    with aux_form(arm):
        sae = train(x, cfg, device="cpu")
    seconds = time.perf_counter() - start
    best = np.abs(dictionary @ sae.W_dec.detach().cpu().numpy().T).max(axis=1)
    counts = sae.log.checkpoint_counts
    return {"atoms": atoms, "active": active, "k": cfg.k, "seed": seed, "arm": arm,
            "recovered": float((best > 0.9).mean()), "dead_heldout": counts[-1].count(0),
            "dead_heldout_by_checkpoint": [c.count(0) for c in counts], "n_heldout": sae.log.n_heldout,
            "dead_window_tokens": cfg.dead_window_tokens, "dead_window_final": sae.log.dead[-1],
            "fve": sae.log.checkpoint_fve[-1], "seconds": seconds}


def summarise(rows: list[dict]) -> dict:
    summary = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        picked = [r for r in rows if r["arm"] == arm]
        summary[arm] = {"runs": len(picked), "min_recovered": min(r["recovered"] for r in picked),
                        "mean_dead": float(np.mean([r["dead_heldout"] for r in picked])),
                        "max_dead": max(r["dead_heldout"] for r in picked),
                        "runs_meeting_target": sum(r["recovered"] >= 0.99 and r["dead_heldout"] == 0
                                                   for r in picked)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arms", default="modscope,off,paper")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cells = [(64, 2)] if args.quick else CELLS
    seeds = [0] if args.quick else [0, 1, 2]
    tokens = 600_000 if args.quick else 2_400_000
    out = RESULT.with_name("sae_planted_quick.json") if args.quick else RESULT
    out.parent.mkdir(exist_ok=True)
    rows = []
    for arm in args.arms.split(","):
        for atoms, active in cells:
            for seed in seeds:
                row = run_cell(atoms, active, seed, arm, tokens)
                rows.append(row)
                print(f"{arm:8s} atoms {atoms:3d} active {active} k {row['k']} seed {seed}: recovered "
                      f"{row['recovered']:.3f} dead {row['dead_heldout']:3d} FVE {row['fve']:.3f} "
                      f"({row['seconds']:.0f} s)", flush=True)
                out.write_text(json.dumps({  # after every run, so that a stopped benchmark keeps what it measured
                    "benchmark": "sae_planted", "d_in": D_IN, "latents": LATENTS, "rows": ROWS,
                    "heldout_rows": HELDOUT, "tokens": tokens, "batch_size": BATCH, "lr": LR,
                    "k": "active + 2", "threads": args.threads, "target": ">= 0.99 recovered and 0 dead in every run",
                    "cells": rows, "summary": summarise(rows)}, indent=1))
    print(json.dumps(summarise(rows), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
