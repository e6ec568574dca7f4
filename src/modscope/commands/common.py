"""What every CLI command shares: model loading by name, option parsing, output and the demo step type."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from modscope.errors import ModscopeError

console = Console(stderr=True)


@lru_cache(maxsize=4)
def cached_model(name: str, seed: int = 0):
    """Load a model once per process (the demo and multi-model commands reuse it)."""
    from modscope.models import load_model

    return load_model(name, seed=seed)


def load_corpus(name: str):
    """The corpus ``--corpus NAME`` names (imported only when a command needs it)."""
    from modscope import corpus

    return corpus.load(name)


def twin_name(model: str, twin: str) -> str:
    """``--twin random`` means the random-init twin of ``model``; anything else is a model name."""
    return f"random:{model}" if twin == "random" else twin


def models_with_twin(model: str, twin: str, twin_seed: int = 0) -> list:
    """The model, then its twin unless ``twin`` is 'none'."""
    chosen = [cached_model(model)]
    if twin.lower() != "none":
        chosen.append(cached_model(twin_name(model, twin), twin_seed))
    return chosen


def parse_csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_ints(value: str | None, what: str) -> list[int]:
    try:
        return [int(v) for v in parse_csv(value)]
    except ValueError:
        raise ModscopeError(f"{what} must be comma-separated integers, got '{value}'") from None


def positive(value: float | None, what: str) -> None:
    if value is not None and value <= 0:
        raise ModscopeError(f"{what} must be > 0, got {value}")


def emit(out: Path | None, payload: Any, as_json: bool, line: str | None = None, text: tuple[str, ...] = ()) -> None:
    """Print the result JSON (``--json``), or where the page was written and then ``line`` (both on stderr); with
    neither ``--json`` nor ``--out``, ``text`` (a table, a verdict) goes to stdout."""
    if as_json:
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    if out is not None:
        console.print(f"wrote [bold]{out}/index.html[/bold] and {out}/result.json")
    if line is not None:
        console.print(line)
    for part in text if out is None else ():
        typer.echo(part)


def check_out_dir(out: Path | None) -> Path | None:
    """Refuse an ``--out`` that cannot become a directory, before any work is done (and without creating it).

    An existing file, a path below a file, or a directory this user cannot write are one-line errors.
    """
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModscopeError(f"--out {out} is an existing file, not a directory: give a new or existing directory")
    parent = out
    while not parent.exists():
        if parent.is_symlink():
            raise ModscopeError(f"--out {out}: {parent} is a broken symbolic link; give another --out")
        parent = parent.parent
    if not parent.is_dir():
        raise ModscopeError(f"--out {out} cannot be created: {parent} is a file, not a directory; give another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ModscopeError(f"--out {out} cannot be written: no write permission in {parent}; give another --out")
    return out


# The shared vocabulary of every command. README.md "Common options" is the table of these options, and
# tests/test_common_options.py holds it to every command's --help: one name, one meaning and one default per concept.
DEFAULT_MODEL = "smollm2-135m"
MODEL_OPTION = typer.Option(DEFAULT_MODEL, "--model", help="Model name (see `modscope models`).")
TWIN_OPTION = typer.Option("random", "--twin", help="The null model: 'random' (the random-init twin of --model), "
                           "another model name, or 'none'.")
TWIN_SEED_OPTION = typer.Option(0, "--twin-seed", help="Initialisation seed of a random twin.")
SEED_OPTION = typer.Option(0, "--seed", help="Seed of every random choice the command makes (document sample, "
                           "shuffles, nulls, initialisation).")
CORPUS_OPTION = typer.Option("bundled", "--corpus", help="'bundled', a directory of .txt files per category, "
                             "or a .jsonl file.")
ENGINE_OPTION = typer.Option("local", "--engine", help="'local' (this process) or 'dask' (chunk by chunk on a "
                             "Dask cluster).")
SCHEDULER_OPTION = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 "
                                "(default: a LocalCluster sized to this machine).")
TWIN_STORE_OPTION = typer.Option(None, "--twin-store", help="Read the twin's activations from this capture store.")
WORKERS_HELP = "Worker processes (the result is the same for any number)."
OUT_OPTION = typer.Option(None, "--out", help="Directory for result.json, figures and index.html.",
                          callback=check_out_dir)
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")


def sites_option(default: str, note: str = "") -> Any:
    """``--sites``: site names or shell patterns, comma-separated (the default depends on the probe)."""
    return typer.Option(default, "--sites", help=f"Sites or patterns, comma-separated (see `modscope sites`){note}.")


def ctx_option(default: int, what: str = "Tokens per document (longer documents are cut)") -> Any:
    """``--ctx``: the context length in tokens of one forward pass."""
    return typer.Option(default, "--ctx", help=f"{what}.")


def per_category_option(default: int | None) -> Any:
    return typer.Option(default, "--per-category", help="Documents sampled per corpus category.")


def positions_option(default: str) -> Any:
    return typer.Option(default, "--positions", help="Token positions per document: all | last:K | first:K | "
                        "range:A:B | i,j,k")


def max_tokens_option(default: int | None, note: str = "") -> Any:
    return typer.Option(default, "--max-tokens", help=f"Rows (token positions) to capture in all{note}.")


def store_option(what: str = "Read activations from this capture store instead of running --model") -> Any:
    """``--store DIR``: a store the command reads (``--out`` is what it writes)."""
    return typer.Option(None, "--store", help=f"{what}.")


def engine_kwargs(engine: str, scheduler: str | None) -> dict[str, Any]:
    """Validated ``engine=``/``scheduler=`` keyword arguments for the streaming statistics."""
    if engine not in ("local", "dask"):
        raise ModscopeError(f"--engine must be 'local' or 'dask', got '{engine}'")
    if scheduler and engine != "dask":
        raise ModscopeError("--scheduler needs --engine dask")
    return {"engine": engine, "scheduler": scheduler}


def old_spelling(*decls: str) -> Any:
    """A hidden option under a name users may have typed before the vocabulary was unified (kept one release)."""
    return typer.Option(None, *decls, hidden=True)


def renamed(value: Any, old_value: Any, old: str, new: str) -> Any:
    """The value given under the old spelling ``old`` if any (with a note on stderr), else ``value``."""
    if old_value is None:
        return value
    console.print(f"modscope: note: {old} is now {new}; the old spelling goes in the next release", highlight=False,
                  soft_wrap=True)
    return old_value


def positional_store(store: Path | None, positional: Path | None) -> Path:
    """The ``--store`` of a command whose store used to be its first argument (still accepted for one release)."""
    if positional is not None and store is not None and Path(positional) != Path(store):
        raise ModscopeError(f"two stores given: --store {store} and {positional}; give only --store")
    store = renamed(store, positional, "the store as first argument", "--store STORE")
    if store is None:
        raise ModscopeError("no store given: pass --store DIR")
    return Path(store)


def capture_inputs(corpus: str, max_tokens: int | None, seed: int, sample_seed: int | None) -> tuple[Any, int]:
    """(the corpus, the seed) of a capture command, its arguments checked (``--sample-seed``: the old ``--seed``)."""
    seed = renamed(seed, sample_seed, "--sample-seed", "--seed")
    positive(max_tokens, "--max-tokens")
    return load_corpus(corpus), seed


# the options of every capture command (`capture`, `capture-shard`)
CAPTURE_SITES = sites_option("resid_post.*")
CAPTURE_POSITIONS = positions_option("all")
CAPTURE_MAX_TOKENS = max_tokens_option(None, " (see --sample)")
CAPTURE_SAMPLE = typer.Option("balanced", "--sample",
                              help="How --max-tokens rows are chosen when the corpus holds more: 'balanced' (seeded "
                                   "documents round-robin over categories, positions spread unless --positions "
                                   "names them) or 'first' (the first documents).")
CAPTURE_CTX = ctx_option(512)
CAPTURE_BATCH_SIZE = typer.Option(None, "--batch-size", help="Documents per forward pass.")
CAPTURE_OUT = typer.Option(..., "--out", help="Zarr store directory (re-run the same command to resume).",
                           callback=check_out_dir)


@dataclass
class DemoContext:
    """Shared state of one ``modscope demo`` run: where to write, how big to go, and the models in use."""

    out: Path
    size: str = "default"  # "quick" | "default" | "full"
    model: str = DEFAULT_MODEL

    def pick(self, quick, default, full):
        """Choose a setting by demo size."""
        return {"quick": quick, "default": default, "full": full}[self.size]

    def trained(self):
        return cached_model(self.model)

    def twin(self):
        return cached_model(f"random:{self.model}")


@dataclass(frozen=True)
class DemoStep:
    """One probe of the demo: ``run(ctx, out_dir)`` writes a probe directory (result.json + page) into out_dir."""

    name: str
    title: str
    run: Callable[[DemoContext, Path], None]
