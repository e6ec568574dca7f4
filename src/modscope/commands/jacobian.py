"""CLI commands for the jacobian capability: ``modscope jacobian`` (sublayer spectra, ranks per layer, paths)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from modscope.commands import common
from modscope.commands.common import DemoContext, DemoStep, emit, load_corpus, models_with_twin, parse_ints, positive
from modscope.errors import ModscopeError
from modscope.jacobian.figures import block_figures, path_figures
from modscope.report.numbers import plural

QUESTION = ("Is there a tight pass: do attention/MLP sublayers (no residual) or the end-to-end path squeeze the "
            "residual stream through fewer directions than its width, above a stated float64 noise floor?")


def default_text(corpus: str = "bundled") -> str:
    """The documents of a corpus joined: enough tokens for any --token-counts or --dst-pos up to a few thousand."""
    return "\n\n".join(load_corpus(corpus).texts)


def parse_path(path: str) -> tuple[str, str]:
    src, sep, dst = path.partition(":")
    if not sep or not src.strip() or not dst.strip():
        raise ModscopeError(f"--path must be SRC:DST, e.g. resid_pre.0:resid_post.29, got '{path}'")
    return src.strip(), dst.strip()


def block_report(models: list, text: str, *, layer: int, parts: list[str], tokens: list[int], k: int | None,
                 method: str, floor: float | None, residual: bool, ranks: bool, rank_tokens: int,
                 rank_parts: list[str] | None = None) -> dict:
    """Run the sublayer probes; returns {"spectra": [...], "ranks": [...], "comparisons": [...]} of results
    (a comparison pairs the first model's spectrum with each other model's spectrum of the same part and tokens)."""
    from modscope.jacobian.probes import block_spectrum, layer_ranks

    spectra = [block_spectrum(m, text, layer=layer, part=part, residual=residual, tokens=t, k=k, method=method,
                              floor=floor) for m in models for part in parts for t in tokens]
    per_layer = [layer_ranks(m, text, part=part, tokens=rank_tokens, residual=residual, floor=floor)
                 for m in models for part in (rank_parts or parts)] if ranks else []
    return {"spectra": spectra, "ranks": per_layer, "comparisons": twin_comparisons(spectra)}


def twin_comparisons(spectra: list) -> list:
    """Trained (the first model) against each other model, for every part and token count both measured."""
    from modscope.jacobian.rank import compare_ranks

    if not spectra:
        return []
    trained = spectra[0].model
    mine = {(r.part, r.tokens, r.residual, r.layer): r for r in spectra if r.model == trained}
    return [compare_ranks(f"{r.model} vs {trained} {r.label}", mine[key].spectrum, r.spectrum)
            for r in spectra if r.model != trained and (key := (r.part, r.tokens, r.residual, r.layer)) in mine]


def rank_sentence(s) -> str:
    """One spectrum's rank with its kind, floors and gap, as the headline prints it."""
    if s.rank_is_lower_bound:
        return (f"rank {s.rank_text} of {s.full_size}: a lower bound (only the top {len(s.singular_values)} values "
                f"were computed, by {s.method}; all are above the floor {s.noise_floor:.2g})")
    gap = "" if np.isnan(s.rank_gap) else f", gap σ_r/σ_r+1 = {s.rank_gap:.3g}"
    return (f"rank {s.rank_text} of {s.full_size} ({s.rank_kind}) above the floor {s.noise_floor:.2g} "
            f"({s.floor_rule}); {s.float32_rank_text} above the float32 threshold ({s.float32_floor_rule}){gap}")


def block_headline(found: dict) -> tuple[list[str], str]:
    lines = [f"{r.model} {r.label}: {rank_sentence(r.spectrum)}, σ₁ = {r.spectrum.sigma_max:.3g}, method "
             f"{r.spectrum.method}, part reproduces the model to {r.reproduction_error:.1e}" for r in found["spectra"]]
    for r in found["ranks"]:
        lowest = int(r.ranks.argmin())
        robust = "" if r.float32_ranks is None else f" ({r.float32_ranks[lowest]} above the float32 threshold)"
        lines.append(f"{r.model} {r.part} over {plural(len(r.layers), 'layer')} at {r.tokens} tokens: lowest rank "
                     f"{r.rank_prefix}{r.ranks[lowest]}{robust} of {r.size} at layer {r.layers[lowest]}")
    lines += [f"{c.label}: {'TIGHT PASS' if c.tight_pass else 'no tight pass'}: {c.reason}"
              for c in found.get("comparisons", [])]
    return lines, block_verdict(found)


def block_verdict(found: dict) -> str:
    """Only exact ranks can lose directions; a tight pass needs the trained rank below the twin's float32 band."""
    trained = found["spectra"][0].model
    mine = [r for r in found["spectra"] if r.model == trained]
    exact = [r for r in mine if r.spectrum.rank_kind == "exact"]
    bounds = [r for r in mine if r.spectrum.rank_is_lower_bound]
    comparisons = {c.label.split(" vs ", 1)[1]: c for c in found.get("comparisons", [])}
    tight = [c for c in comparisons.values() if c.tight_pass]
    deficient = [r for r in exact if r.spectrum.rank < r.spectrum.full_size]
    if tight:
        c = min(tight, key=lambda c: c.trained_rank / c.size)
        verdict = f"Tight pass at {c.label.split(' vs ', 1)[1]}: {c.reason}."
    elif deficient:
        r = min(deficient, key=lambda r: r.spectrum.rank / r.spectrum.full_size)
        s, c = r.spectrum, comparisons.get(f"{r.model} {r.label}")
        gap = "" if np.isnan(s.rank_gap) else f", gap {s.rank_gap:.3g}"
        verdict = (f"Narrowest exact rank: {r.model} {r.label} keeps {s.rank} of {s.full_size} directions above the "
                   f"float64 floor ({s.float32_rank} above the float32 threshold{gap}), i.e. loses "
                   f"{plural(s.full_size - s.rank, 'direction')}; "
                   + (f"not a tight pass: {c.reason}." if c else "no twin measured, so not called a tight pass."))
    elif exact:
        verdict = "No rank deficiency: every exact Jacobian measured is full rank above the float64 noise floor."
    else:
        verdict = "No exact rank was measured."
    if bounds:
        verdict += (f" {plural(len(bounds), 'top-k result')} ({', '.join(r.label for r in bounds)}) "
                    f"{'gives' if len(bounds) == 1 else 'give'} only lower bounds (rank ≥ k) and "
                    f"{'says' if len(bounds) == 1 else 'say'} nothing about lost directions.")
    return verdict


def path_report(models: list, text: str, *, src: str, dst: str | None, src_pos: int, dst_pos: list[int],
                k: int | None, method: str, floor: float | None, covariance: bool, cov_k: int, max_rows: int) -> dict:
    from modscope.jacobian.compare import path_vs_covariance
    from modscope.jacobian.probes import path_spectrum

    paths = [path_spectrum(m, text, src=src, dst=dst, src_pos=src_pos, dst_pos=j, k=k, method=method, floor=floor)
             for m in models for j in dst_pos]
    alignments = []
    if covariance:
        source = load_corpus("bundled")  # a Corpus: max_rows are drawn balanced over its categories
        alignments = [path_vs_covariance(m, text, source, src=src, dst=dst, src_pos=src_pos, dst_pos=dst_pos[0],
                                         k=cov_k, max_rows=max_rows) for m in models]
    return {"paths": paths, "alignments": alignments}


def path_headline(found: dict) -> tuple[list[str], str]:
    lines = [f"{r.model} {r.label}: {rank_sentence(r.spectrum)}, σ₁ = {r.spectrum.sigma_max:.3g}, σ₁/σ_median = "
             f"{r.spectrum.sigma_max / max(float(sv[len(sv) // 2]), 1e-300):.3g}"
             for r in found["paths"] for sv in [r.spectrum.singular_values]]
    lines += [f"{a.model}: top-{a.k} Jacobian input directions vs top-{a.k} covariance eigenvectors: mean cos² "
              f"{a.mean_cos2:.3f} vs random-subspace null {a.null_mean_cos2:.3f} ± {a.null_sd_cos2:.3f} (z = {a.z:.1f})"
              for a in found["alignments"]]
    first = found["paths"][0]
    s = first.spectrum
    survive = (f"at least {s.rank} of {s.full_size} directions survive (top-{len(s.singular_values)} lower bound)"
               if s.rank_is_lower_bound else f"{s.rank_text} of {plural(s.full_size, 'direction')} survive")
    verdict = (f"{first.model} {first.label} (one token pair, one text): {survive} the path above the float64 floor"
               f" ({s.float32_rank_text} above the float32 threshold).")
    if found["alignments"]:
        a = found["alignments"][0]
        agree = "agree with" if a.z > 3 else "do not beat a random subspace against"
        verdict += (f" Its top-{a.k} sensitive directions {agree} the top variance directions (mean cos² "
                    f"{a.mean_cos2:.3f} vs {a.null_mean_cos2:.3f} ± {a.null_sd_cos2:.3f} for random {a.k}-subspaces, "
                    f"z = {a.z:.1f}; covariance over {a.rows:,} rows).")
    return lines, verdict


def to_json(found: dict) -> dict:
    return {key: [r.to_json() for r in values] for key, values in found.items()}


def register(app: typer.Typer) -> None:
    """Add this capability's commands to ``app``."""

    @app.command("jacobian")
    def jacobian_command(
        model: str = common.MODEL_OPTION,
        layer: int = typer.Option(1, "--layer", help="Block of the sublayer (negative counts from the end)."),
        part: str = typer.Option("mlp", "--part", help="mlp, attn, block, or several comma-separated."),
        token_counts: str = typer.Option("2,34", "--token-counts", help="Token counts, comma-separated, one "
                                         "spectrum each (J is tokens·d square)."),
        residual: bool = typer.Option(False, "--residual", help="Add the identity (residual) path back."),
        k: int = typer.Option(None, "--k", help="Only the top-k singular values (lanczos for big J)."),
        method: str = typer.Option("auto", "--method", help="auto, exact, tokenwise (mlp), lanczos, slq."),
        floor: float = typer.Option(None, "--floor", help="Absolute noise floor (default max(n)·eps64·σ₁)."),
        ranks: bool = typer.Option(False, "--ranks", help="Also the rank at every layer (where is the tight pass?)."),
        rank_tokens: int = typer.Option(8, "--rank-tokens", help="Tokens for --ranks."),
        path: str = typer.Option(None, "--path", help="End-to-end SRC:DST, e.g. resid_pre.0:resid_post.29."),
        src_pos: int = typer.Option(0, "--src-pos", help="Source token of --path."),
        dst_pos: str = typer.Option(None, "--dst-pos", help="Destination token(s) of --path (default src-pos)."),
        covariance: bool = typer.Option(False, "--covariance", help="With --path: principal angles vs the source "
                                        "site's covariance over the bundled corpus."),
        cov_k: int = typer.Option(16, "--cov-k", help="Subspace dimension for --covariance."),
        max_rows: int = typer.Option(20000, "--max-rows", help="Covariance rows for --covariance."),
        twin: str = common.TWIN_OPTION, twin_seed: int = common.TWIN_SEED_OPTION,
        text: str = typer.Option(None, "--text", help="Input text (default: the bundled corpus, joined)."),
        out: Path = common.OUT_OPTION,
        as_json: bool = common.JSON_OPTION,
        tokens: str | None = common.old_spelling("--tokens"),
    ) -> None:
        """Singular values and rank of sublayer or end-to-end Jacobians, with a stated noise floor (a tight pass is
        called only against the twin's float32 band, hence --twin random by default)."""
        token_counts = common.renamed(token_counts, tokens, "jacobian --tokens", "--token-counts")
        for value, what in ((k, "--k"), (rank_tokens, "--rank-tokens"), (cov_k, "--cov-k"), (max_rows, "--max-rows")):
            positive(value, what)
        settings = {"model": model, "twin": twin, "layer": layer, "part": part, "tokens": token_counts, "k": k,
                    "method": method, "floor": floor, "residual": residual, "path": path, "src_pos": src_pos,
                    "dst_pos": dst_pos}
        text = text or default_text()
        models = models_with_twin(model, twin, twin_seed)
        if path:
            src, dst = parse_path(path)
            found = path_report(models, text, src=src, dst=dst, src_pos=src_pos,
                                dst_pos=parse_ints(dst_pos, "--dst-pos") if dst_pos else [src_pos], k=k,
                                method=method, floor=floor, covariance=covariance, cov_k=cov_k, max_rows=max_rows)
            figures_of, headline_of, title = path_figures, path_headline, f"Path Jacobian {path}"
        else:
            counts = parse_ints(token_counts, "--token-counts")
            found = block_report(models, text, layer=layer, parts=common.parse_csv(part), tokens=counts, k=k,
                                 method=method, floor=floor, residual=residual, ranks=ranks, rank_tokens=rank_tokens)
            figures_of, headline_of, title = block_figures, block_headline, f"Sublayer Jacobians, layer {layer}"
        write_report(out, found, figures_of, headline_of, title, settings)
        emit(out, to_json(found), as_json)


def write_report(out: Path | None, found: dict, figures_of, headline_of, title: str, settings: dict) -> None:
    if out is None:
        return
    from modscope.report import write_probe

    headline, verdict = headline_of(found)
    samples = [a.sample for a in found.get("alignments", []) if getattr(a, "sample", None)]
    if samples:  # the covariance rows: what they are goes into the settings and so into the verdict
        settings = {**settings, "rows": samples[0]}
    write_probe(out, probe="jacobian", title=title, question=QUESTION, result=to_json(found), headline=headline,
                verdict=verdict, figures=figures_of(found), settings=settings)


def demo_blocks(ctx: DemoContext) -> tuple[dict, int | None]:
    """The demo's sublayer results: layer-1 MLP and attention at the size's token counts (attention at 34 tokens
    is a top-k lower bound), the exact attention rank at the most tokens the size affords, MLP rank per layer."""
    text = default_text()
    models = [ctx.trained(), ctx.twin()]
    found = block_report(models, text, layer=1, parts=["mlp", "attn"], tokens=ctx.pick([2, 8], [2, 34], [2, 34, 128]),
                         k=ctx.pick(32, 64, 64), method="auto", floor=None, residual=False, ranks=True,
                         rank_tokens=ctx.pick(2, 2, 34), rank_parts=["mlp"])
    # the exact attention spectrum is a dense (T·d)² SVD, O(T³): SmolLM2 took 184 s at 10 tokens (one model), and
    # 163 s for trained + twin at 4 tokens on 2 cores shared with other jobs (~12 s each when idle, by T³)
    exact_tokens = ctx.pick(None, 3, 10)
    if exact_tokens:
        exact = block_report(models, text, layer=1, parts=["attn"], tokens=[exact_tokens], k=None, method="exact",
                             floor=None, residual=False, ranks=False, rank_tokens=exact_tokens)
        found["spectra"] = found["spectra"] + exact["spectra"]
        found["comparisons"] = twin_comparisons(found["spectra"])
    return found, exact_tokens


def run_demo(ctx: DemoContext, out_dir: Path) -> None:
    """Layer-1 MLP and attention spectra at 2 and 34 tokens (attention at 34: a top-k lower bound), the exact
    attention rank at the most tokens the size affords, MLP rank per layer, and seed 000's path question."""
    found, exact_tokens = demo_blocks(ctx)
    write_report(out_dir / "jacobian_blocks", found, block_figures, block_headline,
                 "Sublayer Jacobians: where is the tight pass?",
                 {"layer": 1, "size": ctx.size, "exact_attention_tokens": exact_tokens})
    last = ctx.trained().n_layers - 1
    src_pos = ctx.pick(8, 64, 100)
    paths = path_report([ctx.trained(), ctx.twin()], default_text(), src="resid_pre.0", dst=f"resid_post.{last}",
                        src_pos=src_pos, dst_pos=[src_pos, src_pos + 2], k=None, method="auto", floor=None,
                        covariance=ctx.size != "quick", cov_k=16, max_rows=ctx.pick(2000, 4000, 20000))
    write_report(out_dir / "jacobian_path", paths, path_figures, path_headline,
                 f"Path Jacobian resid_pre.0 → resid_post.{last}", {"src_pos": src_pos, "size": ctx.size})


def demo_steps() -> list:
    """This capability's steps of `modscope demo` (see modscope.commands.common.DemoStep)."""
    return [DemoStep("jacobian", "Jacobian spectra: sublayers, ranks per layer, end-to-end path", run_demo)]
