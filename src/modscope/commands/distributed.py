"""CLI for running modscope beyond one process: sharded capture, and the streaming statistics on a Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import cached_model, emit
from modscope.errors import ModscopeError

BACKENDS = ("processes", "dask", "serial")
# the store used to be the first argument of dask-stats and grad-svd: still accepted for one release
POSITIONAL_STORE = typer.Argument(None, hidden=True, metavar="STORE")  # the old spelling of --store
STATS = ("covariance", "mi", "spectrum", "histogram")


def _summary(name: str, result) -> dict:
    if name == "covariance":
        return {"n": result.n, "dim": result.dim, "trace": float(result.cov.trace()), "mean_norm":
                float((result.mean ** 2).sum() ** 0.5)}
    return result.to_json()


def _write_and_emit(out: Path | None, payload: dict, as_json: bool, line: str) -> None:
    """``payload`` into OUT/result.json (with --out), then printed (--json) or ``line``."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(payload, indent=2, default=str))
    emit(None, payload, as_json, line)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to ``app``."""

    @app.command("capture-shard")
    def capture_shard_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION, sites: str = common.CAPTURE_SITES,
        positions: str = common.CAPTURE_POSITIONS, max_tokens: int = common.CAPTURE_MAX_TOKENS,
        ctx: int = common.CAPTURE_CTX, batch_size: int = common.CAPTURE_BATCH_SIZE, sample: str = common.CAPTURE_SAMPLE,
        seed: int = common.SEED_OPTION,
        shards: int = typer.Option(2, "--shards", help="Disjoint document ranges captured in parallel."),
        backend: str = typer.Option("processes", "--backend", help="Where the shards run: 'processes' (a local "
                                    "process pool; every worker loads --model by name), 'dask' (Dask tasks) or "
                                    "'serial' (one after the other, here)."),
        scheduler: str = common.SCHEDULER_OPTION,
        out: Path = common.CAPTURE_OUT,
        as_json: bool = common.JSON_OPTION,
        sample_seed: int | None = common.old_spelling("--sample-seed"),
        engine: str | None = common.old_spelling("--engine"),
    ) -> None:
        """Capture SITES of MODEL into one Zarr store from several processes or Dask workers (resumable)."""
        from modscope.capture.sharded import capture_sharded

        texts, seed = common.capture_inputs(corpus, max_tokens, seed, sample_seed)
        backend = common.renamed(backend, engine, "capture-shard --engine", "--backend")
        if backend not in BACKENDS:
            raise ModscopeError(f"--backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
        store = capture_sharded(cached_model(model), texts, sites, out=out, shards=shards,
                                positions=positions, max_tokens=max_tokens, ctx=ctx, batch_size=batch_size,
                                backend=backend, scheduler=scheduler, sample=sample, seed=seed)
        summary = {"store": str(out), "rows": store.n_rows, "sites": store.shapes, "shards": shards}
        emit(None, summary, as_json,
             f"captured {store.n_rows} rows of {len(store.sites)} sites in {shards} shards into {out}")

    @app.command("dask-stats")
    def dask_stats_cmd(
        store: Path | None = common.store_option("The capture store to read (required)"),
        stat: str = typer.Option("covariance", "--stat", help="covariance | mi | spectrum | histogram"),
        site: str = typer.Option(..., "--site", help="Site (X for mi)."),
        site_y: str = typer.Option(None, "--site-y", help="Y site for mi."),
        engine: str = common.ENGINE_OPTION, scheduler: str = common.SCHEDULER_OPTION,
        out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION, positional: Path | None = POSITIONAL_STORE,
    ) -> None:
        """A streaming statistic of a store's rows, chunk by chunk, here or on a Dask cluster."""
        from modscope.capture import ActivationStore
        from modscope.geometry import cosine_histogram
        from modscope.stats import covariance, gaussian_mi, spectrum

        store = common.positional_store(store, positional)
        if stat not in STATS:
            raise ModscopeError(f"--stat must be one of {', '.join(STATS)}, got '{stat}'")
        if stat == "mi" and not site_y:
            raise ModscopeError("--stat mi needs --site-y (the Y site)")
        acts = ActivationStore.open(store)
        where = common.engine_kwargs(engine, scheduler)
        result = {"covariance": lambda: covariance((acts, site), **where),
                  "mi": lambda: gaussian_mi((acts, site), (acts, site_y), **where),
                  "spectrum": lambda: spectrum((acts, site), massive=False, **where),
                  "histogram": lambda: cosine_histogram((acts, site), **where)}[stat]()
        payload = {"stat": stat, "engine": engine, "store": str(store), "site": site, "site_y": site_y,
                   "result": _summary(stat, result)}
        _write_and_emit(out, payload, as_json,
                        f"{stat} of {site} over {acts.n_rows} rows ({engine}): {json.dumps(payload['result'])[:300]}")

    @app.command("grad-svd")
    def grad_svd_cmd(
        store: Path | None = common.store_option("The gradient store that `modscope train ... --out` wrote (required)"),
        k: int = typer.Option(50, "--k", help="Singular values wanted."),
        method: str = typer.Option("auto", "--method", help="auto | gram | randomized (svd_compressed: old name)"),
        power_iters: int = typer.Option(2, "--power-iters", help="Power iterations of randomized (>= 2)."),
        engine: str = common.ENGINE_OPTION, scheduler: str = common.SCHEDULER_OPTION,
        out: Path = common.OUT_OPTION, as_json: bool = common.JSON_OPTION, positional: Path | None = POSITIONAL_STORE,
    ) -> None:
        """Top singular values of a recorded gradient store, out of core, with their error bounds."""
        from modscope.training.spectrum import gradient_svd

        store = common.positional_store(store, positional)
        result = gradient_svd(store, k=k, method=method, power_iters=power_iters,
                              **common.engine_kwargs(engine, scheduler))
        _write_and_emit(out, result.to_json(), as_json,
                        f"{result.method}: top values {result.singular_values[:5].round(4).tolist()}, "
                        f"{result.captured:.1%} of ||A||_F^2, max relative error bound "
                        f"{float(result.relative_error_bound.max(initial=0)):.2e}")
