"""Covariance of a Zarr store on the dask engine at 1x, 2x, 4x size: time vs size, worker peak memory, overhead.

Claims (issue "Beyond one machine"): on a LocalCluster of process workers, the time of the same covariance grows
linearly with the store (time / size ratio ~ constant), the peak RSS of each worker stays flat (it holds one chunk
and one d x d partial, not the store), and on the in-memory size the dask engine costs <= 1.5x the local engine
measured in the same run. Writes benchmarks/results/dask_scaling.json.

    .venv/bin/python benchmarks/dask_scaling.py [--rows 400000] [--dim 128] [--workers 2]
    .venv/bin/python benchmarks/dask_scaling.py --quick    # 50000 rows at 1x
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment  # noqa: E402
from modscope.stats import covariance  # noqa: E402


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def with_peak_rss(client, fn) -> tuple[object, float]:
    """Run ``fn`` while sampling every worker's RSS every 50 ms; returns (result, highest RSS seen in MB)."""
    peak, done = [0.0], threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], *client.run(rss_mb).values())
            time.sleep(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        return fn(), peak[0]
    finally:
        done.set()
        thread.join()


def write_store(path: Path, rows: int, dim: int, chunk: int) -> zarr.Array:
    z = zarr.create_array(str(path), shape=(rows, dim), chunks=(chunk, dim), dtype="float32", overwrite=True)
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((dim, dim)).astype(np.float32)
    for lo in range(0, rows, chunk):
        n = min(chunk, rows - lo)
        z[lo:lo + n] = rng.standard_normal((n, dim), dtype=np.float32) @ mix
    return z


def timed(fn, repeats: int = 2) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows at 1x")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=16_384)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="50000 rows at 1x; writes *_quick.json")
    args = parser.parse_args()
    if args.quick:
        args.rows = 50_000
    from distributed import Client, LocalCluster

    root = Path(tempfile.mkdtemp(prefix="dask_scaling_"))
    rows_out = []
    try:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit="1GiB",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            base = None
            for scale in (1, 2, 4):
                store = write_store(root / f"x{scale}", args.rows * scale, args.dim, args.chunk)
                seconds, acc = timed(lambda s=store: covariance(s, engine="dask", client=client))
                _, peak = with_peak_rss(client, lambda s=store: covariance(s, engine="dask", client=client))
                base = base or seconds
                rows_out.append({"scale": scale, "rows": store.shape[0], "store_mb": store.nbytes / 2**20,
                                 "seconds": seconds, "time_ratio": seconds / base,
                                 "worker_peak_rss_mb": peak, "n": acc.n})
            in_memory = np.asarray(write_store(root / "mem", args.rows, args.dim, args.chunk))
            local_s, local = timed(lambda: covariance(in_memory))
            dask_s, dask = timed(lambda: covariance(zarr_in_memory(in_memory, args.chunk), engine="dask",
                                                    client=client))
            agree = float(np.max(np.abs(dask.cov - local.cov)) / np.max(np.abs(local.cov)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'scale':>5} {'rows':>10} {'store MB':>9} {'seconds':>8} {'time x':>7} {'worker RSS max MB':>15}")
    for r in rows_out:
        print(f"{r['scale']:>5} {r['rows']:>10} {r['store_mb']:>9.0f} {r['seconds']:>8.2f} {r['time_ratio']:>7.2f} "
              f"{r['worker_peak_rss_mb']:>15.0f}")
    overhead = dask_s / local_s
    print(f"in-memory {args.rows} x {args.dim}: local {local_s:.2f}s, dask {dask_s:.2f}s, overhead {overhead:.2f}x "
          f"(claim <= 1.5x); max relative difference {agree:.1e}")
    out = Path(__file__).parent / "results" / f"dask_scaling{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "scaling": rows_out, "local_seconds": local_s,
                               "dask_seconds": dask_s, "overhead": overhead, "max_rel_diff": agree,
                               "machine": platform.platform(),
                               "environment": environment()}, indent=2))


def zarr_in_memory(array: np.ndarray, chunk: int) -> zarr.Array:
    """The in-memory rows as a Zarr array in a memory store (the dask engine reads chunks; nothing touches disk)."""
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=array.shape, chunks=(chunk, array.shape[1]),
                          dtype=array.dtype)
    z[:] = array
    return z


if __name__ == "__main__":
    main()
