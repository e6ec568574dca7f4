"""The README performance table is exactly what benchmarks/table.py makes of benchmarks/results/*.json."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table_module():
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "benchmarks" / "table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_equals_the_table_generated_from_the_results():
    table = table_module()
    readme = (ROOT / "README.md").read_text()
    assert readme.count(table.START) == 1 and readme.count(table.END) == 1
    assert table.with_table(readme, table.render(table.collect())) == readme


def test_measured_rows_get_a_ratio_and_baselines_not_run_get_none(tmp_path):
    table = table_module()
    env = {"date": "2026-11-30T19:00:00+00:00", "machine": "x86_64 2 CPUs, 23 GiB"}
    rows = [{"workload": "w1", "baseline": "b1", "baseline_s": 8.0, "modscope_s": 2.0, "statistic": "best-of-3",
             "note": ""},
            {"workload": "w2", "baseline": "b2", "baseline_s": None, "modscope_s": 3.0, "statistic": "best-of-1",
             "note": "naive not run: memory"}]
    (tmp_path / "a.json").write_text(json.dumps({"table": rows, "environment": env}))
    (tmp_path / "a_quick.json").write_text(json.dumps({"table": rows, "environment": env}))
    (tmp_path / "old.json").write_text(json.dumps({"speedup": 223.0}))  # extrapolated, no table: never shown
    text = table.render(table.collect(tmp_path))
    lines = text.splitlines()
    assert len(lines) == 4  # header, rule, two rows: the quick file and the old file are left out
    assert "| w1 | b1 | 8.00 | 2.00 | 4.00× | best-of-3 |  | 2026-11-30 | x86_64 2 CPUs, 23 GiB | `a.json` |" in lines
    assert "| w2 | b2 | not run | 3.00 | – |" in lines[3]
    assert "223" not in text


def test_only_the_text_between_the_markers_is_replaced():
    table = table_module()
    readme = f"before\n{table.START}\nold table\n{table.END}\nafter\n"
    assert table.with_table(readme, "new") == f"before\n{table.START}\nnew\n{table.END}\nafter\n"
