"""``modscope clusters``: clusters in the residual stream and cosines after cluster-wise centring (seed 003)."""

from __future__ import annotations

from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, emit, load_corpus, models_with_twin, positive


def register(app: typer.Typer) -> None:
    @app.command("clusters")
    def clusters_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION,
        # positions 'all' keep the first token, which often forms its own cluster
        per_category: int = common.per_category_option(2), positions: str = common.positions_option("all"),
        ctx: int = common.ctx_option(128), sites: str = common.sites_option("embed,resid_post.*"),
        max_k: int = typer.Option(6, "--max-k", help="Largest k tried (k = 1 is always allowed)."),
        twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION, seed: int = common.SEED_OPTION,
        out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Clusters of hidden states per site (k by silhouette, null: one Gaussian), mean cosine raw / globally
        centred / cluster-wise centred, and Cai et al.'s inter-/intra-type cosines, trained vs twin."""
        from modscope.geometry.cluster_report import clusters_report

        positive(per_category, "--per-category")
        positive(ctx, "--ctx")
        emit(out, clusters_report(models_with_twin(model, twin, twin_seed), load_corpus(corpus), sites=sites,
                                  per_category=per_category, positions=positions, ctx=ctx, max_k=max_k, seed=seed,
                                  out=out), as_json)


def demo_clusters(ctx: DemoContext, out: Path) -> None:
    from modscope.geometry.cluster_report import clusters_report

    clusters_report([ctx.trained(), ctx.twin()], load_corpus("bundled"),
                    sites=ctx.pick("embed,resid_post.-1", "embed,resid_post.0,resid_post.7,resid_post.14,"
                                   "resid_post.21,resid_post.-1", "embed,resid_post.*"),
                    per_category=ctx.pick(1, 1, 3), ctx=ctx.pick(64, 96, 256), out=out)


def demo_steps() -> list:
    """Clusters in the residual stream (trained vs twin)."""
    return [DemoStep("clusters", "Clusters in the residual stream", demo_clusters)]
