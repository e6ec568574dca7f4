"""Cost of one shuffled-null network of clusterability on smollm2-135m's MLP blocks, vs exact baselines.

Claim (issue 9): the 50-shuffle null for all 30 MLP blocks (576 -> 1536 -> 576 neurons, ~1.77M edges each) runs in
<= 5 minutes on 2 cores. Each null network costs one weight shuffle, one ``eigsh`` (the k largest eigenvalues of
the Gram of the degree-normalised biadjacency, i.e. the k smallest of the normalised Laplacian), k-means and the
n-cut. Baselines timed in the same run on the same graphs: the exact dense ``eigh`` of the 2688 x 2688 normalised
Laplacian, and ``eigsh(which="LA")`` on the full normalised adjacency (the shift trick without the bipartite
trick). The accuracy column compares the n-cut of the fast path with the exact-eigenvector n-cut.

The load average is printed: on a machine shared with other jobs the times are pessimistic. BLAS threads follow
``OPENBLAS_NUM_THREADS`` (set it to 1 on a loaded machine; 2 threads fighting other jobs is far slower).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/clusterability.py [--blocks 3] [--shuffles 8] [--full --jobs 2]
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/clusterability.py --quick   # 1 block, 2 shuffles
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment  # noqa: E402
from modscope import load_model  # noqa: E402
from modscope.weights.graph import as_abs_layers, layered_adjacency, layered_ncut  # noqa: E402
from modscope.weights.models import model_mlp_blocks  # noqa: E402
from modscope.weights.null import shuffle_within_layers  # noqa: E402
from modscope.weights.spectral import kmeans, spectral_embedding  # noqa: E402
from modscope.weights.summary import network_clusterability  # noqa: E402

CPU: dict[str, list[float]] = {}


def timed(fn, *args, **kwargs):
    """(result, wall seconds); the process CPU seconds go to CPU[fn name] (what an idle machine would see)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU.setdefault(fn.__name__, []).append(time.process_time() - c0)
    return out, time.perf_counter() - t0


def dense_laplacian_embedding(layers, k):
    """Baseline: every eigenvector of the dense normalised Laplacian, keep the k smallest."""
    adjacency = layered_adjacency(layers).toarray()
    inv_sqrt = 1 / np.sqrt(adjacency.sum(axis=1))
    laplacian = np.eye(len(adjacency)) - adjacency * np.outer(inv_sqrt, inv_sqrt)
    _, vectors = np.linalg.eigh(laplacian)
    return vectors[:, :k] * inv_sqrt[:, None]


def full_adjacency_eigsh(layers, k, tol):
    """Baseline: eigsh(which="LA") on the whole normalised adjacency (sparse, no bipartite trick)."""
    adjacency = layered_adjacency(layers)
    inv_sqrt = 1 / np.sqrt(np.asarray(adjacency.sum(axis=1)).ravel())
    normalised = adjacency.multiply(inv_sqrt[:, None]).multiply(inv_sqrt[None, :]).tocsr()
    op = LinearOperator(normalised.shape, matvec=normalised.dot, dtype=np.float64)
    _, vectors = eigsh(op, k=k, which="LA", tol=tol, v0=np.ones(normalised.shape[0]))
    return vectors * inv_sqrt[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--blocks", type=int, default=3, help="blocks timed (evenly spaced)")
    parser.add_argument("--shuffles", type=int, default=8, help="null networks timed per block")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--full", action="store_true", help="also run the real 50-shuffle null on every block")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the --full run")
    parser.add_argument("--quick", action="store_true", help="1 block, 2 shuffles; writes *_quick.json")
    args = parser.parse_args()
    if args.quick:
        args.blocks, args.shuffles, args.full = 1, 2, False

    load_start = os.getloadavg()[0]
    model = load_model(args.model)
    chosen = sorted({int(i) for i in np.linspace(0, model.n_layers - 1, args.blocks)})
    blocks = model_mlp_blocks(model, chosen)
    rng = np.random.default_rng(0)
    parts: dict[str, list[float]] = {"shuffle": [], "eigsh (bipartite Gram)": [], "k-means": [], "n-cut": []}
    baselines: dict[str, list[float]] = {"dense eigh of L": [], "eigsh LA on full N": []}
    accuracy = []
    kmeans(np.random.default_rng(1).standard_normal((64, args.k)), args.k)  # imports scikit-learn outside the timings
    for name, weights in blocks.items():
        layers = as_abs_layers(weights)
        for rep in range(args.shuffles):
            shuffled, t = timed(shuffle_within_layers, layers, rng)
            parts["shuffle"].append(t)
            (embedding, _, _), t = timed(spectral_embedding, shuffled, args.k, tol=args.tol, seed=0)
            parts["eigsh (bipartite Gram)"].append(t)
            labels, t = timed(kmeans, embedding, args.k, seed=0)
            parts["k-means"].append(t)
            fast_ncut, t = timed(layered_ncut, shuffled, labels, args.k)
            parts["n-cut"].append(t)
            if rep == 0:  # baselines once per block: they are slow
                exact, t = timed(dense_laplacian_embedding, shuffled, args.k)
                baselines["dense eigh of L"].append(t)
                _, t = timed(full_adjacency_eigsh, shuffled, args.k, args.tol)
                baselines["eigsh LA on full N"].append(t)
                exact_ncut = layered_ncut(shuffled, kmeans(exact, args.k, seed=0), args.k)
                accuracy.append(abs(fast_ncut - exact_ncut) / exact_ncut)
        print(f"timed {name}", flush=True)

    functions = {"shuffle": "shuffle_within_layers", "eigsh (bipartite Gram)": "spectral_embedding",
                 "k-means": "kmeans", "n-cut": "layered_ncut", "dense eigh of L": "dense_laplacian_embedding",
                 "eigsh LA on full N": "full_adjacency_eigsh"}
    wall = {name: statistics.median(ts) for name, ts in (parts | baselines).items()}
    cpu = {name: statistics.median(CPU[functions[name]]) for name in wall}
    per_null = sum(wall[name] for name in parts)
    per_null_cpu = sum(cpu[name] for name in parts)
    eig = wall["eigsh (bipartite Gram)"]
    n_solves = model.n_layers * 51  # 50 shuffles + the observed network per block
    print(f"\n{args.model}: {len(blocks)} blocks x {args.shuffles} shuffles timed, k={args.k}, tol={args.tol}, "
          f"BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, load average {load_start:.1f} "
          f"on {os.cpu_count()} cores (above the core count, other jobs compete and wall times are pessimistic; "
          "CPU seconds are what an idle machine would need)")
    print(f"{'step':34s} {'wall s':>9s} {'CPU s':>9s} {'wall x eigsh':>13s}")
    for name in wall:
        label = name if name in parts else f"baseline: {name}"
        print(f"{label:34s} {wall[name]:9.4f} {cpu[name]:9.4f} {wall[name] / eig:13.2f}")
    print(f"{'per null network (sum)':34s} {per_null:9.4f} {per_null_cpu:9.4f}")
    projected, projected_cpu = per_null * n_solves, per_null_cpu * n_solves
    print(f"50-shuffle null, all {model.n_layers} blocks ({n_solves} networks): projected {projected:.0f} s wall at "
          f"this load, {projected_cpu:.0f} s of CPU (one core, idle machine); budget 300 s")
    print(f"n-cut of fast path vs exact eigenvectors: max relative difference {max(accuracy):.2e}")
    measured = None
    if args.full:
        units = model_mlp_blocks(model)
        c0 = time.process_time()
        result = network_clusterability(units, model=args.model, k=args.k, n_shuffles=50, seed=0, tol=args.tol,
                                        n_jobs=args.jobs)
        measured = result.seconds
        print(f"measured full run ({args.jobs} processes, load average now {os.getloadavg()[0]:.1f}): "
              f"{measured:.0f} s wall (main process CPU {time.process_time() - c0:.0f} s); "
              f"{result.n_clusterable}/{len(units)} blocks z < -3, median z {np.median(result.z):.2f}, "
              f"z range {result.z.min():.1f}..{result.z.max():.1f}")
    load_end = os.getloadavg()[0]
    out = Path(__file__).parent / "results" / f"clusterability{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "model": args.model, "k": args.k, "tol": args.tol, "blocks_timed": list(blocks), "shuffles": args.shuffles,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "load_average": [load_start, load_end],
        "median_wall_s": wall, "median_cpu_s": cpu, "per_null_network_wall_s": per_null,
        "per_null_network_cpu_s": per_null_cpu, "projected_full_null_wall_s": projected,
        "projected_full_null_cpu_s": projected_cpu, "budget_s": 300,
        "measured_full_null_s": measured, "full_jobs": args.jobs if args.full else None,
        "max_relative_ncut_error": max(accuracy), "environment": environment(),
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
