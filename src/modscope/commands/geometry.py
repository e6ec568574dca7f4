"""Geometry commands: ``similarity``, ``streams``, ``cka``, ``anisotropy`` (the maths is in modscope.geometry)."""

from __future__ import annotations

from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, emit, load_corpus, models_with_twin, positive
from modscope.errors import ModscopeError

PER_CATEGORY_OPTION = common.per_category_option(3)
POSITIONS_OPTION = common.positions_option("last:10")
CTX_OPTION = common.ctx_option(512)


def register(app: typer.Typer) -> None:
    @app.command("similarity")
    def similarity_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION, per_category: int = PER_CATEGORY_OPTION,
        positions: str = POSITIONS_OPTION, ctx: int = CTX_OPTION,
        sites: str = common.sites_option("attn_out.*,resid_post.*", "; 'head_out.L' gives one matrix per head"),
        kind: str = typer.Option("cosine,scaled,centred", "--kind",
                                 help="Similarity kinds: cosine, scaled, centred, euclidean, dot."),
        twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION,
        permutations: int = typer.Option(1000, "--permutations", help="Null size."),
        seed: int = common.SEED_OPTION, out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Similarity matrices by category per layer (seed 001), with separation z against a permutation null."""
        from modscope.geometry.reports import similarity_report

        positive(per_category, "--per-category")
        positive(permutations - 1, "--permutations - 1")
        kinds = common.parse_csv(kind)
        if not kinds:
            raise ModscopeError("--kind is empty; give e.g. 'cosine,scaled,centred'")
        emit(out, similarity_report(models_with_twin(model, twin, twin_seed), load_corpus(corpus), sites=sites,
                                    kinds=kinds, per_category=per_category, positions=positions, ctx=ctx,
                                    n_permutations=permutations, seed=seed, out=out), as_json)

    @app.command("streams")
    def streams_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION, per_category: int = PER_CATEGORY_OPTION,
        positions: str = POSITIONS_OPTION, ctx: int = CTX_OPTION,
        sites: str = common.sites_option("resid_post.*", " of one width, in depth order"),
        dims: str = typer.Option("auto", "--dims", help="'auto' (rank by ANOVA F) or dimensions like 13,42."),
        top: int = typer.Option(6, "--top", help="How many ranked dimensions to draw with --dims auto."),
        permutations: int = typer.Option(200, "--permutations", help="Null size."),
        seed: int = common.SEED_OPTION, out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Stream diagrams: a hidden dimension's value across layers, one line per sample, coloured by category."""
        from modscope.geometry.reports import streams_report

        positive(top, "--top")
        positive(permutations - 1, "--permutations - 1")
        chosen = None if dims.strip().lower() == "auto" else common.parse_ints(dims, "--dims")
        emit(out, streams_report(common.cached_model(model), load_corpus(corpus), sites=sites, dims=chosen, top=top,
                                 per_category=per_category, positions=positions, ctx=ctx,
                                 n_permutations=permutations, seed=seed, out=out), as_json)

    @app.command("cka")
    def cka_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION, per_category: int = PER_CATEGORY_OPTION,
        positions: str = POSITIONS_OPTION, ctx: int = CTX_OPTION,
        sites: str = common.sites_option("resid_post.*"),
        twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION,
        pca_k: int = typer.Option(2, "--pca", help="Principal components per site."),
        embed: str = typer.Option("pca", "--embed", help="Scatter plots: 'pca', 'phate' or 'pca,phate' (PHATE needs "
                                  "the optional extra: pip install 'modscope[phate]')."),
        seed: int = common.SEED_OPTION, out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
        vs: str | None = common.old_spelling("--vs"),
    ) -> None:
        """Layer x layer (and model x model: --twin, same tokenizer) debiased linear CKA, and PCA scatter plots.

        Memory: the gathered sample (n x d per site) plus O(d^2) per site pair for CKA (feature space, no n x n Gram).
        """
        from modscope.geometry.phate_embed import parse_embed
        from modscope.geometry.reports import cka_report

        positive(pca_k, "--pca")
        embeddings = parse_embed(embed)
        twin = common.renamed(twin, vs, "--vs", "--twin")
        trained, other = (models_with_twin(model, twin, twin_seed) + [None])[:2]  # other: None with --twin none
        emit(out, cka_report(trained, other, load_corpus(corpus), sites=sites, per_category=per_category,
                             positions=positions, ctx=ctx, pca_k=pca_k, seed=seed, out=out, embed=embeddings), as_json)

    @app.command("anisotropy")
    def anisotropy_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION,
        per_category: int = common.per_category_option(2), positions: str = common.positions_option("all"),
        ctx: int = common.ctx_option(256),
        sites: str = common.sites_option("embed,resid_post.*", " ('' for weights only)"),
        vocab_rows: int = typer.Option(None, "--vocab-rows", help="Sample this many tokens of W_E (default: all)."),
        bins: int = typer.Option(200, "--bins", help="Histogram bins over [-1, 1]."),
        twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION, seed: int = common.SEED_OPTION,
        engine: str = common.ENGINE_OPTION, scheduler: str | None = common.SCHEDULER_OPTION,
        out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Exact all-pairs cosine histograms of W_E, W_U (if untied) and hidden states, raw vs mean-centred."""
        from modscope.geometry.reports import anisotropy_report

        positive(bins, "--bins")
        positive(vocab_rows, "--vocab-rows")
        engines = common.engine_kwargs(engine, scheduler)
        emit(out, anisotropy_report(models_with_twin(model, twin, twin_seed), load_corpus(corpus), sites=sites,
                                    per_category=per_category, positions=positions, ctx=ctx, vocab_rows=vocab_rows,
                                    bins=bins, seed=seed, out=out, **engines), as_json)


def demo_similarity(ctx: DemoContext, out: Path) -> None:
    from modscope.geometry.phate_embed import phate_installed
    from modscope.geometry.reports import similarity_report

    similarity_report([ctx.trained(), ctx.twin()], load_corpus("bundled"),
                      embed=("phate",) if phate_installed() else (),  # PHATE only with the optional extra
                      sites=ctx.pick("resid_post.*", "attn_out.*,resid_post.*", "attn_out.*,resid_post.*"),
                      kinds=ctx.pick(["cosine"], ["cosine", "centred"], ["cosine", "scaled", "centred"]),
                      per_category=ctx.pick(2, 3, 4), positions=ctx.pick("last:5", "last:10", "last:10"),
                      ctx=ctx.pick(128, 256, 512), n_permutations=ctx.pick(200, 200, 2000), out=out)


def demo_anisotropy(ctx: DemoContext, out: Path) -> None:
    from modscope.geometry.reports import anisotropy_report

    anisotropy_report([ctx.trained(), ctx.twin()], load_corpus("bundled"),
                      sites=ctx.pick("embed,resid_post.-1", "embed,resid_post.*", "embed,resid_post.*"),
                      per_category=ctx.pick(1, 2, 3), ctx=ctx.pick(64, 128, 256),
                      vocab_rows=ctx.pick(4096, 12288, None), out=out)


def demo_streams(ctx: DemoContext, out: Path) -> None:
    from modscope.geometry.reports import streams_report

    streams_report(ctx.trained(), load_corpus("bundled"), per_category=ctx.pick(2, 3, 4),
                   positions=ctx.pick("last:5", "last:10", "last:10"), ctx=ctx.pick(128, 256, 512),
                   n_permutations=ctx.pick(50, 200, 500), out=out)


def demo_steps() -> list:
    """Similarity by category (trained vs twin), anisotropy raw vs centred, stream diagrams."""
    return [
        DemoStep("similarity", "Similarity matrices by category", demo_similarity),
        DemoStep("anisotropy", "Anisotropy of embeddings and hidden states", demo_anisotropy),
        DemoStep("streams", "Stream diagrams of hidden dimensions", demo_streams),
    ]
