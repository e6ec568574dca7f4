"""Planted-dictionary recovery of a TopK SAE, with the auxiliary-K loss off and on.

Data: ``x = c D`` with ``atoms`` random unit atoms ``D`` in ``d`` dimensions, ``active`` of them per row with
coefficients uniform in [0.5, 1.5]. SAE: TopK with 128 latents, ``k = active + 1``. Reported per cell: the
fraction of atoms recovered (some decoder row with |cos| > 0.9), dead latents (firing on none of the held-out
rows, never trained on) and held-out FVE, for ``aux_k_coefficient`` 0 (off) and 1/32 (Gao et al. 2024).

Usage: .venv/bin/python benchmarks/sae_planted.py [--quick] [--threads 1]
  full: 3 dictionaries/sparsities x 3 seeds x aux off/on (~10 min on 1 core); --quick: one cell, 1 seed (~2 min).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from modscope.sae import SAEConfig, train
from modscope.sae.planted import planted_dictionary

RESULT = Path(__file__).resolve().parent / "results" / "sae_planted.json"
D_IN, LATENTS, ROWS, HELDOUT = 32, 128, 20_000, 8_000


def planted(atoms: int, active: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``c D`` [ROWS, D_IN] and the atoms ``D`` [atoms, D_IN] (unit rows)."""
    return planted_dictionary(D_IN, atoms, ROWS, active, seed)


def run_cell(atoms: int, active: int, seed: int, aux: float, tokens: int) -> dict:
    x, dictionary = planted(atoms, active, seed)
    cfg = SAEConfig(d_sae=LATENTS, architecture="topk", k=active + 1, batch_size=512, tokens=tokens, lr=2e-3,
                    heldout_tokens=HELDOUT, checkpoints=4, aux_k_coefficient=aux, dead_after_tokens=20_000, seed=seed)
    start = time.perf_counter()
    sae = train(x, cfg, device="cpu")
    seconds = time.perf_counter() - start
    best = np.abs(dictionary @ sae.W_dec.detach().cpu().numpy().T).max(axis=1)
    counts = sae.log.checkpoint_counts
    return {"atoms": atoms, "active": active, "k": cfg.k, "seed": seed, "aux_k_coefficient": aux,
            "recovered": float((best > 0.9).mean()), "dead_heldout": counts[-1].count(0),
            "dead_heldout_by_checkpoint": [c.count(0) for c in counts], "dead_window_final": sae.log.dead[-1],
            "fve": sae.log.checkpoint_fve[-1], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cells = [(96, 3)] if args.quick else [(96, 3), (64, 2), (96, 5)]
    seeds = [0] if args.quick else [0, 1, 2]
    tokens = 600_000 if args.quick else 1_200_000
    rows = []
    for atoms, active in cells:
        for seed in seeds:
            for aux in (0.0, 1 / 32):
                row = run_cell(atoms, active, seed, aux, tokens)
                rows.append(row)
                print(f"atoms {atoms:3d} active {active} k {row['k']} seed {seed} aux {aux:.4f}: recovered "
                      f"{row['recovered']:.3f} dead {row['dead_heldout']:3d} FVE {row['fve']:.3f} "
                      f"({row['seconds']:.0f} s)", flush=True)
    summary = {}
    for aux in (0.0, 1 / 32):
        picked = [r for r in rows if r["aux_k_coefficient"] == aux]
        summary["aux_on" if aux else "aux_off"] = {
            "mean_recovered": float(np.mean([r["recovered"] for r in picked])),
            "min_recovered": float(np.min([r["recovered"] for r in picked])),
            "mean_dead": float(np.mean([r["dead_heldout"] for r in picked])),
            "max_dead": int(np.max([r["dead_heldout"] for r in picked]))}
    print(json.dumps(summary, indent=1))
    RESULT.parent.mkdir(exist_ok=True)
    out = RESULT.with_name("sae_planted_quick.json") if args.quick else RESULT
    out.write_text(json.dumps({"benchmark": "sae_planted", "d_in": D_IN, "latents": LATENTS, "rows": ROWS,
                               "heldout_rows": HELDOUT, "tokens": tokens, "batch_size": 512, "lr": 2e-3,
                               "dead_after_tokens": 20_000, "threads": args.threads, "cells": rows,
                               "summary": summary, "target": ">= 0.99 recovered, 0 dead"}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
