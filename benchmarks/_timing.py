"""Shared timing for the benchmarks: one statistic for both sides, and the conditions every result records.

Each benchmark times its baseline and modscope with ``measure`` (same ``repeats``, same statistic), interleaving
the two sides where it can so that load from other processes hits both alike, and writes its JSON through
``write_result``, which adds ``environment()``: threads, load average, versions, git commit, machine and date.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
STATISTICS = {"best": min, "median": statistics.median}


def measure(fn: Callable[[], Any], repeats: int, statistic: str = "best") -> dict:
    """Run ``fn`` ``repeats`` times; returns {"seconds": statistic of the runs, "runs": [...], "statistic", "value"}.

    ``value`` is the last run's return value (not serialised by ``write_result``; pop it first)."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {sorted(STATISTICS)}, got {statistic!r}")
    runs, value = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - start)
    return {"seconds": STATISTICS[statistic](runs), "runs": runs, "statistic": f"{statistic}-of-{repeats}",
            "value": value}


def interleaved(sides: dict[str, Callable[[], Any]], repeats: int, statistic: str = "best") -> dict[str, dict]:
    """Time several sides in alternation (A B A B ...), so that a burst of outside load is shared by all."""
    out = {name: {"runs": [], "value": None} for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            gc.collect()
            start = time.perf_counter()
            out[name]["value"] = fn()
            out[name]["runs"].append(time.perf_counter() - start)
    for entry in out.values():
        entry["seconds"] = STATISTICS[statistic](entry["runs"])
        entry["statistic"] = f"{statistic}-of-{repeats}"
    return out


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def available_gib() -> float:
    """Memory available now (GiB, from /proc/meminfo; inf where unknown): decides whether a baseline can run."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def machine() -> str:
    """One short line naming the machine (used in the README table)."""
    ram = _ram_gib()
    return f"{platform.machine()} {os.cpu_count()} CPU{'' if os.cpu_count() == 1 else 's'}" + (
        f", {ram:.0f} GiB" if ram else "")


def environment() -> dict:
    """Conditions of this run: date, machine, threads, load average, versions, git commit."""
    import numpy
    import torch

    try:
        from importlib.metadata import version
        modscope_version = version("modscope")
    except Exception:  # noqa: BLE001 - an uninstalled checkout still benchmarks
        modscope_version = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "nproc": os.cpu_count(), "ram_gib": _ram_gib(),
        "torch_threads": torch.get_num_threads(),
        "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "loadavg": list(os.getloadavg()),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
                     "modscope": modscope_version},
        "git_commit": _git_commit(),
    }


def write_result(name: str, payload: dict, *, quick: bool = False) -> Path:
    """Write ``results/<name>.json`` (``<name>_quick.json`` for --quick runs, never read by the README table)
    with ``environment()`` (load average taken at the end of the run, next to the one at its start if given)."""
    payload = {**payload, "quick": quick, "environment": {**payload.get("environment", {}), **environment()}}
    out = RESULTS / f"{name}{'_quick' if quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {out}")
    return out


def row(workload: str, baseline: str, baseline_s: float | None, modscope_s: float, statistic: str,
        note: str = "") -> dict:
    """One README table row: both times (seconds) or a baseline of None ("not run", no ratio)."""
    return {"workload": workload, "baseline": baseline, "baseline_s": baseline_s, "modscope_s": modscope_s,
            "ratio": None if baseline_s is None else baseline_s / modscope_s, "statistic": statistic, "note": note}
