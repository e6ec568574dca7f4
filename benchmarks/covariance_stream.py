"""Streaming covariance from an on-disk Zarr store vs ``np.cov`` on the same data held in RAM, both measured.

Issue 17: at 10⁶ x 576 both sides are run (the float32 data is 2.1 GiB; ``np.cov`` makes a float64 copy, ~4.3 GiB,
so the baseline needs ~7 GiB: it fits on a 16 GB machine). Both sides are timed with the same statistic over the
same number of runs, alternating (np.cov, stream, np.cov, ...). The baseline's data are loaded into RAM before its
timer; the streamed store has just been written, so its chunks are mostly in the OS page cache (a warm read). A size
whose baseline would not fit in the available memory is reported "not run", with no ratio. ``--memory`` also
records each side's peak traced allocation (a separate, untimed call). Writes results/covariance_stream.json.

    .venv/bin/python benchmarks/covariance_stream.py            # full: 10⁵ and 10⁶ rows, ~10 min on 2 busy cores
    .venv/bin/python benchmarks/covariance_stream.py --quick    # 2·10⁴ and 10⁵ rows, about a minute
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import available_gib, interleaved, row, write_result  # noqa: E402
from modscope.stats import covariance  # noqa: E402

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


def peak_mib(fn) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run(rows: int, dim: int, repeats: int, memory: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="modscope-bench-"))
    try:
        z = write_store(tmp / "x.zarr", rows, dim)
        data_gib = rows * dim * 4 / 2**30
        need = 3 * data_gib  # the float32 data + np.cov's float64 copy
        result = {"rows": rows, "dim": dim, "data_gib": data_gib, "baseline_needs_gib": need,
                  "available_gib": available_gib()}
        if need > 0.9 * result["available_gib"]:
            stream = interleaved({"stream": lambda: covariance(z).cov}, repeats, "best")["stream"]
            stream.pop("value")
            return {**result, "np_cov": {"status": "not run", "reason": f"memory: needs ~{need:.1f} GiB"},
                    "stream": stream}
        in_ram = z[:]  # the baseline's data, loaded outside its timer
        sides = interleaved({"np_cov": lambda: np.cov(in_ram, rowvar=False), "stream": lambda: covariance(z).cov},
                            repeats, "best")
        base, stream = sides["np_cov"], sides["stream"]
        result["max_abs_diff"] = float(np.abs(base.pop("value") - stream.pop("value")).max())
        if memory:
            base["peak_mib"] = peak_mib(lambda: np.cov(in_ram, rowvar=False))
            stream["peak_mib"] = peak_mib(lambda: covariance(z))
        in_ram = None  # free the 2 GiB before the next size
        return {**result, "np_cov": {"status": "measured", **base}, "stream": stream,
                "ratio": base["seconds"] / stream["seconds"]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="default 10⁵ 10⁶ (2·10⁴ 10⁵ with --quick)")
    parser.add_argument("--dim", type=int, default=576)
    parser.add_argument("--repeats", type=int, default=None, help="runs per side (default 3; 1 for 10⁶ rows)")
    parser.add_argument("--memory", action="store_true", help="also record peak traced allocation per side")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = args.rows or ([20_000, 100_000] if args.quick else [100_000, 1_000_000])
    results, table = [], []
    for rows in sorted(sizes):
        repeats = args.repeats or (3 if rows < 1_000_000 else 1)
        r = run(rows, args.dim, repeats, args.memory)
        results.append(r)
        measured = r["np_cov"]["status"] == "measured"
        print(f"{rows:>9,} x {args.dim}: np.cov " + (f"{r['np_cov']['seconds']:.2f} s" if measured else
              f"not run ({r['np_cov']['reason']})") + f", streaming {r['stream']['seconds']:.2f} s "
              f"({r['stream']['statistic']})" + (f", np.cov/stream {r['ratio']:.2f}x, max|diff| "
                                                 f"{r['max_abs_diff']:.1e}" if measured else ", no ratio"), flush=True)
        table.append(row(f"covariance, {rows:,} x {args.dim} float32", "np.cov on the data in RAM",
                         r["np_cov"]["seconds"] if measured else None, r["stream"]["seconds"],
                         r["stream"]["statistic"], "streamed from a Zarr store (page cache warm)"))
    write_result("covariance_stream", {"benchmark": "covariance_stream", "results": results, "table": table},
                 quick=args.quick)


if __name__ == "__main__":
    main()
