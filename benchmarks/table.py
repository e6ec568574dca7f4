"""The README performance table, generated from benchmarks/results/*.json (both sides measured, or "not run").

Each benchmark writes a ``table`` list of rows (``_timing.row``) next to its environment (date, machine); results
written before that format are read by the small adapters below when both of their sides were measured in one run,
and their date and machine show as "not recorded". ``--quick`` results (``*_quick.json``) and the Jacobian's naive
cache are never tabled. Writes the markdown between the two marker comments of README.md.

    .venv/bin/python benchmarks/table.py            # rewrite the table in README.md
    .venv/bin/python benchmarks/table.py --check    # exit 1 if README.md's table is not what the results give
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
NOT_RECORDED = "not recorded"


def legacy_gradient_svd(data: dict) -> list[dict]:
    return [{"workload": f"gradient-matrix spectrum, {data['matrix'][0]} x {data['matrix'][1]:,}",
             "baseline": "numpy.linalg.svd (float64, values only)", "baseline_s": data["numpy_svd"]["seconds"],
             "modscope_s": data["gram"]["seconds"], "statistic": "one run each",
             "note": f"max rel. diff {data['max_rel_diff_all']:.0e}"}]


def legacy_clusterability(data: dict) -> list[dict]:
    cpu = data["median_cpu_s"]
    return [{"workload": "clusterability eigenvectors, one 576 -> 1536 -> 576 block",
             "baseline": "dense eigh of the Laplacian", "baseline_s": cpu["dense eigh of L"],
             "modscope_s": cpu["eigsh (bipartite Gram)"], "statistic": "median CPU s",
             "note": f"BLAS threads {data.get('blas_threads', '?')}"}]


def legacy_capture_overhead(data: dict) -> list[dict]:
    runs = {r["run"]: r for r in data["runs"]}
    return [{"workload": f"capture {data['sites']} sites, {data['tokens']:,} tokens",
             "baseline": "plain HF forward (no capture)", "baseline_s": runs["plain HF forward"]["median_s"],
             "modscope_s": runs["modscope.capture"]["median_s"], "statistic": "median",
             "note": "capture overhead = 1 / ratio"}]


def legacy_dask_scaling(data: dict) -> list[dict]:
    rows = data["args"]["rows"]  # the in-memory size both engines were timed on
    workers = data["args"]["workers"]
    return [{"workload": f"covariance, {rows:,} x {data['args']['dim']} in memory, dask engine ({workers} workers)",
             "baseline": "local engine", "baseline_s": data["local_seconds"],
             "modscope_s": data["dask_seconds"], "statistic": "one run each",
             "note": f"max rel. diff {data['max_rel_diff']:.0e}"}]


def legacy_sae_throughput(data: dict) -> list[dict]:
    cpu = data.get("devices", {}).get("cpu", {})
    ours = cpu.get("modscope", {}).get("tokens_per_s") or data.get("modscope_tokens_per_s") or []
    theirs = cpu.get("saelens_default", {}).get("tokens_per_s") or data.get("saelens_tokens_per_s") or []
    if not ours or not theirs or len(ours) != len(theirs):
        return []
    batch = data["batch_size"]
    return [{"workload": f"SAE TopK training step (CPU), d {data['d_in']}, {data['n_latents']} latents, "
             f"batch {batch}", "baseline": f"SAELens {data.get('saelens_version', '')}".strip(),
             "baseline_s": batch / statistics.median(theirs), "modscope_s": batch / statistics.median(ours),
             "statistic": f"median-of-{len(ours)}", "note": "seconds per step, from tokens/s"}]


LEGACY = {"gradient_svd": legacy_gradient_svd, "clusterability": legacy_clusterability,
          "capture_overhead": legacy_capture_overhead, "dask_scaling": legacy_dask_scaling,
          "sae_throughput": legacy_sae_throughput}


def collect(results: Path = RESULTS) -> list[dict]:
    """All table rows, file by file (sorted by name), each with its file, date and machine."""
    rows = []
    for path in sorted(results.glob("*.json")):
        if path.stem.endswith("_quick") or path.stem == "jacobian_naive":
            continue
        data = json.loads(path.read_text())
        env = data.get("environment", {}) if isinstance(data, dict) else {}
        if isinstance(data, dict) and "table" in data:
            found = data["table"]
        elif path.stem in LEGACY:
            try:
                found = LEGACY[path.stem](data)
            except (KeyError, TypeError, IndexError):
                found = []
        else:
            found = []
        for entry in found:
            # a row kept from an earlier run of the same benchmark carries its own date and machine
            rows.append({**entry, "file": path.name,
                         "date": entry.get("date") or (env["date"][:10] if "date" in env else NOT_RECORDED),
                         "machine": entry.get("machine") or env.get("machine") or data.get("machine")
                         or NOT_RECORDED})
    return rows


def seconds(value: float | None) -> str:
    if value is None:
        return "not run"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def ratio(entry: dict) -> str:
    if entry.get("baseline_s") is None:
        return "–"
    value = entry["baseline_s"] / entry["modscope_s"]
    return f"{value:.0f}×" if value >= 10 else f"{value:.2f}×"


def render(rows: list[dict]) -> str:
    lines = [
        "| workload | baseline | baseline s | modscope s | ratio | statistic | note | date | machine | file |",
        "|---|---|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['baseline']} | {seconds(r.get('baseline_s'))} | "
                     f"{seconds(r['modscope_s'])} | {ratio(r)} | {r.get('statistic', '')} | {r.get('note', '')} | "
                     f"{r['date']} | {r['machine']} | `{r['file']}` |")
    return "\n".join(lines)


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if README.md differs")
    args = parser.parse_args()
    text = README.read_text()
    updated = with_table(text, render(collect()))
    if args.check:
        sys.exit(0 if updated == text else 1)
    README.write_text(updated)
    print(f"wrote the performance table ({len(collect())} rows) into {README}")


if __name__ == "__main__":
    main()
