"""Capturing every resid_post site vs a plain Hugging Face forward pass on the same tokens, same run.

Claim (issue "Foundation"): capture costs ≤ 1.15× a plain forward with no hooks.
Runs are interleaved (plain, capture, plain, capture, ...) and the median of each is compared, so that load from
other processes affects both alike. Writes benchmarks/results/capture_overhead.json.

    .venv/bin/python benchmarks/capture_overhead.py [--docs 16] [--repeats 3] [--model smollm2-135m]
    .venv/bin/python benchmarks/capture_overhead.py --quick    # 4 documents of 256 tokens: about a minute
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import environment  # noqa: E402
from modscope import corpus, load_model  # noqa: E402
from modscope.capture import capture  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 documents of 256 tokens; writes *_quick.json")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.ctx = 4, 256

    model = load_model(args.model)
    docs = corpus.load("bundled").sample(max(1, args.docs // 5) + 1).docs[: args.docs]
    ids = [torch.tensor(x) for x in model.tokenize([d.text for d in docs], max_tokens=args.ctx)]
    batch = max(1, 4096 // args.ctx)  # capture's default batch size
    batches = [torch.nn.utils.rnn.pad_sequence(ids[i: i + batch], batch_first=True) for i in range(0, len(ids), batch)]
    tokens = sum(len(x) for x in ids)
    sites = model.select_sites("resid_post.*")

    @torch.inference_mode()
    def plain() -> None:
        for input_ids in batches:
            model.hf(input_ids=input_ids, use_cache=False)

    def hooked_full() -> None:  # the hooks alone, with the whole forward pass (no early stop)
        with torch.inference_mode():
            for input_ids in batches:
                model.run_with_sites(input_ids, sites, stop_early=False)

    def captured() -> None:
        capture(model, [x.tolist() for x in ids], sites, ctx=args.ctx, batch_size=batch, progress=False)

    runs = {"plain HF forward": plain, "hooks, full forward": hooked_full, "modscope.capture": captured}
    times: dict[str, list[float]] = {name: [] for name in runs}
    plain()  # warm-up
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["plain HF forward"])
    rows = []
    print(f"{args.model}: {len(ids)} documents, {tokens} tokens, {len(sites)} resid_post sites, "
          f"{torch.get_num_threads()} threads")
    print(f"{'run':<24}{'median s':>10}{'tokens/s':>12}{'ratio':>8}")
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"run": name, "median_s": med, "tokens_per_s": tokens / med, "ratio_vs_plain": med / base})
        print(f"{name:<24}{med:>10.2f}{tokens / med:>12.0f}{med / base:>8.3f}")
    ratio = statistics.median(times["modscope.capture"]) / base
    verdict = "PASS" if ratio <= 1.15 else "FAIL"
    print(f"capture / plain forward = {ratio:.3f} (claim ≤ 1.15: {verdict})")
    out = Path(__file__).parent / "results" / f"capture_overhead{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "documents": len(ids), "tokens": tokens, "sites": len(sites),
                               "threads": torch.get_num_threads(), "runs": rows, "ratio": ratio, "claim": 1.15,
                               "pass": ratio <= 1.15, "times": times,
                               "environment": environment()}, indent=2))


if __name__ == "__main__":
    main()
