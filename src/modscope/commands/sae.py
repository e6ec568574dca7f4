"""CLI commands for the sae capability: ``modscope sae train`` and ``modscope sae inspect`` (and a demo step)."""

from __future__ import annotations

from pathlib import Path

import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, cached_model, console, emit, load_corpus, positive
from modscope.errors import ModscopeError

sae_app = typer.Typer(help="Sparse autoencoders on any site: train, inspect (density over training, logit "
                           "weights, top contexts).", no_args_is_help=True)


def parse_tokens(value: str) -> int:
    """``'2e6'`` or ``'2000000'`` -> 2000000."""
    try:
        tokens = int(float(value))
    except ValueError:
        raise ModscopeError(f"--tokens must be a number such as 2e6, got '{value}'") from None
    positive(tokens, "--tokens")
    return tokens


def register(app: typer.Typer) -> None:
    app.add_typer(sae_app, name="sae")

    @sae_app.command("train")
    def train_cmd(
        model: str = common.MODEL_OPTION,
        site: str = typer.Option("mlp_act.3", "--site", help="resid_post.L, mlp_out.L, mlp_act.L (or attn_out.L)."),
        logit_space: bool = typer.Option(False, "--logit-space", help="Train on the site's direct logit update "
                                         "(vocab-wide: practical for small vocabularies only)."),
        tokens: str = typer.Option("2e6", "--tokens", help="Training tokens (2e6 style accepted)."),
        expansion: int = typer.Option(8, "--expansion", help="Latents per input dimension."),
        arch: str = typer.Option("topk", "--arch", help="topk or relu (L1)."),
        k: int = typer.Option(32, "--k", help="Active latents per token (topk)."),
        l1: float = typer.Option(5.0, "--l1", help="L1 coefficient (relu), in normalised-input units."),
        lr: float = typer.Option(4e-4, "--lr", help="Adam learning rate."),
        batch_size: int = typer.Option(4096, "--batch-size", help="Tokens per step."),
        checkpoints: int = typer.Option(10, "--checkpoints", help="Density checkpoints during training."),
        heldout: int = typer.Option(16384, "--heldout-tokens", help="Held-out tokens for density and evaluation."),
        threshold: float = typer.Option(1e-5, "--ultra-rare", help="Density below which a live feature is ultra-rare."),
        corpus: str = common.CORPUS_OPTION,
        store: Path = common.store_option("Train on this capture store's --site instead of running --model"),
        ctx: int = common.ctx_option(128, "Tokens per window (documents are split into windows of this length)"),
        stream: bool = typer.Option(None, "--stream/--in-memory", help="Recompute activations every epoch, or keep "
                                    "the first pass (default: keep it if it fits in 2 GiB)."),
        features: int = typer.Option(12, "--features", help="Features shown on the page."),
        seed: int = common.SEED_OPTION,
        aux_k_coefficient: float = typer.Option(1 / 32, "--aux-k-coefficient", help="Weight of the auxiliary-K "
                                                "loss that revives dead TopK latents (Gao et al. 2024); 0: off."),
        resample_dead: bool = typer.Option(False, "--resample-dead/--no-resample-dead", help="ReLU: resample dead "
                                           "latents (Bricken et al. 2023)."),
        dead_after: str = typer.Option(None, "--dead-after-tokens", help="Tokens without firing after which a "
                                       "latent is dead (default: min(1e7, tokens/10, --heldout-tokens))."),
        device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
        file_format: str = typer.Option("modscope", "--format", help="modscope or saelens (sae_weights.safetensors "
                                        "+ cfg.json, loadable by SAELens' SAE.load_from_disk)."),
        out: Path = typer.Option(..., "--out", help="Directory for the SAE (safetensors + JSON) and its page."),
        as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Train an SAE on a site (streamed from the model, or from a capture store) and write its page."""
        from modscope.capture import ActivationStore
        from modscope.sae.config import SAEConfig
        from modscope.sae.page import write_report
        from modscope.sae.run import report_for, train_on_model, train_on_store
        from modscope.sae.trainer import resolve_device

        if file_format not in ("modscope", "saelens"):
            raise ModscopeError(f"--format must be modscope or saelens, got '{file_format}'")
        target = resolve_device(device)
        cfg = SAEConfig(expansion=expansion, architecture=arch, k=k, l1_coefficient=l1, lr=lr, batch_size=batch_size,
                        tokens=parse_tokens(tokens), seed=seed, checkpoints=checkpoints, heldout_tokens=heldout,
                        ultra_rare_threshold=threshold, aux_k_coefficient=aux_k_coefficient,
                        resample_dead=resample_dead,
                        dead_after_tokens=parse_tokens(dead_after) if dead_after is not None else None)

        def progress(step: int, steps: int, log) -> None:
            if step % 100 == 1 or step == steps:
                console.print(f"step {step}/{steps}  mse {log.mse[-1]:.4g}  L0 {log.l0[-1]:.1f}")

        settings = {"model": model, "site": site, "logit_space": logit_space, "corpus": corpus, "ctx": ctx,
                    "store": str(store) if store else None, "device": str(target), **cfg.to_dict()}
        trained = windows = held = None
        if store is not None:
            if logit_space:
                raise ModscopeError("--logit-space needs the model's forward pass; drop --store")
            opened = ActivationStore.open(store)
            settings["rows"] = opened.rows_description()
            sae, held = train_on_store(opened, site, cfg, progress=progress, device=target)
        else:
            trained = cached_model(model)
            sae, windows = train_on_model(trained, site, load_corpus(corpus).texts, cfg, ctx=ctx,
                                          logit_space=logit_space, stream=stream, progress=progress, device=target)
        sae.save(out, format=file_format)
        report = report_for(sae, trained, windows, heldout=held, n_features=features)
        write_report(out, report, settings)
        emit(out, report.to_json(), as_json)

    @sae_app.command("inspect")
    def inspect_cmd(
        directory: Path = typer.Argument(..., help="Directory written by `modscope sae train`."),
        model: str = typer.Option(None, "--model", help="Model to read features through (default: the SAE's)."),
        corpus: str = common.CORPUS_OPTION,
        ctx: int = common.ctx_option(128, "Tokens per window (documents are split into windows of this length)"),
        features: int = typer.Option(12, "--features", help="Features shown on the page."),
        out: Path = typer.Option(None, "--out", help="Where to write the page (default: DIRECTORY)."),
        as_json: bool = common.JSON_OPTION,
    ) -> None:
        """Rebuild an SAE's page: density heat map, ultra-rare trends, logit tables, top contexts, spliced loss."""
        from modscope.sae.base import load_sae
        from modscope.sae.run import inspect_saved

        name = model or load_sae(directory).meta.get("model")
        if not name:
            raise ModscopeError("this SAE records no model; give --model")
        report = inspect_saved(directory, cached_model(name), load_corpus(corpus).texts, ctx=ctx, n_features=features,
                               out=out, settings={"directory": str(directory), "model": name, "corpus": corpus})
        emit(out or directory, report.to_json(), as_json)


def demo_steps() -> list[DemoStep]:
    """A small TopK SAE on the trained model's mlp_out.3, with its density history and feature tables."""

    def run(ctx: DemoContext, out_dir: Path) -> None:
        from modscope.sae.config import SAEConfig
        from modscope.sae.page import write_report
        from modscope.sae.run import report_for, train_on_model

        tokens, expansion, k = ctx.pick((16_384, 4, 16), (200_000, 8, 32), (2_000_000, 8, 32))
        cfg = SAEConfig(expansion=expansion, k=k, batch_size=ctx.pick(512, 2048, 4096), tokens=tokens,
                        lr=ctx.pick(2e-3, 1e-3, 4e-4), checkpoints=ctx.pick(4, 6, 10),
                        heldout_tokens=ctx.pick(2048, 8192, 32768))
        model = ctx.trained()
        sae, windows = train_on_model(model, "mlp_out.3", load_corpus("bundled").texts, cfg, ctx=128)
        sae.save(out_dir)
        report = report_for(sae, model, windows[:ctx.pick(4, 12, 24)], n_features=ctx.pick(6, 12, 16))
        write_report(out_dir, report, {"model": ctx.model, "site": "mlp_out.3", **cfg.to_dict()})

    return [DemoStep("sae", "Sparse autoencoder on mlp_out.3: density over training, logit weights", run)]
