"""SAE training throughput: modscope's TopK SAE vs SAELens' on the same activations and batch size.

Claim (issue 8): modscope trains a TopK SAE (d_in 576, expansion 8, k 32) at >= 1.0x SAELens' tokens/s
(stretch 2x). Both time the same work per step: forward, loss, backward, Adam step, decoder-norm handling,
on the same float32 batches, the same number of warm-up and timed steps, the same thread count, per device
(cpu; cuda when torch sees one, else reported as "not run"). Next to the speed, the quality each reached after
those steps on the same held-out batch: FVE, L0 and dead latents (no aux-K for either: SAELens gets no
dead-neuron mask, modscope no dead set, so both optimise the plain reconstruction loss).
SAELens is installed by this script into ``benchmarks/.venv-saelens`` (a fresh venv:
``pip install torch==2.13.0`` then ``pip install sae-lens``) and run there in a subprocess; if that cannot be
done the SAELens rows are skipped with a message. Runs are interleaved and the median of ``--repeats`` is
reported, because the machine may be shared.

Usage: .venv/bin/python benchmarks/sae_throughput.py [--steps 6] [--batch-size 4096] [--repeats 3]
                                                   [--activations random|captured] [--devices cpu,cuda]
                                                   [--no-saelens]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-saelens"
RESULT = HERE / "results" / "sae_throughput.json"

SAELENS_STEP = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput
    path, d_sae, k, steps, warmup, threads, sparse = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "1"
    device = sys.argv[8]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batches = torch.from_numpy(np.load(path)).to(device)
    cfg = TopKTrainingSAEConfig(d_in=batches.shape[-1], d_sae=d_sae, k=k, dtype="float32", device=device,
                                use_sparse_activations=sparse)
    sae = TopKTrainingSAE(cfg)
    opt = torch.optim.Adam(sae.parameters(), lr=4e-4, betas=(0.9, 0.999))
    def step(i):
        x = batches[i % (len(batches) - 1)]  # the last batch is held out for the quality columns
        out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=None,
                                                       n_training_steps=i, is_logging_step=False))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)  # as SAELens' SAETrainer does every step
        opt.step()
        opt.zero_grad()
    for i in range(warmup):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        held = batches[-1]
        z = sae.encode(held)
        z = z.to_dense() if z.is_sparse else z
        err = (sae.decode(z) - held).double().pow(2).sum()
        fve = 1 - float(err / (held.double() - held.double().mean(0)).pow(2).sum())
        l0, dead = float((z > 0).sum(-1).float().mean()), int(((z > 0).sum(0) == 0).sum())
    print(json.dumps({"seconds": seconds, "tokens": steps * batches.shape[1], "fve": fve, "l0": l0, "dead": dead}))
""")


def ensure_saelens() -> tuple[Path | None, str]:
    """The SAELens venv's python (created and filled on first use), or None and why not."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import sae_lens; print(sae_lens.__version__)"]
    if python.exists():
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode == 0:
            return python, done.stdout.strip()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True, timeout=900)
        subprocess.run([*pip, "sae-lens==6.54.*"], check=True, timeout=1800)
        done = subprocess.run(check, capture_output=True, text=True, check=True)
        return python, done.stdout.strip()
    except (subprocess.SubprocessError, OSError) as err:
        return None, f"could not install sae-lens into {VENV}: {err}"


def make_batches(kind: str, n_batches: int, batch_size: int, d_in: int) -> np.ndarray:
    """[n_batches, batch_size, d_in] float32: Gaussian with a low-rank mix, or captured smollm2 resid_post.3."""
    if kind == "captured":
        from modscope import load_model
        from modscope.corpus import load as load_corpus
        from modscope.sae.sources import site_activations, token_windows

        model = load_model("smollm2-135m")
        windows = token_windows(model, load_corpus("bundled").texts, 128)
        need = -(-n_batches * batch_size // 128)
        acts = site_activations(model, "resid_post.3", windows[:need]).numpy()
        if len(acts) < n_batches * batch_size:
            acts = np.resize(acts, (n_batches * batch_size, acts.shape[1]))
        return acts[:n_batches * batch_size].reshape(n_batches, batch_size, -1).astype(np.float32)
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((d_in, d_in)).astype(np.float32) / np.sqrt(d_in)
    acts = rng.standard_normal((n_batches * batch_size, d_in), dtype=np.float32) @ mix
    return acts.reshape(n_batches, batch_size, d_in).astype(np.float32)


def modscope_run(batches: np.ndarray, expansion: int, k: int, steps: int, warmup: int, device: str = "cpu") -> dict:
    """Time ``steps`` training steps of modscope's TopK SAE (the same loop body as ``modscope.sae.train``), then
    measure FVE / L0 / dead latents on the last batch (held out: the steps cycle over the others)."""
    from modscope.sae import SAEConfig, make_sae
    from modscope.sae.evaluate import evaluate_reconstruction

    cfg = SAEConfig(d_in=batches.shape[-1], expansion=expansion, architecture="topk", k=k,
                    batch_size=batches.shape[1], lr=4e-4)
    torch.manual_seed(0)
    sae = make_sae(cfg).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    data = torch.from_numpy(batches).to(device)

    def step(i: int) -> None:
        out = sae.training_step(data[i % (len(data) - 1)])  # the last batch is held out
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        sae.remove_parallel_gradient()
        opt.step()
        sae.normalize_decoder()

    for i in range(warmup):
        step(i)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    sync()
    seconds = time.perf_counter() - start
    quality = evaluate_reconstruction(sae, data[-1])
    return {"seconds": seconds, "tokens": steps * batches.shape[1], "fve": quality.fve, "l0": quality.l0,
            "dead": quality.dead}


def saelens_run(python: Path, path: Path, d_sae: int, k: int, steps: int, warmup: int, sparse: bool,
                device: str = "cpu") -> dict:
    """Time SAELens' TopKTrainingSAE (``use_sparse_activations`` as given) in its own venv."""
    done = subprocess.run([str(python), "-c", SAELENS_STEP, str(path), str(d_sae), str(k), str(steps), str(warmup),
                           str(torch.get_num_threads()), "1" if sparse else "0", device], capture_output=True,
                          text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "Error" in line]
        raise RuntimeError((errors or done.stderr.splitlines() or ["no output"])[-1][:300])
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(runs: list[dict]) -> dict:
    """Median tokens/s over interleaved repeats, and the quality of the last repeat (all repeats start alike)."""
    return {"tokens_per_s": [r["tokens"] / r["seconds"] for r in runs],
            "median_tokens_per_s": statistics.median(r["tokens"] / r["seconds"] for r in runs),
            "fve": runs[-1]["fve"], "l0": runs[-1]["l0"], "dead": runs[-1]["dead"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--d-in", type=int, default=576)
    parser.add_argument("--expansion", type=int, default=8)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--activations", choices=["random", "captured"], default="random")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated; cuda is 'not run' without a GPU")
    parser.add_argument("--no-saelens", action="store_true")
    args = parser.parse_args()

    batches = make_batches(args.activations, 5, args.batch_size, args.d_in)  # 4 to train on, 1 held out
    python, version = (None, "skipped (--no-saelens)") if args.no_saelens else ensure_saelens()
    if python is None:
        print(f"SAELens: {version}; timing modscope only")
    d_sae = args.expansion * args.d_in
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batches.npy"
        np.save(path, batches)
        for device in args.devices.split(","):
            if device == "cuda" and not torch.cuda.is_available():
                results[device] = {"status": "not run (torch sees no CUDA device)"}
                continue
            ours, theirs, theirs_sparse, sparse_error = [], [], [], None
            for _ in range(args.repeats):  # interleaved, so that load from other processes hits both alike
                ours.append(modscope_run(batches, args.expansion, args.k, args.steps, args.warmup, device))
                if python is None:
                    continue
                theirs.append(saelens_run(python, path, d_sae, args.k, args.steps, args.warmup, False, device))
                if sparse_error is None:
                    try:
                        theirs_sparse.append(saelens_run(python, path, d_sae, args.k, args.steps, args.warmup,
                                                         True, device))
                    except RuntimeError as err:
                        sparse_error = str(err)
            entry = {"modscope": timed(ours)}
            if theirs:
                entry["saelens_default"] = timed(theirs)
                entry["ratio_median"] = entry["modscope"]["median_tokens_per_s"] / \
                    entry["saelens_default"]["median_tokens_per_s"]
            if theirs_sparse:
                entry["saelens_sparse"] = timed(theirs_sparse)
            entry["saelens_sparse_error"] = sparse_error
            results[device] = entry
    print(f"\nTopK SAE training, d_in {args.d_in}, {d_sae} latents, k {args.k}, batch {args.batch_size}, "
          f"{args.activations} activations, float32, {args.warmup} warm-up + {args.steps} timed steps, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}; quality on a held-out batch")
    print(f"{'device':<8}{'implementation':<36}{'tokens/s':>10}{'x':>7}{'FVE':>8}{'L0':>7}{'dead':>6}")
    for device, entry in results.items():
        if "status" in entry:
            print(f"{device:<8}{entry['status']}")
            continue
        base = entry["modscope"]["median_tokens_per_s"]
        for name in ("modscope", "saelens_default", "saelens_sparse"):
            if name in entry:
                r = entry[name]
                label = name if name == "modscope" else f"SAELens {version} ({name.split('_')[1]})"
                print(f"{device:<8}{label:<36}{r['median_tokens_per_s']:>10.0f}"
                      f"{base / r['median_tokens_per_s']:>7.2f}{r['fve']:>8.3f}{r['l0']:>7.1f}{r['dead']:>6d}")
        if entry.get("saelens_sparse_error"):
            print(f"{device:<8}SAELens sparse activations failed: {entry['saelens_sparse_error']}")
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps({
        "benchmark": "sae_throughput", "d_in": args.d_in, "n_latents": d_sae, "k": args.k, "dtype": "float32",
        "batch_size": args.batch_size, "warmup_steps": args.warmup, "steps": args.steps,
        "activations": args.activations, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "saelens_version": version, "devices": results, "goal": ">= 1.0 (stretch 2.0)",
        "quality": "FVE, L0, dead latents on one held-out batch after the timed steps (no aux-K in either)",
    }, indent=1))
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
