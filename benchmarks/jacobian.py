"""Jacobian spectra: modscope vs the seed's dense path (torch.func.jacrev + float64 svdvals), both measured.

The seed's case (issue 17): the layer-1 attention and MLP Jacobians (no residual) of the embedded model at 34 tokens,
top-64 singular values. The naive side is ``torch.func.jacrev`` of the sublayer map followed by float64
``torch.linalg.svdvals`` of the dense (34·576)² = 19584² Jacobian, nothing else inside its timer: the float64 model
copy, the sublayer map and its input are prepared before either side is timed. modscope's side is ARPACK Lanczos
on the matrix-free jvp/vjp operator (attention) and the exact token-wise spectrum (MLP, block diagonal).
``--parts whole`` asks the seed's real question, every singular value and the exact rank of the attention J, of
``modscope.jacobian.exact_spectrum`` (J by causal prefixes, its row space token by token, the dense SVD of the
n × rank matrix J·Q) against the same naive path, comparing every value and the rank when the naive side ran in
this run (the cache keeps the top 256 values and, from now on, the rank). Both sides also record process CPU
seconds (all threads), which outside load inflates less than wall time, and the run samples the load average.
Both sides use the same statistic over the same number of runs (``--repeats``, default 1: one naive run at 34
tokens takes tens of minutes to hours on 2 cores).

The naive result at the full size is kept in ``benchmarks/results/jacobian_naive.json`` (times, top values, the
machine and date) and reused by later runs on the same machine, which say so; ``--rerun-naive`` measures it again.
A naive run that cannot fit in memory is reported "not run", with no ratio. Writes results/jacobian.json.

    nice -n 19 .venv/bin/python benchmarks/jacobian.py          # full: 34 tokens; naive ~30-60 min on a quiet 2-core
    .venv/bin/python benchmarks/jacobian.py --quick             # 6 tokens, both sides measured, a few minutes
    .venv/bin/python benchmarks/jacobian.py --parts whole --tokens 8   # whole spectrum + rank, both sides
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import RESULTS, available_gib, environment, machine, measure, row, write_result  # noqa: E402
from modscope import load_model  # noqa: E402
from modscope.corpus import load as load_corpus  # noqa: E402
from modscope.jacobian import singular_values, tokenwise_singular_values  # noqa: E402
from modscope.jacobian.exact import exact_spectrum, prefix_part_fn  # noqa: E402
from modscope.jacobian.parts import part_map  # noqa: E402
from modscope.jacobian.probes import token_ids  # noqa: E402

NAIVE_CACHE = RESULTS / "jacobian_naive.json"
KEEP_VALUES = 256  # top values kept from the naive spectrum (errors are read on the top k <= 256)


def naive_spectrum(fn, x: torch.Tensor, chunk_size: int) -> dict:
    """The seed's path on a prepared map and input: dense J by jacrev, then float64 svdvals (timed in two parts)."""
    n_in = x.numel()
    cpu, start = time.process_time(), time.perf_counter()
    jac = torch.func.jacrev(fn, chunk_size=chunk_size)(x).detach()
    jac = jac.reshape(-1, n_in)
    middle = time.perf_counter()
    values = torch.linalg.svdvals(jac).numpy()
    end = time.perf_counter()
    return {"values": values, "jacrev_s": middle - start, "svdvals_s": end - middle,
            "cpu_s": time.process_time() - cpu}


def cpu_timed(fn):
    """``fn`` returning (its value, process CPU seconds of all threads): a second clock that outside load
    inflates far less than wall time (the machine is shared)."""
    def run():
        cpu = time.process_time()
        value = fn()
        return value, time.process_time() - cpu
    return run


def modscope_top(pm, part: str, k: int) -> np.ndarray:
    if part == "mlp":  # block diagonal: the exact whole spectrum from T per-token d x d SVDs
        return tokenwise_singular_values(pm.token_fn, pm.x).singular_values[:k]
    return singular_values(pm.fn, pm.x, k=k, method="lanczos").singular_values


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    k = len(got)
    return float(np.max(np.abs(got - want[:k]) / want[:k]))


def compare_whole(got: np.ndarray, want: np.ndarray) -> dict:
    """Every singular value and the rank at the dense floor max(n_in, n_out)·eps64·σ₁ (of the naive values)."""
    floor = len(want) * np.finfo(np.float64).eps * float(want[0])
    above = want > floor
    return {"n_values": len(want), "floor": floor, "rank_naive": int(above.sum()),
            "rank_modscope": int((got > floor).sum()),
            "max_rel_error_above_floor": float(np.max(np.abs(got[above] - want[above]) / want[above])),
            "max_abs_error_over_sigma1": float(np.max(np.abs(got - want)) / want[0])}


def sample_load(samples: list, stop: threading.Event, every: float = 30.0) -> None:
    """Record the 1-minute load average every ``every`` seconds until ``stop`` (the machine is shared)."""
    while not stop.is_set():
        samples.append(round(os.getloadavg()[0], 2))
        stop.wait(every)


def merged(report: dict) -> dict:
    """``report`` plus the parts and table rows of the previous results/jacobian.json that this run did not redo
    (each keeps the date and machine of its own run)."""
    out = RESULTS / "jacobian.json"
    if not out.exists():
        return report
    old = json.loads(out.read_text())
    old_env = old.get("environment", {})
    for part, entry in old.get("parts", {}).items():
        if part not in report["parts"]:
            report["parts"][part] = {"environment": old_env, **entry}
    done = {r["workload"] for r in report["table"]}
    kept = [{"date": old_env.get("date", "")[:10], "machine": old_env.get("machine"), **r}
            for r in old.get("table", []) if r["workload"] not in done]
    report["table"] = kept + report["table"]
    for key in ("whole_mlp", "whole_attn"):
        if key in old and key not in report:
            report[key] = {"environment": old_env, **old[key]}
    return report


def cache_key(args, part: str, text_ids: torch.Tensor) -> str:
    digest = hashlib.sha256(text_ids.numpy().tobytes()).hexdigest()[:12]
    return f"{args.model}/layer{args.layer}/{part}/{args.tokens}tok/{digest}"


def load_cache() -> dict:
    return json.loads(NAIVE_CACHE.read_text()) if NAIVE_CACHE.exists() else {"entries": {}}


IN_RUN: dict[str, dict] = {}  # naive results measured in this run (with all their values), by cache key


def naive_side(args, part: str, pm, ids, cache: dict) -> dict:
    """The naive result: from the cache (same key, same machine) or measured now; {"status": "not run"} if it can't."""
    key = cache_key(args, part, ids)
    if key in IN_RUN:
        return dict(IN_RUN[key])
    cached = cache["entries"].get(key)
    if cached and not args.rerun_naive and not args.quick:
        if cached["environment"]["machine"] == machine():
            print(f"  naive {part}: reusing the measurement of {cached['environment']['date']} on "
                  f"{cached['environment']['machine']} from {NAIVE_CACHE.name} (--rerun-naive to measure again)")
            return {**cached, "source": f"cached ({NAIVE_CACHE.name}, {cached['environment']['date']})"}
        print(f"  naive {part}: cached result is from another machine ({cached['environment']['machine']}); "
              "measuring again")
    n = pm.x.numel()
    need = 3 * n * n * 8 / 2**30  # J, svdvals' copy of it and its workspace, float64
    if need > 0.9 * available_gib():
        print(f"  naive {part}: not run: needs ~{need:.0f} GiB, {available_gib():.0f} GiB available")
        return {"status": "not run", "reason": f"memory: needs ~{need:.0f} GiB"}
    if args.no_naive:
        return {"status": "not run", "reason": "--no-naive and no cached result"}
    print(f"  naive {part}: jacrev + svdvals of a {n} x {n} float64 J ({args.repeats} run(s))...", flush=True)
    x = pm.x.detach().to(torch.float64)
    timing = measure(lambda: naive_spectrum(pm.fn, x, args.chunk_size), args.repeats, "best")
    last = timing.pop("value")
    values = np.asarray(last["values"], dtype=np.float64)
    floor = max(values.shape[0], n) * np.finfo(np.float64).eps * float(values[0])
    entry = {"status": "measured", **timing, "jacrev_s": last["jacrev_s"], "svdvals_s": last["svdvals_s"],
             "cpu_s": last["cpu_s"],
             "n": n, "top_values": values[:KEEP_VALUES].tolist(), "rank": int((values > floor).sum()),
             "rank_floor": floor, "rank_floor_rule": "max(n_in, n_out)·eps64·σ₁",
             "environment": environment(), "source": "measured in this run", "_values": values}
    if not args.quick:
        cache["entries"][key] = {k: v for k, v in entry.items() if k not in ("source", "_values")}
        on_disk = load_cache()  # another run may have added entries meanwhile: keep them
        cache["entries"] = {**on_disk["entries"], **cache["entries"]}
        NAIVE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        NAIVE_CACHE.write_text(json.dumps(cache, indent=2) + "\n")
        print(f"  naive {part}: kept in {NAIVE_CACHE}")
    IN_RUN[key] = dict(entry)
    return entry


def whole_case(args, model, ids, cache: dict) -> tuple[dict, dict]:
    """The whole attention spectrum and its rank: exact_spectrum (causal prefixes + row space) against the same
    naive jacrev + svdvals as the top-k case (cached or measured); returns (result entry, table row)."""
    pm = part_map(model, ids, layer=args.layer, part="attn")
    warm = token_ids(model, "\n\n".join(load_corpus("bundled").texts), 3)
    exact_spectrum(prefix_part_fn(model, warm, layer=args.layer, part="attn"), part_map(
        model, warm, layer=args.layer, part="attn").x)  # warm-up (first-call costs), outside the timer
    fast = measure(cpu_timed(lambda: exact_spectrum(prefix_part_fn(model, ids, layer=args.layer, part="attn"),
                                                    pm.x)), args.repeats, "best")
    spec, fast["cpu_s"] = fast.pop("value")
    naive = naive_side(args, "attn", pm, ids, cache)
    entry = {"modscope_method": "exact_spectrum: J by causal prefixes, its row space token by token, dense SVD of "
             "J·Q (n x rank)", "modscope": fast, "naive": {k: v for k, v in naive.items() if k != "_values"},
             "n": spec.n_in, "rank": spec.rank, "floor": spec.noise_floor, "floor_rule": spec.floor_rule,
             "rank_gap": spec.rank_gap, "sigma_1": spec.sigma_max}
    note = f"rank {spec.rank}/{spec.n_in}"
    if naive["status"] == "measured":
        entry["ratio"] = naive["seconds"] / fast["seconds"]
        if "_values" in naive:  # measured in this run: every value and the rank
            entry["whole_spectrum"] = compare_whole(spec.values, naive["_values"])
            cmp = entry["whole_spectrum"]
            note += (f" (naive {cmp['rank_naive']}); all {cmp['n_values']} values: max rel. error "
                     f"{cmp['max_rel_error_above_floor']:.0e} above the floor")
        else:  # cached: its top values (and its rank when the cache has it)
            top = np.asarray(naive["top_values"])
            entry["rel_error_top_cached"] = rel_error(spec.values[: len(top)], top)
            entry["naive_rank"] = naive.get("rank")
            note += (f" (naive: {naive['rank'] if 'rank' in naive else 'not cached'}); top-{len(top)} max rel. "
                     f"error {entry['rel_error_top_cached']:.0e} vs the cached values")
        print(f"whole attn spectrum: modscope {fast['seconds']:.1f} s (cpu {fast['cpu_s']:.0f} s), naive "
              f"{naive['seconds']:.1f} s ({naive['source']}): {entry['ratio']:.2f}x; {note}")
    else:
        print(f"whole attn spectrum: modscope {fast['seconds']:.1f} s; {note}; naive not run ({naive['reason']})")
    measured = naive["status"] == "measured"
    table_row = row(f"whole spectrum + rank, layer-{args.layer} attn Jacobian, {args.tokens} tokens",
                    "jacrev + float64 svdvals" + ("" if not measured or naive["source"].startswith("measured")
                                                  else f" (cached, {naive['environment']['date'][:10]})"),
                    naive["seconds"] if measured else None, fast["seconds"], fast["statistic"],
                    note if measured else f"{note}; naive not run: {naive['reason']}")
    return entry, table_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layer", type=int, default=1)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=None, help="default 34 (6 with --quick)")
    parser.add_argument("--parts", default="attn,mlp,whole",
                        help="attn, mlp: top-k; whole: every singular value and the rank of the attention J")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side (the same N and best-of for both)")
    parser.add_argument("--chunk-size", type=int, default=1024, help="jacrev rows per vmapped batch (memory)")
    parser.add_argument("--big-tokens", type=int, default=128, help="whole MLP spectrum at this length (0: skip)")
    parser.add_argument("--rerun-naive", action="store_true", help="measure the naive side even if cached")
    parser.add_argument("--no-naive", action="store_true", help="do not run the naive side (use the cache only)")
    parser.add_argument("--quick", action="store_true", help="6 tokens, no 128-token case, nothing cached")
    args = parser.parse_args()
    args.tokens = args.tokens or (6 if args.quick else 34)
    if args.quick:
        args.big_tokens = 0

    model = load_model(args.model)
    text = "\n\n".join(load_corpus("bundled").texts)
    ids = token_ids(model, text, args.tokens)
    cache = load_cache()
    load, stop = [], threading.Event()
    threading.Thread(target=sample_load, args=(load, stop), daemon=True).start()
    report = {"benchmark": "jacobian", "model": args.model, "layer": args.layer, "k": args.k, "tokens": args.tokens,
              "naive_method": f"torch.func.jacrev(chunk_size={args.chunk_size}) + float64 torch.linalg.svdvals",
              "parts": {}, "table": []}
    for part in args.parts.split(","):
        if part == "whole":
            report["whole_attn"], whole_row = whole_case(args, model, ids, cache)
            report["table"].append(whole_row)
            continue
        # everything the naive path does not need to redo per call is prepared here, outside both timers
        modscope_top(part_map(model, token_ids(model, text, 2), layer=args.layer, part=part), part, 8)  # warm-up
        pm = part_map(model, ids, layer=args.layer, part=part)
        k = min(args.k, pm.x.numel() - 1)
        fast = measure(cpu_timed(lambda pm=pm, part=part, k=k: modscope_top(pm, part, k)), args.repeats, "best")
        values, fast["cpu_s"] = fast.pop("value")
        naive = naive_side(args, part, pm, ids, cache)
        how = "token-wise exact spectrum (vmap per-token J + batched SVD)" if part == "mlp" else \
            "ARPACK Lanczos on the jvp/vjp operator"
        entry = {"modscope_method": how, "modscope": fast, "naive": naive, "sigma_1": float(values[0])}
        whole = naive.pop("_values", None)
        if part == "mlp" and whole is not None:  # both whole spectra in this run: compare every value and the rank
            entry["whole_spectrum"] = compare_whole(tokenwise_singular_values(pm.token_fn, pm.x).singular_values, whole)
            print(f"  mlp whole spectrum: {entry['whole_spectrum']}")
        if naive["status"] == "measured":
            entry["rel_error_top_k"] = rel_error(values, np.asarray(naive["top_values"]))
            entry["ratio"] = naive["seconds"] / fast["seconds"]
            print(f"{part}: modscope {fast['seconds']:.2f} s, naive {naive['seconds']:.1f} s "
                  f"(jacrev {naive['jacrev_s']:.1f} + svdvals {naive['svdvals_s']:.1f}; {naive['source']}): "
                  f"{entry['ratio']:.1f}x; top-{k} max rel. error {entry['rel_error_top_k']:.1e} (target <= 1e-6)")
        else:
            print(f"{part}: modscope {fast['seconds']:.2f} s; naive not run ({naive['reason']}): no ratio")
        report["parts"][part] = entry
        measured = naive["status"] == "measured"
        report["table"].append(row(
            f"top-{k} singular values, layer-{args.layer} {part} Jacobian, {args.tokens} tokens",
            "jacrev + float64 svdvals" + ("" if not measured or naive["source"].startswith("measured")
                                          else f" (cached, {naive['environment']['date'][:10]})"),
            naive["seconds"] if measured else None, fast["seconds"], fast["statistic"],
            f"rel. error {entry['rel_error_top_k']:.0e}" if measured else f"naive not run: {naive['reason']}"))
    if args.big_tokens:
        pm = part_map(model, token_ids(model, text, args.big_tokens), layer=args.layer, part="mlp")
        whole = measure(lambda: tokenwise_singular_values(pm.token_fn, pm.x), args.repeats, "best")
        spec = whole.pop("value")
        n = pm.x.numel()
        dense_gib = n * n * 8 / 2**30
        report["whole_mlp"] = {"tokens": args.big_tokens, "n": n, "modscope": whole, "rank": spec.rank,
                               "naive": {"status": "not run", "reason": f"memory: dense J alone {dense_gib:.0f} GiB"}}
        print(f"whole MLP spectrum at {args.big_tokens} tokens: {whole['seconds']:.1f} s, rank {spec.rank}/{n}; "
              f"naive not run (dense J alone {n * n * 8 / 2**30:.0f} GiB)")
        report["table"].append(row(f"whole spectrum, layer-{args.layer} MLP Jacobian, {args.big_tokens} tokens",
                                   "jacrev + float64 svdvals", None, whole["seconds"], whole["statistic"],
                                   f"naive not run: dense J {n * n * 8 / 2**30:.0f} GiB"))
    stop.set()
    report["loadavg_1min_samples"] = load  # every 30 s through the run (other processes share the machine)
    write_result("jacobian", report if args.quick else merged(report), quick=args.quick)


if __name__ == "__main__":
    main()
