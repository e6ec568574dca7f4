"""The jacobian pages' figures, from the results of ``modscope jacobian`` (sublayers and paths)."""

from __future__ import annotations

from modscope import figures as style


def block_figures(found: dict) -> dict:
    """The sublayer page's figures: singular values per part (trained and twin), then rank per layer if measured."""
    figures = {}
    parts = sorted({r.part for r in found["spectra"]})
    fig, axs = style.grid(len(parts), cols=2, size=4.2)
    for ax, part in zip(axs, parts, strict=True):
        mine = [r for r in found["spectra"] if r.part == part]
        for i, r in enumerate(mine):
            bound = " lower bound, top-k only" if r.spectrum.rank_is_lower_bound else ""
            curve = len(ax.lines)
            r.spectrum.plot(ax, label=f"{r.model}, {r.tokens} tok (rank {r.spectrum.rank_text}/{r.spectrum.full_size}"
                            f"{bound})", color=style.model_colour(r.model), floor=i == 0)
            ax.lines[curve].set_alpha(0.4 + 0.6 * (i + 1) / len(mine))
        ax.set_title(f"{part} Jacobian, layer {mine[0].layer}{' + identity' if mine[0].residual else ''}")
    figures["singular_values"] = fig
    if found["ranks"]:
        fig, axs = style.grid(len(parts), cols=2, size=4.2)
        for ax, part in zip(axs, parts, strict=True):
            for r in found["ranks"]:
                if r.part == part:
                    r.plot(ax)
        figures["rank_per_layer"] = fig
    return figures


def path_figures(found: dict) -> dict:
    """The path page's figures: path singular values per model and position, then Jacobian vs covariance."""
    ax = style.axes(None)
    for i, r in enumerate(found["paths"]):
        curve = len(ax.lines)
        r.spectrum.plot(ax, label=f"{r.model}: {r.label} (rank {r.spectrum.rank_text})",
                        color=style.model_colour(r.model), floor=i == 0)
        ax.lines[curve].set_linestyle("-" if r.dst_pos == r.src_pos else "--")
    ax.set_title("path Jacobian singular values")
    figures = {"path_singular_values": ax.figure}
    if found["alignments"]:
        ax = style.axes(None)
        for r in found["alignments"]:
            r.plot(ax)
        figures["jacobian_vs_covariance"] = ax.figure
    return figures
