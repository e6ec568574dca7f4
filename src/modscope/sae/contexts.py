"""Top-activating contexts: for each feature, the tokens of a corpus on which it fires hardest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from modscope.results import Result


def top_activations(code_chunks: Iterable[np.ndarray | torch.Tensor], n_top: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_top`` largest activations of every latent over a stream of code chunks [rows, n_latents].

    Returns:
        ``(values, rows)``, each [n_top, n_latents], values descending; ``rows`` index the concatenated stream
        (-1 where fewer than ``n_top`` rows were seen).
    """
    best_vals, best_rows, offset = None, None, 0
    for chunk in code_chunks:
        z = torch.as_tensor(np.asarray(chunk, dtype=np.float32))
        rows = torch.arange(offset, offset + len(z)).unsqueeze(1).expand_as(z)
        offset += len(z)
        if best_vals is not None:
            z, rows = torch.cat([best_vals, z]), torch.cat([best_rows, rows])
        best_vals, pick = z.topk(min(n_top, len(z)), dim=0)
        best_rows = rows.gather(0, pick)
    if best_vals is None:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64)
    pad = ((0, n_top - len(best_vals)), (0, 0))
    return np.pad(best_vals.numpy(), pad), np.pad(best_rows.numpy(), pad, constant_values=-1)


@dataclass(frozen=True)
class FeatureContexts(Result):
    """For each feature, its top-activating tokens with the text around them.

    Attributes:
        features: latent indices [n_features].
        examples: per feature, a list of dicts ``{activation, window, position, token, context}`` where
            ``context`` is the text before the token, the token in ``[[...]]``, and a little after it;
            activations are in the SAE's code units (zero-activation rows left out).
        n_tokens: tokens scanned.
    """

    features: np.ndarray
    examples: list
    n_tokens: int

    def to_frame(self, per_feature: int = 5) -> pd.DataFrame:
        rows = [{"feature": int(f), "activation": e["activation"], "context": e["context"]}
                for f, ex in zip(self.features, self.examples) for e in ex[:per_feature]]
        return pd.DataFrame(rows, columns=["feature", "activation", "context"])

    def plot(self, ax=None):
        from modscope.figures import TRAINED, axes, label

        ax = axes(ax)
        tops = [ex[0]["activation"] if ex else 0.0 for ex in self.examples]
        ax.bar(range(len(tops)), tops, color=TRAINED)
        ax.set_xticks(range(len(tops)), [str(int(f)) for f in self.features], rotation=90)
        label(ax, x="feature", y="top activation")
        return ax


@torch.inference_mode()
def top_contexts(model, sae, windows: torch.Tensor, *, features=None, n_top: int = 8, batch: int = 8,
                 before: int = 12, after: int = 4) -> FeatureContexts:
    """Top-activating contexts of ``features`` (default all) of ``sae`` over token ``windows`` [n, ctx].

    The site (or its logit-space image, ``sae.meta['logit_space']``) is recomputed from ``model``.
    """
    from modscope.sae.logit_map import logit_map
    from modscope.sae.sources import site_activations

    windows = torch.as_tensor(np.asarray(windows), dtype=torch.long)
    site = sae.meta["site"]
    lmap = logit_map(model, site) if sae.meta.get("logit_space") else None
    features = np.arange(sae.n_latents) if features is None else np.asarray(features)

    def chunks():
        for i in range(0, len(windows), batch):
            acts = site_activations(model, site, windows[i:i + batch], lmap, batch=batch).to(sae.W_dec.device)
            yield sae.encode(acts)[:, features].cpu()

    def example(value: float, row: int) -> dict:
        w, pos = divmod(int(row), windows.shape[1])
        ids, decode = windows[w].tolist(), model.tokenizer.decode
        token = decode([ids[pos]])
        context = f"{decode(ids[max(0, pos - before):pos])}[[{token}]]{decode(ids[pos + 1:pos + 1 + after])}"
        return {"activation": float(value), "window": w, "position": pos, "token": token,
                "context": context.replace("\n", "\\n")}

    values, rows = top_activations(chunks(), n_top)
    examples = [[example(value, row) for value, row in zip(values[:, j], rows[:, j]) if not (row < 0 or value <= 0)]
                for j in range(len(features))]
    return FeatureContexts(features, examples, int(windows.numel()))
