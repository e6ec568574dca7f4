"""Report: one figure style, per-probe output directories, and the self-contained HTML report of a run."""

from modscope.report.index import RUN_FILE, build_index, find_results, read_run
from modscope.report.numbers import Number
from modscope.report.page import RESULT_FILE, write_probe
from modscope.report.style import NULL, TRAINED, TWIN, axes, grid, model_colour

__all__ = ["NULL", "RESULT_FILE", "RUN_FILE", "TRAINED", "TWIN", "Number", "axes", "build_index", "find_results",
           "grid", "model_colour", "read_run", "write_probe"]
