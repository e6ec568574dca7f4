"""CLI for training dynamics: `modscope train mnist|modadd`, `modscope sweep`, `modscope gradients`."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoStep, console, emit, parse_csv, parse_ints
from modscope.errors import ModscopeError
from modscope.locking import directory_lock

train_app = typer.Typer(help="Train a small network reproducibly and record its per-step gradients.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to ``app``."""
    app.add_typer(train_app, name="train")
    app.command("gradients")(gradients)
    app.command("sweep")(sweep)


def _locked(out: Path | None):
    """The run directory's lock for the whole command (nothing to lock without --out)."""
    return contextlib.nullcontext() if out is None else directory_lock(out)


def _note(payload: dict, line: str) -> None:
    """State a value the command chose instead of the one asked for: one line on stderr, and in result.json."""
    console.print(f"modscope: note: {line}", highlight=False, soft_wrap=True)
    payload.setdefault("notes", []).append(line)


def _at_least(value: int | None, least: int, option: str) -> None:
    if value is not None and value < least:
        raise ModscopeError(f"{option} must be >= {least}, got {value}")


def _check_lr(lr: float | None) -> None:
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ModscopeError(f"--lr must be a finite number > 0, got {lr}")


@train_app.command("mnist")
def train_mnist_cmd(
    arch: str = typer.Option("mlp", help="mlp (784-256-128-10, 235k parameters) or cnn."),
    epochs: int = typer.Option(2, help="Passes over the 50k training images."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(None, help="Learning rate (default 0.1 for sgd, 1e-3 for adam)."),
    optimizer: str = typer.Option("sgd", help="sgd (update = -lr * gradient) or adam."),
    seed: int = common.SEED_OPTION,
    null: str = typer.Option(None, help="Null condition: noise:0.5, pixel-shuffle, row-shuffle, label-shuffle, "
                                        "classes:2, downscale:14, init-scale:10, width:32."),
    record: str = typer.Option("grads", help="grads (record every step to OUT/grads, resumable) or none."),
    params: str = typer.Option("all", help="Recorded tensors: all, matrices, or comma-separated names."),
    checkpoint_every: int = typer.Option(20, "--checkpoint-every", help="Probe-batch logits every N steps."),
    n_train: int = typer.Option(None, "--n-train", help="Use only the first N training images."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after this many steps."),
    out: Path = common.OUT_OPTION,
    as_json: bool = common.JSON_OPTION,
) -> None:
    """Train the seed-004 MNIST network (seeded, deterministic) and record every step's gradient."""
    from modscope.training.mnist import train_mnist
    from modscope.training.pages import write_train_page

    if record not in ("grads", "none"):
        raise ModscopeError(f"--record must be grads or none, got '{record}'")
    if record == "grads" and out is None:
        raise ModscopeError("--record grads needs --out DIR (gradients go to DIR/grads)")
    for value, option in ((epochs, "--epochs"), (batch_size, "--batch-size"), (n_train, "--n-train"),
                          (max_steps, "--max-steps")):
        _at_least(value, 1, option)
    _at_least(checkpoint_every, 0, "--checkpoint-every")
    _check_lr(lr)
    recorder = None if record == "none" else out / "grads"
    param_sel = params if params in ("all", "matrices") else parse_csv(params)
    with _locked(out):
        run = train_mnist(arch, epochs, batch_size, lr, seed, null, recorder, optimizer=optimizer, n_train=n_train,
                          max_steps=max_steps, checkpoint_every=checkpoint_every, record_params=param_sel)
        payload = {"config": run.config, "n_steps": run.n_steps, "n_params": run.n_params,
                   "final_loss": float(run.losses[-max(1, run.n_steps // 10):].mean()),
                   "valid_accuracy": run.valid_accuracy, "test_accuracy": run.test_accuracy,
                   "gradients": str(recorder) if recorder else None}
        if max_steps is not None and run.n_steps < max_steps:
            _note(payload, f"--max-steps {max_steps} is more than {epochs} epoch(s) hold: trained {run.n_steps} steps")
        if out is not None:
            write_train_page(out, run, payload)
    emit(out, payload, as_json)


@train_app.command("modadd")
def train_modadd_cmd(
    p: int = typer.Option(113, "--p", help="Modulus (a prime)."),
    steps: int = typer.Option(5000, help="Full-batch AdamW steps (p=113, 50 % of pairs: groks near step 3000)."),
    train_frac: float = typer.Option(0.5, "--train-frac", help="Fraction of the p^2 pairs used for training."),
    weight_decay: float = typer.Option(1.0, "--weight-decay"),
    lr: float = typer.Option(1e-3),
    seed: int = common.SEED_OPTION,
    every: int = typer.Option(1, help="Record one step in EVERY."),
    out: Path = common.OUT_OPTION,
    as_json: bool = common.JSON_OPTION,
) -> None:
    """Train a one-hidden-layer MLP on (a + b) mod p to grokking and record its gradients."""
    from modscope.training.modadd import train_modadd
    from modscope.training.pages import write_modadd_page

    _at_least(steps, 1, "--steps")
    _at_least(every, 1, "--every")
    _check_lr(lr)
    with _locked(out):
        run = train_modadd(p=p, steps=steps, train_frac=train_frac, weight_decay=weight_decay, lr=lr, seed=seed,
                           recorder=None if out is None else out / "grads", every=every)
        payload = {"config": run.config, "n_steps": len(run.train_losses), "final_train_accuracy":
                   float(run.train_accuracy[-1]), "final_test_accuracy": float(run.test_accuracy[-1]),
                   "grok_step": run.grok_step, "gradients": str(out / "grads") if out else None}
        if out is not None:
            write_modadd_page(out, run, payload)
    emit(out, payload, as_json)


def gradients(
    store: Path | None = common.store_option("The gradient store to read, or the `modscope train` --out directory "
                                             "holding it (required)"),
    sample_size: int = typer.Option(400, "--sample-size", help="Steps per sample (seed: 400)."),
    repeats: int = typer.Option(10, help="Samples drawn (seed: 10)."),
    skip_first: int = typer.Option(None, "--skip-first", help="Steps left out in the skip study (default 10%)."),
    engine: str = common.ENGINE_OPTION,
    replay: str = typer.Option(None, help="Comma-separated k to replay training with rank-k gradients."),
    out: Path = common.OUT_OPTION,
    as_json: bool = common.JSON_OPTION,
    source: Path | None = typer.Argument(None, hidden=True, metavar="STORE"),  # the old spelling of --store
    method: str | None = common.old_spelling("--method"),
) -> None:
    """Spectrum of all recorded gradients with the seed's thresholds, sampling study, residual, profiles.

    Memory: --engine local holds the float64 steps x steps Gram and one parameter tensor's block,
    O(steps^2 + steps x size); --engine dask computes the Gram chunk by chunk (for stores larger than memory).
    """
    from modscope.training.analysis import analyse_gradients
    from modscope.training.pages import write_gradients_page
    from modscope.training.replay import replay_projected
    from modscope.training.store import GradientStore

    source = common.positional_store(store, source)
    if method is not None:  # the old spelling: --method gram|dask
        if method not in ("gram", "dask"):
            raise ModscopeError(f"--method must be gram or dask, got '{method}'; use --engine local|dask")
        engine = common.renamed(engine, "local" if method == "gram" else "dask", "gradients --method", "--engine")
    common.engine_kwargs(engine, None)  # validates --engine
    _at_least(sample_size, 2, "--sample-size")
    _at_least(repeats, 1, "--repeats")
    _at_least(skip_first, 0, "--skip-first")
    store = GradientStore.open(source / "grads" if (source / "grads" / "manifest.json").is_file() else source)
    bad = store.first_nonfinite_step()
    if bad is not None:
        raise ModscopeError(f"{source} holds NaN or inf gradients from step {bad} on (the first bad step); "
                            "record the run again with a lower --lr, or analyse only the steps before it")
    if skip_first is not None and skip_first > store.n_steps - 2:
        raise ModscopeError(f"--skip-first {skip_first} leaves fewer than 2 of the {store.n_steps} steps")
    payload: dict = {}
    if sample_size > store.n_steps // 2:
        # the sampling protocol draws at most half the steps (analyse_gradients clips it there)
        _note(payload, f"--sample-size {sample_size} is more than half of the {store.n_steps} recorded steps: "
                       f"samples of {max(2, store.n_steps // 2)} steps were used")
    with _locked(out):
        analysis = analyse_gradients(store, sample_size=sample_size, repeats=repeats, skip_first=skip_first,
                                     method="gram" if engine == "local" else "dask")
        replayed = replay_projected(store, ks=parse_ints(replay, "--replay")) if replay else None
        payload = {"analysis": analysis.to_json(), "replay": replayed.to_json() if replayed else None, **payload}
        if out is not None:
            write_gradients_page(out, analysis, replayed, store)
    emit(out, payload, as_json)


def sweep(
    nulls: str = typer.Option(",".join(("none", "noise:0.5", "noise:1", "pixel-shuffle", "label-shuffle",
                                        "classes:2", "downscale:7", "init-scale:10", "width:32")),
                              help="Comma-separated null conditions ('none' = unchanged)."),
    max_steps: int = typer.Option(300, "--max-steps", help="Steps per run."),
    epochs: int = typer.Option(2),
    arch: str = typer.Option("mlp"),
    centre: bool = typer.Option(False, "--centre/--no-centre", help="Subtract the mean gradient before counting."),
    seed: int = common.SEED_OPTION,
    out: Path = common.OUT_OPTION,
    as_json: bool = common.JSON_OPTION,
    center: bool | None = common.old_spelling("--center/--no-center"),
) -> None:
    """Train under each null condition and compare the counts of singular values above 5/10/15% of max."""
    from modscope.training.pages import write_sweep_page
    from modscope.training.sweep import run_sweep

    centre = common.renamed(centre, center, "--center", "--centre")
    conditions = parse_csv(nulls)
    if not conditions:
        raise ModscopeError("--nulls is empty; give e.g. none,noise:0.5,pixel-shuffle")
    result = run_sweep(conditions, centre=centre, max_steps=max_steps, epochs=epochs, arch=arch, seed=seed,
                       progress=lambda c: console.print(f"training [bold]{c}[/bold]"))
    if out is not None:
        write_sweep_page(out, result)
    emit(out, result.to_json(), as_json)


def _demo_run(ctx, out_dir: Path) -> None:
    from modscope.training.analysis import analyse_gradients
    from modscope.training.mnist import train_mnist
    from modscope.training.pages import write_gradients_page

    steps = ctx.pick(60, 300, 1562)
    run = train_mnist(recorder=True, max_steps=steps, n_train=ctx.pick(6000, None, None),
                      checkpoint_every=max(5, steps // 30))
    analysis = analyse_gradients(run, sample_size=min(400, steps // 2), repeats=10)
    write_gradients_page(out_dir, analysis, None, run.recorder.store,
                         note=f"demo run: MNIST MLP, {steps} SGD steps (the seed used ~2 epochs = 1562).")


def demo_steps() -> list:
    """This capability's steps of `modscope demo` (see modscope.commands.common.DemoStep)."""
    return [DemoStep("gradients", "Gradient-matrix spectrum of MNIST training (seed 004)", _demo_run)]
