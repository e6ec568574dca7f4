"""Counterfactual memorization (Zhang et al. 2021): how much worse a model does on an example left out of training."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from modscope.errors import ModscopeError
from modscope.figures import NULL, TRAINED, TWIN, axes
from modscope.results import Result
from modscope.training.store import save_npz_atomic

GROUPS = ("flipped", "atypical", "duplicated", "clean")


@dataclass(frozen=True)
class Memorization(Result):
    """Per-example counterfactual memorization from M subset models.

    mem_i = mean_{m: i in S_m} score_m(i) - mean_{m: i not in S_m} score_m(i) (Zhang et al. 2021, eq. 1), with
    score = correctness (0/1) and, separately, -loss (nats). The 95% CI is mem ± 1.96 se, se^2 = var_in / n_in +
    var_out / n_out over the models.

    Fields:
        mem: [n] (accuracy units), mem_loss: [n] (nats), ci_low/ci_high: [n], n_in / n_out: [n] models.
        groups: [n] planted group names. group_means: group -> mean mem. curve: models used -> mean |mem_m -
        mem_M| over examples (how many subset models the score needs). null_mean / null_sd: mem with the in/out
        masks permuted across models (no memorization), pooled over examples.
    """

    mem: np.ndarray
    mem_loss: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray
    groups: list
    group_means: dict
    curve: dict
    null_mean: float
    null_sd: float
    shuffled_group_means: dict = field(default_factory=dict)

    _frame_columns = ("mem", "mem_loss", "ci_low", "ci_high", "n_in", "n_out", "groups")

    def plot(self, ax=None):
        """Distribution of scores per planted group, the permutation null marked."""
        ax = axes(ax)
        bins = np.linspace(-1, 1, 41)
        groups = np.asarray(self.groups)
        for name, colour in zip(GROUPS, (TWIN, "#6a3d9a", "#2ca02c", TRAINED)):
            part = self.mem[groups == name]
            if len(part):
                ax.hist(part, bins=bins, alpha=0.6, color=colour, density=True,
                        label=f"{name} (n={len(part)}, mean {part.mean():.2f})")
        ax.axvspan(self.null_mean - 2 * self.null_sd, self.null_mean + 2 * self.null_sd, color=NULL, alpha=0.3,
                   label="mask-permutation null ± 2 sd")
        ax.set(xlabel="counterfactual memorization (accuracy in − out)", ylabel="density")
        ax.legend(fontsize=7)
        return ax


def counterfactual_memorization(masks: np.ndarray, correct: np.ndarray, losses: np.ndarray, *, groups=None,
                                seed: int = 0) -> Memorization:
    """Memorization scores from ``masks`` [M, n] (True: example in model m's training half), ``correct`` [M, n]
    (0/1) and ``losses`` [M, n] (nats) of every model on every example."""
    masks, correct, losses = np.asarray(masks, bool), np.asarray(correct, float), np.asarray(losses, float)
    if masks.ndim != 2 or masks.shape != correct.shape or masks.shape != losses.shape or len(masks) < 2:
        raise ModscopeError(f"need masks, correct and losses of one shape [models >= 2, examples]; got "
                            f"{masks.shape}, {correct.shape}, {losses.shape}")
    mem, n_in, n_out = difference(masks, correct)
    var_in = variance(masks, correct)
    var_out = variance(~masks, correct)
    se = np.sqrt(var_in / np.maximum(n_in, 1) + var_out / np.maximum(n_out, 1))
    rng = np.random.default_rng(seed)
    permuted = np.stack([rng.permutation(masks[:, j]) for j in range(masks.shape[1])], axis=1)
    null = difference(permuted, correct)[0]
    curve = {}
    for m in sorted({2, 4, 8, 16, 32, 64, len(masks)} - {x for x in (4, 8, 16, 32, 64) if x > len(masks)}):
        partial = difference(masks[:m], correct[:m])[0]
        curve[m] = float(np.nanmean(np.abs(partial - mem)))
    groups = list(groups) if groups is not None else ["clean"] * masks.shape[1]
    names = np.asarray(groups)
    group_means = {g: float(np.nanmean(mem[names == g])) for g in GROUPS if (names == g).any()}
    return Memorization(mem=mem, mem_loss=difference(masks, -losses)[0], ci_low=mem - 1.96 * se,
                        ci_high=mem + 1.96 * se, n_in=n_in, n_out=n_out, groups=groups, group_means=group_means,
                        curve=curve, null_mean=float(np.nanmean(null)), null_sd=float(np.nanstd(null)))


def difference(masks: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_in, n_out = masks.sum(0), (~masks).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = np.where(n_in > 0, (score * masks).sum(0) / n_in, np.nan)
        mean_out = np.where(n_out > 0, (score * ~masks).sum(0) / n_out, np.nan)
    return mean_in - mean_out, n_in, n_out


def variance(masks: np.ndarray, score: np.ndarray) -> np.ndarray:
    count = masks.sum(0)
    mean = (score * masks).sum(0) / np.maximum(count, 1)
    return ((score - mean) ** 2 * masks).sum(0) / np.maximum(count - 1, 1)


# ---- the planted data set and the subset models ----

def planted_pool(n: int = 2000, *, flipped: float = 0.02, atypical: float = 0.02, duplicated: float = 0.02,
                 shuffle_labels: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """``n`` MNIST training images with planted groups: labels flipped to another class, atypical (inverted
    images, 1 - x, true label), and duplicated (each followed by one exact copy, both in the pool).

    Returns:
        (images float32 [n + copies, 784], labels int64, groups).
    """
    from modscope.models.mnist import load_mnist

    images, labels = load_mnist("train")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), n, replace=False)
    x, y = images[pick].copy(), labels[pick].copy()
    groups = np.array(["clean"] * n, dtype=object)
    order = rng.permutation(n)
    counts = [int(round(share * n)) for share in (flipped, atypical, duplicated)]
    flip, odd, dup = np.split(order[:sum(counts)], np.cumsum(counts)[:2])
    y[flip] = (y[flip] + rng.integers(1, 10, len(flip))) % 10
    x[odd] = 1.0 - x[odd]
    groups[flip], groups[odd], groups[dup] = "flipped", "atypical", "duplicated"
    x, y, groups = np.concatenate([x, x[dup]]), np.concatenate([y, y[dup]]), list(groups) + ["duplicated"] * len(dup)
    if shuffle_labels:
        y = rng.permutation(y)
    return x, y, groups


def train_one(index: int, images: np.ndarray, labels: np.ndarray, *, steps: int, width: int, seed: int,
              out: Path | None) -> dict:
    """Train subset model ``index`` on its seeded random half (``steps`` Adam steps on batches of 64, a fixed
    budget) and score it on every example (one thread)."""
    import torch

    torch.set_num_threads(1)
    n = len(labels)
    rng = np.random.default_rng([seed, index])
    mask = np.zeros(n, bool)
    mask[rng.choice(n, n // 2, replace=False)] = True
    torch.manual_seed(seed * 100003 + index)
    model = torch.nn.Sequential(torch.nn.Linear(784, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    train = np.flatnonzero(mask)
    for _ in range(steps):
        batch = rng.choice(train, min(64, len(train)), replace=False)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
    with torch.no_grad():
        logits = model(x)
        result = {"mask": mask, "correct": (logits.argmax(-1) == y).numpy(),
                  "loss": torch.nn.functional.cross_entropy(logits, y, reduction="none").numpy()}
    if out is not None:
        save_npz_atomic(out / f"model_{index:04d}.npz", **result)
    return result


def train_subset_models(images: np.ndarray, labels: np.ndarray, *, models: int = 16, steps: int = 400,
                        width: int = 128, workers: int = 2, seed: int = 0, out: Path | None = None,
                        client=None) -> list[dict]:
    """Train ``models`` subset models in worker processes (or on a Dask ``client``); with ``out``, each finished
    model is a file ``model_XXXX.npz`` and a rerun trains only the missing ones (resumable)."""
    if models < 2:
        raise ModscopeError(f"counterfactual memorization needs >= 2 subset models, got {models}")
    done: dict[int, dict] = {}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for index in range(models):
            path = out / f"model_{index:04d}.npz"
            if path.is_file():
                with np.load(path) as data:
                    done[index] = {k: data[k] for k in data.files}
    todo = [i for i in range(models) if i not in done]
    kw = {"steps": steps, "width": width, "seed": seed, "out": out}
    if client is not None:
        futures = [client.submit(train_one, i, images, labels, pure=False, **kw) for i in todo]
        done.update(zip(todo, client.gather(futures)))
    elif workers <= 1 or len(todo) <= 1:
        done.update({i: train_one(i, images, labels, **kw) for i in todo})
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {i: pool.submit(train_one, i, images, labels, **kw) for i in todo}
            done.update({i: f.result() for i, f in futures.items()})
    return [done[i] for i in range(models)]


def memorization_study(n: int = 2000, *, models: int = 16, steps: int = 400, width: int = 128, workers: int = 2,
                       shuffled_null: bool = True, seed: int = 0, out: Path | None = None,
                       client=None) -> Memorization:
    """Planted pool -> subset models -> scores; ``shuffled_null`` repeats it with shuffled labels (the null)."""
    def scores(shuffle_labels: bool, folder: str) -> Memorization:
        images, labels, groups = planted_pool(n, seed=seed, shuffle_labels=shuffle_labels)
        runs = train_subset_models(images, labels, models=models, steps=steps, width=width, workers=workers,
                                   seed=seed, out=None if out is None else Path(out) / folder, client=client)
        return counterfactual_memorization(*(np.stack([r[key] for r in runs]) for key in ("mask", "correct", "loss")),
                                           groups=groups, seed=seed)

    result = scores(False, "models")
    if not shuffled_null:
        return result
    return replace(result, shuffled_group_means=scores(True, "shuffled").group_means)


def group_verdict(result: Memorization) -> str:
    """Each planted group against the clean examples: a difference counts only beyond 2 two-sample standard errors."""
    groups, mem = np.asarray(result.groups), np.asarray(result.mem, float)
    clean = mem[(groups == "clean") & np.isfinite(mem)]
    if len(clean) < 2:
        return "No clean examples to compare the planted groups with."
    expected = {"flipped": 1, "atypical": 1, "duplicated": -1}
    parts, ok = [], True
    for name, sign in expected.items():
        part = mem[(groups == name) & np.isfinite(mem)]
        if len(part) < 2:
            continue
        diff = part.mean() - clean.mean()
        se = float(np.sqrt(part.var(ddof=1) / len(part) + clean.var(ddof=1) / len(clean)))
        word = "above" if diff > 2 * se else "below" if diff < -2 * se else "not distinguishable from"
        ok &= word == ("above" if sign > 0 else "below")
        parts.append(f"{name} {word} clean ({diff:+.3f} ± {se:.3f} se, n={len(part)})")
    lead = "The score finds every planted group" if ok else "The score finds only part of what was planted"
    return f"{lead}: " + "; ".join(parts) + " (a difference counts beyond 2 se)."


def memorization_report(n: int = 2000, *, models: int = 16, steps: int = 400, width: int = 128, workers: int = 2,
                        shuffled_null: bool = True, seed: int = 0, out: Path | None = None, client=None) -> dict:
    """Seed 002 / Zhang et al. (2021) on MNIST with planted groups: page with scores, curve and images."""
    from modscope.figures import grid
    from modscope.report import write_probe

    result = memorization_study(n, models=models, steps=steps, width=width, workers=workers,
                                shuffled_null=shuffled_null, seed=seed, out=out, client=client)
    means, shuffled = result.group_means, result.shuffled_group_means
    headline = [f"mean memorization (accuracy in − out, {models} models on random halves of {len(result.mem)} "
                f"examples): " + ", ".join(f"{g} {v:.3f}" for g, v in means.items())
                + f"; mask-permutation null {result.null_mean:.3f} ± {result.null_sd:.3f} per example."]
    if shuffled:
        headline.append("label-shuffled null run: " + ", ".join(f"{g} {v:.3f}" for g, v in shuffled.items())
                        + " (every example must be memorized, so the planted groups no longer stand out).")
    headline.append("mean |score from m models − score from all| : "
                    + ", ".join(f"m={m}: {v:.3f}" for m, v in result.curve.items()) + ".")
    verdict = group_verdict(result)
    figs = {"scores": result.plot().figure}
    ax = axes(None)
    ax.plot(list(result.curve), list(result.curve.values()), "-o", color=TRAINED)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="subset models used", ylabel="mean |mem_m − mem_all| (accuracy)")
    figs["models_needed"] = ax.figure
    images, labels, _ = planted_pool(n, seed=seed)
    order = np.argsort(-np.nan_to_num(result.mem, nan=-9), kind="stable")
    fig, panels = grid(16, cols=8, size=1.1)
    for panel, index in zip(panels, list(order[:8]) + list(order[-8:])):
        panel.imshow(images[index].reshape(28, 28), cmap="gray_r")
        panel.set_title(f"{result.groups[index][:4]} y={labels[index]} {result.mem[index]:.2f}", fontsize=6)
        panel.axis("off")
    fig.suptitle("most (top row) and least memorized examples", fontsize=8)
    figs["examples"] = fig
    payload = {"probe": "memorization", "headline": headline, "verdict": verdict, "result": result.to_json()}
    if out is not None:
        write_probe(out, probe="memorization", title="Counterfactual memorization on MNIST",
                    question="How much worse does a model do on an example when it is left out of training, and do "
                             "planted mislabelled, atypical and duplicated examples score as they should?",
                    result=result, headline=headline, verdict=verdict, figures=figs,
                    settings={"n": n, "models": models, "steps": steps, "width": width, "seed": seed,
                              "shuffled_null": shuffled_null})
    return payload
