"""Report: one figure style, per-probe output directories, and the HTML index of a run."""

from modscope.report.page import build_index, find_results, write_probe
from modscope.report.style import NULL, TRAINED, TWIN, axes, grid, model_colour

__all__ = ["NULL", "TRAINED", "TWIN", "axes", "build_index", "find_results", "grid", "model_colour", "write_probe"]
