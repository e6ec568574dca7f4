"""CLI for the weights capability: ``modscope clusterability`` (modules in the weight graph vs shuffled weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, cached_model, console, emit, parse_ints, twin_name
from modscope.errors import ModscopeError

QUESTION = ("Are the network's neurons wired in modules: does spectral clustering of the |weight| graph cut it with "
            "a lower normalised cut than the same weights shuffled within each layer (Filan et al. 2021)?")


def run_clusterability(model: str, twin: str, *, k: int, n_shuffles: int, layers: list[int] | None, gate: str,
                       fold_norm: bool, epochs: int, seed: int, twin_seed: int = 0, jobs: int = 1,
                       quiet: bool = False):
    """(trained result, twin result or None, trained units): the library calls behind the command and demo."""
    from modscope.training.mnist import mnist_mlp_weights
    from modscope.weights.sources import network_units
    from modscope.weights.summary import network_clusterability

    def report(unit: str, r) -> None:
        if not quiet:
            console.print(f"  {unit}: n-cut {r.ncut:.4f} vs null {r.null_mean:.4f} ± {r.null_sd:.4f} (z = {r.z:.1f})")

    def analyse(name: str, loader_seed: int):
        units, graph = network_units(name, layers=layers, gate=gate, fold_norm=fold_norm, epochs=epochs, seed=seed,
                                     model_loader=lambda n: cached_model(n, loader_seed),
                                     mnist_loader=mnist_mlp_weights)
        if not quiet:
            console.print(f"[bold]{name}[/bold]: {len(units)} units, {n_shuffles} shuffles each")
        return network_clusterability(units, model=name, graph=graph, k=k, n_shuffles=n_shuffles, seed=seed,
                                      progress=report, n_jobs=jobs), units

    trained, units = analyse(model, 0)
    return trained, analyse(twin_name(model, twin), twin_seed)[0] if twin != "none" else None, units


def result_table(trained, twin) -> pd.DataFrame:
    table = pd.DataFrame({"unit": trained.units, "ncut": trained.ncut, "null_mean": trained.null_mean,
                          "null_sd": trained.null_sd, "z": trained.z, "p": trained.p_value,
                          "cluster_sizes": ["+".join(map(str, sizes)) for sizes in trained.cluster_sizes]})
    if twin is not None and twin.units == trained.units:
        table["twin_ncut"], table["twin_z"] = twin.ncut, twin.z
    return table


def write_page(out: Path, trained, twin, units, settings: dict) -> None:
    """result.json, the n-cut and z figures, the cluster-sorted weight heat map and index.html."""
    from modscope.report import write_probe
    from modscope.weights.heatmap import plot_cluster_heatmap
    from modscope.weights.summary import describe, plot_ncut_and_z

    fig = plot_ncut_and_z([trained] + ([twin] if twin is not None else []))
    best = trained.units[int(np.argmin(trained.z))]
    heat = plot_cluster_heatmap(units[best], trained.result(best),
                                title=f"{trained.model} {best}: |weights| sorted by cluster "
                                      f"(z = {trained.result(best).z:.1f})")
    headline, verdict = describe(trained, twin)
    write_probe(out, probe="clusterability", title=f"Clusterability of the weights: {trained.model}",
                question=QUESTION, result={"trained": trained, "twin": twin}, headline=headline, verdict=verdict,
                figures={"ncut_vs_null": fig, f"heatmap_{best}": heat},
                tables={"clusterability per unit": result_table(trained, twin)}, settings=settings)


def register(app: typer.Typer) -> None:
    """Add ``clusterability`` to ``app``."""

    @app.command("clusterability")
    def clusterability_command(
        model: str = common.MODEL_OPTION,  # also 'mnist-mlp' (the trained MNIST MLP); an LM is read by its MLP blocks
        k: int = typer.Option(4, "--k", help="Clusters per graph."),
        n_shuffles: int = typer.Option(50, "--shuffles", help="Weight-shuffled null networks per unit."),
        twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION,
        layers: str = typer.Option("", "--layers", help="Blocks (LM) or layers (MLP) to analyse, e.g. 0,5,29."),
        gate: str = typer.Option("sum", "--gate", help="Gated MLPs: in-edges |W_gate|+|W_up| (sum), up or gate."),
        fold_norm: bool = typer.Option(False, "--fold-norm", help="Fold the pre-MLP norm gain into W_in."),
        epochs: int = typer.Option(1, "--epochs", help="MNIST MLP training epochs (trained once, then cached)."),
        seed: int = common.SEED_OPTION,
        jobs: int = typer.Option(1, "--workers", help=common.WORKERS_HELP),
        out: Path | None = common.OUT_OPTION, as_json: bool = common.JSON_OPTION,
        old_shuffles: int | None = common.old_spelling("--n-shuffles"),
        old_jobs: int | None = common.old_spelling("--jobs"),
    ) -> None:
        """n-cut of spectral clustering of each MLP block / layer vs weight-shuffled networks, trained vs twin.

        --model also takes 'mnist-mlp' (the trained MNIST MLP, whose twin is the same run at initialisation)."""
        n_shuffles = common.renamed(n_shuffles, old_shuffles, "--n-shuffles", "--shuffles")
        jobs = common.renamed(jobs, old_jobs, "--jobs", "--workers")
        for value, least, option, why in ((k, 2, "--k", ""),
                                          (n_shuffles, 2, "--shuffles", " (the null needs a spread)"),
                                          (jobs, 1, "--workers", "")):
            if value < least:
                raise ModscopeError(f"{option} must be at least {least}{why}, got {value}")
        chosen = parse_ints(layers, "--layers") or None
        trained, other, units = run_clusterability(model, twin, k=k, n_shuffles=n_shuffles, layers=chosen,
                                                   gate=gate, fold_norm=fold_norm, epochs=epochs, seed=seed,
                                                   twin_seed=twin_seed, jobs=jobs, quiet=as_json)
        settings = {"model": model, "twin": twin, "k": k, "n_shuffles": n_shuffles, "layers": chosen,
                    "gate": gate, "fold_norm": fold_norm, "epochs": epochs, "seed": seed, "jobs": jobs}
        if out is not None:
            write_page(out, trained, other, units, settings)
        emit(out, {"trained": trained.to_json(), "twin": other.to_json() if other else None}, as_json)


def demo_step(ctx: DemoContext, out_dir: Path) -> None:
    """Clusterability of the demo model's MLP blocks vs its random twin (sizes by ``ctx.size``)."""
    n_layers = ctx.trained().n_layers
    layers = ctx.pick(sorted({0, n_layers // 2, n_layers - 1}), list(range(0, n_layers, 3)), None)
    n_shuffles = ctx.pick(4, 10, 50)
    trained, twin, units = run_clusterability(ctx.model, "random", k=4, n_shuffles=n_shuffles, layers=layers,
                                              gate="sum", fold_norm=False, epochs=1, seed=0, quiet=True)
    write_page(out_dir, trained, twin, units, {"model": ctx.model, "k": 4, "n_shuffles": n_shuffles,
                                               "layers": layers, "gate": "sum"})


def demo_steps() -> list:
    """This capability's steps of `modscope demo`."""
    return [DemoStep("clusterability", "Modules in the weights: spectral clusterability vs shuffled weights",
                     demo_step)]
