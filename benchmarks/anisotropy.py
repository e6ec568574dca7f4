"""Exact all-pairs cosine histogram of the full embedding matrix vs the machine's float32 GEMM rate, same run.

Claim (issue "Representation geometry"): ``cosine_histogram`` over all n(n-1)/2 pairs of the 49152 x 576 embedding
of the embedded model runs at >= 50 % of the float32 GEMM rate measured in the same run on the same block shape
(the useful work is n(n-1)/2 dot products of length d, i.e. n(n-1) d flops). For reference it also times seed 003's
method (a 5k-token sample, the full 5k x 5k matrix, numpy histogram). GEMM-rate and histogram runs are interleaved
so that load from other processes affects both alike. Writes benchmarks/results/anisotropy.json.

    .venv/bin/python benchmarks/anisotropy.py [--rows 49152] [--block 2048] [--repeats 2] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from modscope import load_model
from modscope.geometry import cosine_histogram


def gemm_rate(unit: torch.Tensor, block: int, seconds: float = 3.0) -> float:
    """float32 flop/s of torch.mm on [block, d] x [d, block] blocks of ``unit`` (output buffer reused)."""
    a, b = unit[:block], unit[block:2 * block] if len(unit) >= 2 * block else unit[:block]
    out = torch.empty(len(a), len(b))
    torch.mm(a, b.T, out=out)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b.T, out=out)
        calls += 1
    return 2.0 * len(a) * len(b) * unit.shape[1] * calls / (time.perf_counter() - start)


def seed_method(E: np.ndarray, sample: int, seed: int = 0) -> float:
    """Seed 003: normalise a random 5k subset, form the full sample x sample matrix, histogram it."""
    start = time.perf_counter()
    rows = torch.from_numpy(E[np.random.default_rng(seed).permutation(len(E))[:sample]])
    normed = rows / rows.norm(dim=-1, keepdim=True)
    cosines = (normed @ normed.T).flatten().numpy()
    np.histogram(cosines, bins=200, range=(-1, 1))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rows", type=int, default=None, help="use the first ROWS tokens (default: all)")
    parser.add_argument("--block", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--extremes", action="store_true", help="also time extremes=True (exact min/max pair)")
    args = parser.parse_args()

    model = load_model(args.model)
    E = model.W_E.detach().float().numpy()[: args.rows]
    n, d = E.shape
    unit = torch.from_numpy((E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32))
    useful_flops = float(n) * (n - 1) * d  # n(n-1)/2 dot products of length d, 2 flops per multiply-add

    rates, hist_times, extreme_times, result = [], [], [], None
    for _ in range(args.repeats):
        rates.append(gemm_rate(unit, args.block))
        start = time.perf_counter()
        result = cosine_histogram(E, block=args.block, extremes=False)
        hist_times.append(time.perf_counter() - start)
        if args.extremes:
            start = time.perf_counter()
            cosine_histogram(E, block=args.block, extremes=True)
            extreme_times.append(time.perf_counter() - start)
    rates.append(gemm_rate(unit, args.block))
    assert result.counts.sum() + result.n_outside == result.n_pairs == n * (n - 1) // 2
    rate = statistics.median(rates)
    hist_time = min(hist_times)
    gemm_only_time = useful_flops / rate
    seed_time = seed_method(E, min(args.sample, n))
    rows = [
        ("float32 GEMM rate (GFLOP/s)", rate / 1e9, ""),
        ("GEMM-only time for n(n-1)d flops (s)", gemm_only_time, "baseline"),
        ("exact all-pairs histogram (s)", hist_time, f"{gemm_only_time / hist_time:.0%} of GEMM rate"),
        *([("histogram + exact min/max (s)", min(extreme_times),
             f"{gemm_only_time / min(extreme_times):.0%} of GEMM rate")] if extreme_times else []),
        (f"seed 003 method, {min(args.sample, n)}-token sample (s)", seed_time,
         f"{min(args.sample, n) ** 2 / (n * (n - 1) / 2):.1%} of the pairs"),
    ]
    print(f"{args.model} W_E {n} x {d}: {result.n_pairs:,} pairs, mean cosine {result.mean:.4f}, sd {result.sd:.4f}")
    for name, value, note in rows:
        print(f"{name:<48} {value:>10.3f}   {note}")
    payload = {
        "benchmark": "anisotropy", "model": args.model, "rows": n, "d": d, "block": args.block,
        "n_pairs": result.n_pairs, "mean_cosine": result.mean, "sd_cosine": result.sd,
        "gemm_gflops": rate / 1e9, "gemm_rates_gflops": [r / 1e9 for r in rates],
        "gemm_only_seconds": gemm_only_time, "histogram_seconds": hist_time, "histogram_runs": hist_times,
        "histogram_with_extremes_runs": extreme_times,
        "fraction_of_gemm_rate": gemm_only_time / hist_time, "seed_sample_rows": min(args.sample, n),
        "seed_sample_seconds": seed_time, "threads": torch.get_num_threads(), "machine": platform.machine(),
        "processor": platform.processor(), "claim_met": gemm_only_time / hist_time >= 0.5,
    }
    out = Path(__file__).parent / "results" / "anisotropy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
