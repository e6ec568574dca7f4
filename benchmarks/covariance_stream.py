"""Streaming covariance / MI from an on-disk Zarr store vs ``np.cov`` on the same data held in RAM.

Claim (issue 4): streaming costs ≤ 1.5× ``np.cov`` and its peak memory does not grow with n.
Prints a table at 10⁵ and 10⁶ rows × 576 dims and writes ``benchmarks/results/covariance_stream.json``.

Usage: .venv/bin/python benchmarks/covariance_stream.py [--rows 100000 1000000] [--dim 576]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import zarr

from modscope.stats import covariance, gaussian_mi

CHUNK = 8192


def write_store(path: Path, rows: int, dim: int, seed: int = 0) -> zarr.Array:
    """A float32 [rows, dim] Zarr array (uncompressed, row chunks like a capture store) with low-rank structure."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)).astype(np.float32) / np.sqrt(dim)
    arr = zarr.create_array(store=str(path), shape=(rows, dim), chunks=(CHUNK, dim), dtype="float32",
                            compressors=None)
    for start in range(0, rows, CHUNK * 8):
        stop = min(rows, start + CHUNK * 8)
        block = rng.standard_normal((stop - start, dim), dtype=np.float32)
        arr[start:stop] = block @ mix + 3.0
    return arr


def timed(fn, repeats: int = 1) -> float:
    best = np.inf
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_mib(fn) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run(rows: int, dim: int, baseline_rows: int, previous: dict | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="modscope-bench-"))
    try:
        z = write_store(tmp / "x.zarr", rows, dim)
        measured = rows <= baseline_rows
        if measured:
            in_ram = z[:]  # the baseline's data, loaded outside its timing
            begin = time.perf_counter()
            base_cov = np.cov(in_ram, rowvar=False)
            baseline = time.perf_counter() - begin
            base_peak = peak_mib(lambda: np.cov(in_ram, rowvar=False))
            in_ram = None
        elif previous is not None:
            # np.cov is linear in n (one copy + one GEMM); scaled from the largest measured size of this run
            baseline = previous["np_cov_s"] * rows / previous["rows"]
            base_peak = previous["np_cov_peak_mib"] * rows / previous["rows"]
        else:
            raise SystemExit("--baseline-rows is below every size; nothing to scale the baseline from")
        begin = time.perf_counter()
        stream_cov = covariance(z).cov
        stream = time.perf_counter() - begin
        err = float(np.abs(stream_cov - base_cov).max()) if measured else float("nan")
        half = dim // 2
        # MI between the two column halves, streamed as two row-aligned 'sites' of one store
        mi_stream = timed(lambda: gaussian_mi(_Cols(z, 0, half), _Cols(z, half, dim)))
        stream_peak = peak_mib(lambda: covariance(z))
        return {"rows": rows, "dim": dim, "np_cov_s": baseline, "stream_cov_s": stream, "ratio": stream / baseline,
                "stream_mi_s": mi_stream, "max_abs_diff": err, "np_cov_peak_mib": base_peak,
                "stream_peak_mib": stream_peak, "data_mib": rows * dim * 4 / 2**20, "baseline_measured": measured}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Cols:
    """A column range of a Zarr array that slices by rows (two 'sites' sharing one array on disk)."""

    def __init__(self, arr: zarr.Array, lo: int, hi: int):
        self.arr, self.lo, self.hi = arr, lo, hi
        self.shape = (arr.shape[0], hi - lo)

    def __getitem__(self, rows):
        return self.arr[rows, self.lo:self.hi]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=576)
    parser.add_argument("--baseline-rows", type=int, default=1_000_000,
                        help="largest n at which np.cov is run in RAM (it needs ~3x the data in memory); above it the "
                             "baseline is scaled linearly from the largest measured size and marked '*'")
    args = parser.parse_args()
    results: list[dict] = []
    for rows in sorted(args.rows):
        measured = [r for r in results if r["baseline_measured"]]
        results.append(run(rows, args.dim, args.baseline_rows, measured[-1] if measured else None))
    print(f"{'rows':>9} {'dim':>4} {'np.cov s':>9} {'stream s':>9} {'ratio':>6} {'MI s':>7} "
          f"{'np.cov peak MiB':>16} {'stream peak MiB':>16} {'max|diff|':>10}")
    for r in results:
        star = " " if r["baseline_measured"] else "*"
        print(f"{r['rows']:>9} {r['dim']:>4} {r['np_cov_s']:>8.2f}{star} {r['stream_cov_s']:>9.2f} {r['ratio']:>6.2f} "
              f"{r['stream_mi_s']:>7.2f} {r['np_cov_peak_mib']:>16.0f} {r['stream_peak_mib']:>16.0f} "
              f"{r['max_abs_diff']:>10.1e}")
    if not all(r["baseline_measured"] for r in results):
        print("* np.cov not run at this size (memory); time and peak scaled linearly from the largest measured size")
    out = Path(__file__).parent / "results" / "covariance_stream.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "covariance_stream", "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
