"""Report: per-probe output directories and the self-contained HTML report of a run (figures: modscope.figures)."""

from modscope.report.index import RUN_FILE, build_index, find_results, read_run
from modscope.report.numbers import Number
from modscope.report.page import RESULT_FILE, write_probe

__all__ = ["RESULT_FILE", "RUN_FILE", "Number", "build_index", "find_results", "read_run", "write_probe"]
