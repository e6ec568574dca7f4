"""CLI commands for the stats capability: ``modscope mi`` and ``modscope spectrum`` (from a model or a store)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np
import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, cached_model, emit, parse_csv, positive, twin_name
from modscope.errors import ModscopeError
from modscope.report.numbers import plural

MI_QUESTION = ("How much information do two sites share beyond what finite-sample bias alone would give, "
               "and does it stay above the null as the number of tokens grows?")
SPECTRUM_QUESTION = ("Is the variance of each site carried by one big channel or by many medium ones, "
                     "and can the variables be permuted into blocks?")

SITES_OPTION = common.sites_option("resid_post.*")
TOKENS_OPTION = common.max_tokens_option(20000)
CTX_OPTION = common.ctx_option(512)
STORE_OPTION = common.store_option()


def store_sites(store, pattern: str) -> list[str]:
    """Sites of a store matching comma-separated names or shell patterns, in the store's order."""
    wanted = parse_csv(pattern)
    chosen = [s for s in store.sites if any(fnmatch.fnmatchcase(s, p) for p in wanted)]
    if not chosen:
        raise ModscopeError(f"no site of the store matches '{pattern}'; it has: {', '.join(store.sites)}")
    return chosen


def load_stores(model: str, twin: str, twin_seed: int, sites: str, corpus: str, max_tokens: int, ctx: int,
                store: Path | None, twin_store: Path | None, need_twin: bool):
    """(store, twin store or None, site names): opened from disk or captured on the same tokens."""
    from modscope.capture import ActivationStore, capture

    positive(max_tokens, "--max-tokens")
    if store is not None:
        main = ActivationStore.open(store)
        names = store_sites(main, sites)
        other = ActivationStore.open(twin_store) if twin_store is not None else None
        if need_twin and other is None:
            raise ModscopeError("with --store, --pair twin needs --twin-store (the twin captured on the same source)")
        return main, other, names
    source = common.load_corpus(corpus)
    trained = cached_model(model)
    names = trained.select_sites(sites)
    main = capture(trained, source, names, max_tokens=max_tokens, ctx=ctx)
    if twin_store is not None:
        other = ActivationStore.open(twin_store)
    elif twin != "none":
        other = capture(cached_model(twin_name(model, twin), twin_seed), source, names, max_tokens=max_tokens,
                        ctx=ctx)
    elif need_twin:
        raise ModscopeError("--pair twin needs a twin: use --twin random, a model name, or --pair layers")
    else:
        other = None
    return main, other, names


def store_settings(store: Path | None, twin_store: Path | None) -> dict:
    return {"store": str(store) if store else None, "twin_store": str(twin_store) if twin_store else None}


def write_mi(out: Path | None, result, settings: dict) -> None:
    if out is None:
        return
    from modscope.report import write_probe

    headline = [f"{label}: MI {r.mi:.3g} nats (corrected {r.mi_corrected:.3g}) vs {r.null} null "
                f"{r.null_mean:.3g} ± {r.null_sd:.2g}, z = {r.z:.1f}, p = {r.p:.3g}, dims {r.rank_x}×{r.rank_y}, "
                f"n = {r.n}"
                for label, r in zip(result.labels, result.results, strict=True)][:12]
    figures = {"mi_per_site": result.plot().figure}
    curves = result.plot_curves()
    if curves is not None:
        figures["mi_vs_n"] = curves
    write_probe(out, probe="mi", title=f"Gaussian MI: {result.model_x} vs {result.model_y}", question=MI_QUESTION,
                result=result, headline=headline, verdict=result.verdict(), figures=figures,
                tables={"mi": result.to_frame()}, settings=settings)


def directions_above(spectrum) -> str:
    """"12 directions above the Horn (sign-flip) null", or says that no null was run."""
    if spectrum.n_above_null is None:
        return "directions above a null: not tested"
    return f"{plural(spectrum.n_above_null, 'direction')} above the {spectrum.null_name or 'no'} null"


def spectrum_verdict(result) -> str:
    """The deepest site's channel count, read off the correlation spectrum so that no single coordinate's variance
    (a massive activation) can pass for "one big channel"."""
    last = result.trained[-1]
    which = "correlation" if last.correlation_participation_ratio is not None else "covariance"
    pr = last.correlation_participation_ratio if which == "correlation" else last.participation_ratio
    shape = "a few big channels" if pr < 0.05 * last.d else "many medium channels"
    verdict = (f"Deepest site {result.sites[-1]}: participation ratio of the {which} spectrum {pr:.1f} of {last.d} "
               f"({directions_above(last)}): {shape}")
    massive = last.massive is not None and last.massive.found
    if which == "correlation" and last.top1_share > 0.5:
        source = "the massive coordinates' variance" if massive else "unequal column variances"
        verdict += (f"; the covariance spectrum's top-1 share {last.top1_share:.0%} "
                    f"(PR {last.participation_ratio:.1f}) is {source}, not a channel between coordinates "
                    f"(correlation top-1 share {last.correlation_top1_share:.0%})")
    if massive:
        verdict += f"; {last.massive.describe()}"
    if result.twin_spectra:
        twin = result.twin_spectra[-1]
        twin_pr = twin.correlation_participation_ratio or twin.participation_ratio
        verdict += f"; twin {which} participation ratio {twin_pr:.1f}"
    return verdict + "."


def write_spectrum(out: Path | None, result, settings: dict) -> None:
    if out is None:
        return
    from modscope.report import write_probe

    headline = []
    for who, spectra in ((result.model, result.trained), (result.twin, result.twin_spectra)):
        for site, s in list(zip(result.sites, spectra, strict=False))[-3:]:
            headline.append(f"{who} {site}: participation ratio {s.participation_ratio:.1f} of {s.d} "
                            f"(correlation spectrum {s.correlation_participation_ratio or float('nan'):.1f}), "
                            f"top-1 share {s.top1_share:.1%}, {directions_above(s)}"
                            + (f"; {s.massive.describe()}" if s.massive else ""))
    for site, b in zip(result.block_sites, result.blocks, strict=True):
        headline.append(f"{result.model} {site}: {b.n_blocks} blocks, modularity {b.modularity:.3f} vs {b.null} null "
                        f"{b.null_mean:.3f} ± {b.null_sd:.3f} (z = {b.z:.1f}, p = {b.p:.3g})")
    figures = {"spectra": result.plot().figure, "metrics": result.plot_metrics()}
    for who, found in (("trained", result.blocks), ("twin", result.twin_blocks)):
        for site, b in zip(result.block_sites, found, strict=True):
            figures[f"blocks_{who}_{site}"] = b.plot(title=f"{who} {site}: z={b.z:.1f}").figure
    write_probe(out, probe="spectrum", title=f"Covariance spectra: {result.model}", question=SPECTRUM_QUESTION,
                result=result, headline=headline, verdict=spectrum_verdict(result), figures=figures,
                tables={"spectra": result.to_frame()}, settings=settings)


def register(app: typer.Typer) -> None:
    """Add ``mi`` and ``spectrum`` to ``app``."""

    @app.command("mi")
    def mi_command(
        model: str = common.MODEL_OPTION, twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION,
        sites: str = SITES_OPTION,
        pair: str = typer.Option("twin", "--pair", help="'twin': model vs twin per site; 'layers': consecutive sites."),
        corpus: str = common.CORPUS_OPTION, max_tokens: int = TOKENS_OPTION, ctx: int = CTX_OPTION,
        store: Path | None = STORE_OPTION, twin_store: Path | None = common.TWIN_STORE_OPTION,
        curve_points: int = typer.Option(8, "--curve-points", help="Points of each MI-vs-n curve (0: none)."),
        permutations: int = typer.Option(0, "--permutations", help="Row shuffles for a permutation null."),
        seed: int = common.SEED_OPTION,
        engine: str = common.ENGINE_OPTION, scheduler: str | None = common.SCHEDULER_OPTION,
        out: Path | None = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Gaussian MI between a model and its twin at each site (or between consecutive layers), with nulls.

        Memory with --store: flat in the rows (one batch, one float64 (dx+dy)^2 matrix per curve point, 1 byte per
        row); --permutations holds both sites' rows, O(n (dx+dy)).
        """
        from modscope.stats.model_mi import mi_of_stores, site_pairs

        if curve_points < 0 or permutations < 0:
            raise ModscopeError("--curve-points and --permutations must be >= 0")
        site_pairs(["a", "b"], pair)  # validates --pair before any capture
        engines = common.engine_kwargs(engine, scheduler)
        main, other, names = load_stores(model, twin, twin_seed, sites, corpus, max_tokens, ctx, store, twin_store,
                                         need_twin=pair == "twin")
        result = mi_of_stores(main, other, names, pair=pair, curve_points=curve_points, permutations=permutations,
                              seed=seed, **engines)
        settings = {"model": model, "twin": twin, "twin_seed": twin_seed, "sites": names, "pair": pair,
                    "corpus": corpus, "max_tokens": max_tokens, "ctx": ctx, **store_settings(store, twin_store),
                    "curve_points": curve_points, "permutations": permutations, "seed": seed,
                    "rows": main.rows_description()}
        write_mi(out, result, settings)
        emit(out, {"settings": settings, "result": result.to_json(), "verdict": result.verdict()}, as_json,
             text=(result.to_frame().to_string(index=False), result.verdict()))

    @app.command("spectrum")
    def spectrum_command(
        model: str = common.MODEL_OPTION, twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION,
        sites: str = SITES_OPTION, corpus: str = common.CORPUS_OPTION, max_tokens: int = TOKENS_OPTION,
        ctx: int = CTX_OPTION, store: Path | None = STORE_OPTION, twin_store: Path | None = common.TWIN_STORE_OPTION,
        block_sites: str = typer.Option("", "--blocks", help="Sites whose correlation matrix is tested for blocks."),
        standardise: bool = typer.Option(False, "--standardise", help="Spectra of correlation matrices."),
        n_shuffles: int = typer.Option(20, "--shuffles", help="Shuffled matrices in the block-modularity null."),
        seed: int = common.SEED_OPTION,
        engine: str = common.ENGINE_OPTION, scheduler: str | None = common.SCHEDULER_OPTION,
        out: Path | None = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
        standardize: bool | None = common.old_spelling("--standardize"),
    ) -> None:
        """Covariance spectra per site (model vs twin) with Marchenko–Pastur and shuffle nulls, and block structure.

        Memory with --store: flat in the rows (streamed float64 covariance; the shuffle null holds at most 32768 rows).
        """
        from modscope.stats.model_spectra import spectra_of_stores

        standardise = common.renamed(standardise, standardize, "--standardize", "--standardise")
        positive(n_shuffles, "--shuffles")
        engines = common.engine_kwargs(engine, scheduler)
        main, other, names = load_stores(model, twin, twin_seed, sites, corpus, max_tokens, ctx, store, twin_store,
                                         need_twin=False)
        result = spectra_of_stores(main, other, names, block_sites=parse_csv(block_sites), standardize=standardise,
                                   n_shuffles=n_shuffles, seed=seed, **engines)
        settings = {"model": model, "twin": twin, "sites": names, "corpus": corpus, "max_tokens": max_tokens,
                    "ctx": ctx, **store_settings(store, twin_store), "blocks": parse_csv(block_sites),
                    "standardize": standardise, "shuffles": n_shuffles, "seed": seed,
                    "rows": main.rows_description()}
        write_spectrum(out, result, settings)
        emit(out, {"settings": settings, "result": result.to_json()}, as_json,
             text=(result.to_frame().to_string(index=False),))


def spread_sites(n_layers: int, count: int) -> str:
    """``count`` residual-stream sites spread evenly from the first to the last layer."""
    layers = sorted({int(round(v)) for v in np.linspace(0, n_layers - 1, min(count, n_layers))})
    return ",".join(f"resid_post.{layer}" for layer in layers)


def demo_steps() -> list[DemoStep]:
    """``mi`` (trained vs twin, with MI-vs-n curves) and ``spectrum`` (with blocks of the deepest layer)."""

    def demo_stores(ctx: DemoContext):
        """(store, twin store, site names, settings): the trained model's and its twin's rows on the same balanced
        sample of the bundled corpus, at residual sites spread over the depth.

        Captured once into ``OUT/_stores`` (Zarr, resumable): the mi and spectrum steps read the same rows, and the
        balanced sample's forward passes (about 500 tokens per document) are the costliest part of both.
        """
        from modscope.capture import capture
        tokens, layers = ctx.pick((1300, 2), (4000, 5), (20000, 12))
        corpus, trained = common.load_corpus("bundled"), ctx.trained()
        sites = spread_sites(trained.n_layers, layers)
        names = trained.select_sites(sites)
        where = ctx.out / "_stores"
        return (capture(trained, corpus, names, max_tokens=tokens, out=where / f"{ctx.size}-trained", progress=False),
                capture(ctx.twin(), corpus, names, max_tokens=tokens, out=where / f"{ctx.size}-twin", progress=False),
                names, {"model": ctx.model, "twin": "random", "sites": sites, "max_tokens": tokens})

    def run_mi(ctx: DemoContext, out_dir: Path) -> None:
        from modscope.stats.model_mi import mi_of_stores

        main, twin, names, settings = demo_stores(ctx)
        result = mi_of_stores(main, twin, names, curve_points=ctx.pick(4, 4, 8), permutations=ctx.pick(19, 19, 99),
                              allow_identical=True)
        write_mi(out_dir, result, {**settings, "rows": main.rows_description()})

    def run_spectrum(ctx: DemoContext, out_dir: Path) -> None:
        from modscope.stats.model_spectra import spectra_of_stores

        main, twin, names, settings = demo_stores(ctx)
        deepest = settings["sites"].split(",")[-1]
        result = spectra_of_stores(main, twin, names, block_sites=[deepest], n_shuffles=ctx.pick(5, 10, 20))
        write_spectrum(out_dir, result, {**settings, "blocks": [deepest], "rows": main.rows_description()})

    return [DemoStep("mi", "Gaussian MI: trained vs random-init twin", run_mi),
            DemoStep("spectrum", "Covariance spectra and block structure", run_spectrum)]
