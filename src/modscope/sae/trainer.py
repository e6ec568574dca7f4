"""``train``: the optimisation loop (Adam, warmup/decay schedule, decoder-norm constraint, dead-latent
tracking with aux-K / resampling, density checkpoints), on the CPU or a CUDA device.

Kept apart from the architectures: it only calls ``sae.training_step`` and the base-class constraint methods.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from modscope.errors import ModscopeError
from modscope.sae.base import SAE, make_sae
from modscope.sae.config import SAEConfig
from modscope.sae.dead import DeadLatentTracker, resample_dead_latents
from modscope.sae.log import TrainingLog
from modscope.sae.sources import ActivationSource, as_source

LOG_EVERY = 10
SMALL_STEP_FLOPS = 2e8  # below this a step is dominated by per-op overhead, where extra threads only spin


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'``: the first CUDA device when one is present, else the CPU; ``'cuda'`` without one is an error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModscopeError(f"device '{name}' was asked for but torch sees no CUDA device; use --device cpu or auto")
    if name.split(":")[0] not in DEVICES[1:]:
        raise ModscopeError(f"unknown device '{name}'; use one of {', '.join(DEVICES)}")
    return torch.device(name)


@contextmanager
def threads_for(cfg: SAEConfig, device: torch.device = torch.device("cpu")):
    """Run small problems on one thread: intra-op threads cost more than they give on tiny matrices."""
    previous = torch.get_num_threads()
    small = device.type == "cpu" and cfg.batch_size * cfg.d_in * cfg.n_latents < SMALL_STEP_FLOPS
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(previous)


def lr_factor(step: int, cfg: SAEConfig) -> float:
    """Learning-rate multiplier: linear warmup over the first steps, constant, linear decay to 0 at the end."""
    steps = cfg.steps
    warmup = int(cfg.lr_warmup_fraction * steps)
    decay = int(cfg.lr_decay_fraction * steps)
    if step < warmup:
        return (step + 1) / warmup
    if decay and step >= steps - decay:
        return (steps - step) / decay
    return 1.0


def input_scale(sample: torch.Tensor) -> float:
    """The scalar ``s`` with ``E ||x / s|| = sqrt(d_in)`` (SAELens' ``expected_average_only_in`` normalisation)."""
    mean_norm = float(sample.double().norm(dim=1).mean())
    return mean_norm / np.sqrt(sample.shape[1]) if mean_norm > 0 else 1.0


@torch.no_grad()
def heldout_stats(sae: SAE, heldout: torch.Tensor, chunk: int = 2048) -> tuple[np.ndarray, float]:
    """Firing counts of every latent on ``heldout`` and the fraction of its variance explained."""
    counts = np.zeros(sae.n_latents, dtype=np.int64)
    sq_err = 0.0
    for start in range(0, len(heldout), chunk):
        x = heldout[start:start + chunk].to(sae.W_dec.device)
        z = sae.encode(x)
        counts += (z > 0).sum(dim=0).cpu().numpy().astype(np.int64)
        sq_err += float((sae.decode(z) - x).double().pow(2).sum())
    total = float((heldout.double() - heldout.double().mean(dim=0)).pow(2).sum())
    return counts, 1.0 - sq_err / total if total > 0 else float("nan")


def checkpoint_steps(cfg: SAEConfig) -> list[int]:
    """Steps after which density is measured: evenly spaced, the last one being the final step."""
    n = min(cfg.checkpoints, cfg.steps)
    return sorted({int(round(cfg.steps * (i + 1) / n)) for i in range(n)})


def train(
    source: Any,
    cfg: SAEConfig,
    *,
    progress: Callable[[int, int, TrainingLog], None] | None = None,
    device: str | torch.device = "auto",
) -> SAE:
    """Train an SAE of ``cfg`` on ``source`` and return it (with ``sae.log`` holding the training log).

    Args:
        source: an array [n_rows, d_in], a ``(store, site)`` pair, or an ActivationSource (e.g.
            ``ModelSource(model, site, texts)`` to stream activations from a model without storing them).
        cfg: the SAE and its training settings; ``cfg.d_in`` may be left ``None``.
        progress: called as ``progress(step, steps, log)`` at every logged step.
        device: ``'auto'`` (CUDA when present), ``'cpu'`` or ``'cuda'``; the SAE, the batches and every tensor of
            the loop live there (batches are drawn on the CPU and moved).

    Returns:
        The trained SAE (on ``device``), in the source's units (input normalisation folded into the biases),
        decoder rows of unit norm. Its ``meta`` carries the source's provenance (model, site, logit space) and
        input scale.
    """
    torch.manual_seed(cfg.seed)
    target = resolve_device(device)
    src: ActivationSource = as_source(source, heldout_tokens=cfg.heldout_tokens)
    cfg = cfg.with_d_in(src.d_in)
    with threads_for(cfg, target):
        return _train(src, cfg, progress, target)


def _train(src: ActivationSource, cfg: SAEConfig, progress, device: torch.device) -> SAE:
    batches = (batch.to(device, non_blocking=True) for batch in src.batches(cfg.batch_size, cfg.seed))
    first = next(batches)
    scale = input_scale(first) if cfg.normalize_input else 1.0
    sae = make_sae(cfg, dict(src.meta)).to(device)
    with torch.no_grad():
        sae.b_dec.copy_((first / scale).mean(dim=0))
    heldout = src.heldout().to(device) / scale
    tracker = DeadLatentTracker(sae.n_latents, cfg.dead_window_tokens, device)
    window_steps = max(1, cfg.dead_window_tokens // cfg.batch_size)
    resample_until = cfg.steps - int(cfg.lr_decay_fraction * cfg.steps)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    log = TrainingLog(n_heldout=len(heldout), threshold=cfg.ultra_rare_threshold)
    optimiser = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: lr_factor(step, cfg))
    checkpoints = set(checkpoint_steps(cfg))
    started = time.perf_counter()
    for step, batch in zip(range(cfg.steps), itertools.chain([first], batches)):
        dead = tracker.dead()
        out = sae.training_step(batch / scale, dead)
        optimiser.zero_grad(set_to_none=True)
        out.loss.backward()
        sae.remove_parallel_gradient()
        optimiser.step()
        schedule.step()
        if cfg.decoder_norm == "unit":
            sae.normalize_decoder()
        if out.fired is not None:
            tracker.update(out.fired, len(batch))
        done = step + 1
        if cfg.resample_dead and sae.architecture == "relu" and done % window_steps == 0 and done < resample_until:
            dead = tracker.dead()
            n = resample_dead_latents(sae, batch / scale, dead, optimiser, generator)
            tracker.reset(dead)
            if n:
                log.resampled.append([done, n])
        if step % LOG_EVERY == 0 or done == cfg.steps:
            log.steps.append(done)
            log.tokens.append(done * cfg.batch_size)
            log.loss.append(float(out.loss.detach()))
            log.mse.append(float(out.mse.detach()))
            log.l0.append(float(out.l0))
            log.dead.append(int(tracker.dead().sum()))
            log.aux_loss.append(float(out.aux.detach()) if out.aux is not None else 0.0)
            if progress is not None:
                progress(done, cfg.steps, log)
        if done in checkpoints:
            counts, fve = heldout_stats(sae, heldout)
            log.checkpoint_tokens.append(done * cfg.batch_size)
            log.checkpoint_counts.append(counts.tolist())
            log.checkpoint_fve.append(fve)
    seconds = time.perf_counter() - started
    log = replace(log, seconds=seconds, tokens_per_second=cfg.steps * cfg.batch_size / max(seconds, 1e-9))
    if cfg.decoder_norm == "free":
        sae.fold_decoder_norms()
    sae.fold_input_scale(scale)
    sae.log = log
    return sae
