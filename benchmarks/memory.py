"""Peak RSS of each streaming path at 10⁴, 10⁵ (and 10⁶) rows, each measured in a fresh subprocess.

Claim (issue 14): capture, covariance / MI / spectra from stores, CKA maps and the gradient spectrum keep their
peak memory flat in the number of rows (or the O() stated in the README). Synthetic float32 Zarr stores
(row chunks of 8192, like a capture store) stand in for captured sites; capture itself runs ``tiny-gpt2``.
Where the old code's memory grew with n, its in-memory equivalent is measured too ("before").

Usage: .venv/bin/python benchmarks/memory.py [--quick]
  --quick: d=576 at 10⁴ and 10⁵ rows (a few minutes). Full: also d=128 at 10⁴, 10⁵, 10⁶ rows (10⁶ x 576
  float32 is 2.3 GB per site, too much disk and time on the shared 2-core machine).
Writes ``benchmarks/results/memory.json`` and prints a table (MiB: peak RSS, and its rise above the
process's RSS after imports).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNK = 8192
SITES = 3
GRAD_STEPS = 64


def rss_mib() -> float:
    """Peak RSS of this process so far (MiB): VmHWM, which starts afresh at exec, unlike ru_maxrss, which keeps
    the high-water mark of the parent that forked it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class ZarrSites:
    """The part of an ActivationStore the stats functions use, over synthetic Zarr site arrays."""

    def __init__(self, root: Path, name: str):
        import zarr

        self.group = zarr.open_group(str(root / name), mode="r")
        self.sites = sorted(self.group.array_keys())
        self.n_rows = int(self.group[self.sites[0]].shape[0])
        self.model_info = {"name": name}

    def __getitem__(self, site):
        return self.group[site]

    def __contains__(self, site):
        return site in self.sites


def write_sites(root: Path, name: str, rows: int, dim: int, seed: int) -> None:
    """``SITES`` float32 [rows, dim] sites with shared low-rank structure (consecutive layers correlate)."""
    import zarr

    group = zarr.open_group(str(root / name), mode="w")
    rng = np.random.default_rng(seed)
    mixes = [rng.standard_normal((dim, dim)).astype(np.float32) / np.sqrt(dim) for _ in range(SITES)]
    arrays = [group.create_array(f"resid_post.{k}", shape=(rows, dim), chunks=(CHUNK, dim), dtype="float32",
                                 compressors=None) for k in range(SITES)]
    for start in range(0, rows, CHUNK * 4):
        stop = min(rows, start + CHUNK * 4)
        h = rng.standard_normal((stop - start, dim), dtype=np.float32)
        for array, mix in zip(arrays, mixes, strict=True):
            h = np.tanh(h @ mix) + 0.3 * rng.standard_normal(h.shape, dtype=np.float32)
            array[start:stop] = h + 2.0


def write_gradients(root: Path, params: int) -> None:
    from modscope.training.store import GradientStore

    store = GradientStore(["w"], [(params,)], path=root / "grads", chunk_steps=16)
    rng = np.random.default_rng(0)
    for start in range(0, GRAD_STEPS, 16):
        block = rng.standard_normal((16, params), dtype=np.float32)
        store.append({"w": block}, list(range(start, start + 16)), [0.0] * 16, [0.1] * 16)


# ---- the measured paths (each runs alone in a child process) ----

def path_capture(root: Path, rows: int) -> None:
    from modscope import load_model
    from modscope.capture import capture

    words = [f"w{i}" for i in range(500)]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 600)) for _ in range(rows // 256 + 2)]
    capture(load_model("tiny-gpt2"), texts, "resid_post.*", max_tokens=rows, ctx=256, out=root / "capture",
            progress=False)


def path_covariance(root: Path, rows: int) -> None:
    from modscope.stats import covariance

    assert covariance(ZarrSites(root, "model")["resid_post.0"]).cov.shape[0] > 0


def path_mi(root: Path, rows: int) -> None:
    from modscope.stats.model_mi import mi_of_stores

    mi_of_stores(ZarrSites(root, "model"), ZarrSites(root, "twin"), ["resid_post.0"], curve_points=8,
                 allow_identical=True)


def path_mi_before(root: Path, rows: int) -> None:
    from modscope.stats import gaussian_mi, mi_curve

    x, y = np.asarray(ZarrSites(root, "model")["resid_post.0"]), np.asarray(ZarrSites(root, "twin")["resid_post.0"])
    gaussian_mi(x, y)
    mi_curve(x, y, points=8)


def path_spectra(root: Path, rows: int) -> None:
    from modscope.stats.model_spectra import spectra_of_stores

    spectra_of_stores(ZarrSites(root, "model"), None, ["resid_post.0"], block_sites=["resid_post.0"], n_shuffles=2)


def path_spectra_before(root: Path, rows: int) -> None:
    from modscope.stats import blocks, spectrum

    x = np.asarray(ZarrSites(root, "model")["resid_post.0"])
    spectrum(x)
    blocks(np.cov(np.asarray(x).reshape(len(x), -1), rowvar=False), n_shuffles=2)


def path_cka(root: Path, rows: int) -> None:
    from modscope.geometry import cka_map

    store = ZarrSites(root, "model")
    cka_map([store[s] for s in store.sites])


def path_cka_before(root: Path, rows: int) -> None:
    from modscope.geometry.cka import centred_gram, cka_from_grams

    store = ZarrSites(root, "model")
    grams = [centred_gram(np.asarray(store[s])) for s in store.sites]
    [[cka_from_grams(k, g) for g in grams] for k in grams]


def path_gradient_gram(root: Path, rows: int) -> None:
    from modscope.training.spectrum import gradient_spectrum
    from modscope.training.store import GradientStore

    gradient_spectrum(GradientStore.open(root / "grads"), method="gram")


def path_gradient_randomized(root: Path, rows: int) -> None:
    from modscope.training.spectrum import gradient_spectrum
    from modscope.training.store import GradientStore

    gradient_spectrum(GradientStore.open(root / "grads"), method="randomized", rank=200, power_iters=2)


def path_gradient_randomized_before(root: Path, rows: int) -> None:
    from modscope.training.store import GradientStore

    store = GradientStore.open(root / "grads")
    block = store.block("w").astype(np.float64)
    width = min(store.n_steps, 210)
    q = np.linalg.qr(block @ np.random.default_rng(0).standard_normal((block.shape[1], width)))[0]
    for _ in range(2):
        q = np.linalg.qr(block @ (block.T @ q))[0]


PATHS = {
    "capture (tiny-gpt2, all resid_post sites, Zarr)": (path_capture, None),
    "covariance of one site": (path_covariance, None),
    "mi --store (8 curve points)": (path_mi, path_mi_before),
    "spectrum --store (+ blocks)": (path_spectra, path_spectra_before),
    f"CKA map ({SITES} sites)": (path_cka, path_cka_before),
    f"gradient spectrum gram ({GRAD_STEPS} steps x rows params)": (path_gradient_gram, None),
    f"gradient spectrum randomized ({GRAD_STEPS} steps x rows params)": (path_gradient_randomized,
                                                                         path_gradient_randomized_before),
}
BEFORE_MAX_ROWS = {"CKA map": 10**4}  # the n x n Grams of the old CKA: 3 x 80 GB at 10⁵ rows


def child(name: str, which: str, root: str, rows: int) -> None:
    import modscope.geometry  # noqa: F401  (imports counted in the baseline, not in the rise)
    import modscope.stats  # noqa: F401
    import modscope.training.spectrum  # noqa: F401

    fn = PATHS[name][0 if which == "after" else 1]
    base = rss_mib()
    start = time.perf_counter()
    fn(Path(root), rows)
    print(json.dumps({"peak_mib": rss_mib(), "base_mib": base, "seconds": time.perf_counter() - start}))


def measure(name: str, which: str, root: Path, rows: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, which, str(root), str(rows)],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d=576 at 10⁴ and 10⁵ rows only")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "memory.json"))
    args = parser.parse_args()
    series = [(576, [10**4, 10**5])] + ([] if args.quick else [(128, [10**4, 10**5, 10**6])])
    results = []
    for dim, sizes in series:
        for rows in sizes:
            root = Path(tempfile.mkdtemp(prefix="modscope-mem-"))
            try:
                write_sites(root, "model", rows, dim, seed=0)
                write_sites(root, "twin", rows, dim, seed=1)
                write_gradients(root, rows)
                for name, (_, before) in PATHS.items():
                    if name.startswith("capture") and dim != 576:
                        continue  # capture rows do not depend on the synthetic width
                    for which in ("after", "before") if before else ("after",):
                        limit = next((v for k, v in BEFORE_MAX_ROWS.items() if name.startswith(k)), None)
                        if which == "before" and limit is not None and rows > limit:
                            continue
                        record = {"path": name, "version": which, "rows": rows, "dim": dim,
                                  **measure(name, which, root, rows)}
                        results.append(record)
                        head = f"{name:62s} {which:6s} d={dim:3d} rows={rows:>8d} "
                        if "error" in record:
                            print(head + record["error"], flush=True)
                            continue
                        rise = record["peak_mib"] - record["base_mib"]
                        print(head + f"peak {record['peak_mib']:7.0f} MiB  rise {rise:7.0f} MiB  "
                              f"{record['seconds']:6.1f} s", flush=True)
            finally:
                shutil.rmtree(root, ignore_errors=True)
    import torch
    import zarr

    payload = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores (shared)",
               "python": platform.python_version(), "numpy": np.__version__,
               "zarr": zarr.__version__, "torch": torch.__version__, "quick": args.quick,
               "note": "peak_mib = VmHWM of a fresh child process; base_mib = its RSS after imports",
               "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
