"""Benchmark: singular values of the full MNIST gradient matrix, float64 Gram route vs numpy.linalg.svd.

All ~1562 steps x all 235,146 parameters of the 2-epoch MNIST MLP run. Each method runs in its own
subprocess so its peak resident memory (ru_maxrss) is its own. Prints a table of times and memory with
ratios against the numpy baseline measured in the same run, and writes benchmarks/results/gradient_svd.json.

    .venv/bin/python benchmarks/gradient_svd.py                  # trains the 2-epoch run first (minutes)
    .venv/bin/python benchmarks/gradient_svd.py --store DIR       # reuse a `modscope train mnist` recording
    .venv/bin/python benchmarks/gradient_svd.py --quick           # the first 200 steps only (about a minute)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "gradient_svd.json"


def run_method(method: str, store_dir: str, values_out: str) -> None:
    """Child process: load the store, compute the singular values, report seconds and peak RSS."""
    from modscope.training.gram import compute_gram
    from modscope.training.spectrum import spectrum_of_gram
    from modscope.training.store import GradientStore

    store = GradientStore.open(store_dir)
    start = time.perf_counter()
    if method == "gram":
        values, _ = spectrum_of_gram(compute_gram(store, per_param=False).gram)
        values = values[: min(store.n_steps, store.n_params)]
    else:  # the baseline: dense float64 matrix and LAPACK gesdd, values only
        matrix = np.concatenate([store.block(n).astype(np.float64) for n in store.names], axis=1)
        values = np.linalg.svd(matrix, compute_uv=False)
    seconds = time.perf_counter() - start
    np.save(values_out, values)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def child(method: str, store_dir: str, tmp: str) -> tuple[dict, np.ndarray]:
    out = f"{tmp}/{method}.npy"
    proc = subprocess.run([sys.executable, __file__, "--child", method, "--store", store_dir, "--values", out],
                          check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="gradient store directory (default: record a fresh 2-epoch run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--values", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="record 200 steps only; writes *_quick.json")
    args = parser.parse_args()
    if args.child:
        run_method(args.child, args.store, args.values)
        return
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = args.store
        if store_dir is None:
            from modscope.training.mnist import train_mnist

            store_dir = f"{tmp}/grads"
            print(f"recording the 2-epoch MNIST MLP run{' (first 200 steps)' if args.quick else ''} ...", flush=True)
            train_mnist(recorder=store_dir, record_params="all", max_steps=200 if args.quick else None)
        gram, gram_values = child("gram", store_dir, tmp)
        dense, dense_values = child("numpy", store_dir, tmp)
        from modscope.training.store import GradientStore

        store = GradientStore.open(store_dir)  # inside: a fresh recording lives in the temporary directory
    top = dense_values[0]
    rel = np.abs(gram_values - dense_values) / np.maximum(dense_values, 1e-300)
    above = dense_values > 1e-4 * top
    report = {
        "matrix": [store.n_steps, store.n_params], "gram": gram, "numpy_svd": dense,
        "speedup": dense["seconds"] / gram["seconds"], "memory_ratio": dense["peak_rss_mb"] / gram["peak_rss_mb"],
        "max_rel_diff_all": float(rel.max()), "max_rel_diff_above_1e-4_of_max": float(rel[above].max()),
        "max_abs_diff_over_largest": float(np.abs(gram_values - dense_values).max() / top),
        "count_0.10": int(np.sum(dense_values > 0.1 * top)), "environment": environment(),
    }
    print(f"gradient matrix {store.n_steps} steps x {store.n_params} parameters")
    print(f"{'method':<22}{'seconds':>10}{'peak RSS MB':>14}{'time ratio':>12}")
    print(f"{'numpy.linalg.svd':<22}{dense['seconds']:>10.1f}{dense['peak_rss_mb']:>14.0f}{1.0:>12.2f}")
    print(f"{'gram (float64)':<22}{gram['seconds']:>10.1f}{gram['peak_rss_mb']:>14.0f}"
          f"{gram['seconds'] / dense['seconds']:>12.2f}")
    print(f"speed-up {report['speedup']:.1f}x; max relative difference of singular values above 1e-4 of the "
          f"largest: {report['max_rel_diff_above_1e-4_of_max']:.1e} (all: {report['max_rel_diff_all']:.1e}, "
          f"absolute / largest: {report['max_abs_diff_over_largest']:.1e})")
    out = RESULTS.with_name("gradient_svd_quick.json") if args.quick else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
