"""Feature logit weights: each SAE latent's decoder direction read as a logit update (the tokens it promotes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from modscope.errors import ModscopeError
from modscope.results import Result

# latents whose [block, vocab] logit weights are formed at once
LATENT_BLOCK = 256


@dataclass(frozen=True)
class FeatureLogits(Result):
    """The tokens each feature's decoder direction promotes and suppresses most through the direct path.

    Attributes:
        features: latent indices [n_features].
        promoted_ids / promoted: token ids and logit weights (logits per unit activation, at frozen scale
            ``scale``) of the ``top`` most promoted tokens [n_features, top], largest first.
        suppressed_ids / suppressed: the same for the most suppressed tokens, most negative first.
        promoted_tokens / suppressed_tokens: the decoded token strings.
        scale: the frozen final-norm scale used (1: per unit of normalised residual; ranks do not depend on it).
    """

    features: np.ndarray
    promoted_ids: np.ndarray
    promoted: np.ndarray
    suppressed_ids: np.ndarray
    suppressed: np.ndarray
    promoted_tokens: list
    suppressed_tokens: list
    scale: float

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: its top promoted and suppressed tokens with their logit weights."""
        def listed(tokens, weights) -> str:
            return "  ".join(f"{t!r} {w:+.2f}" for t, w in zip(tokens, weights))

        return pd.DataFrame([{"feature": int(feature), "promoted": listed(self.promoted_tokens[i], self.promoted[i]),
                              "suppressed": listed(self.suppressed_tokens[i], self.suppressed[i])}
                             for i, feature in enumerate(self.features)])

    def plot(self, ax=None):
        """Bar chart of the first feature's top promoted and suppressed logit weights."""
        from modscope.figures import TRAINED, TWIN, axes

        ax = axes(ax)
        labels = [repr(t) for t in self.promoted_tokens[0]] + [repr(t) for t in self.suppressed_tokens[0]]
        values = np.concatenate([self.promoted[0], self.suppressed[0]])
        ax.barh(range(len(values)), values, color=[TRAINED] * len(self.promoted[0]) + [TWIN] * len(self.suppressed[0]))
        ax.set_yticks(range(len(values)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("logit weight (logits per unit activation)")
        ax.set_title(f"feature {int(self.features[0])}: promoted / suppressed tokens")
        return ax


def top_logit_tokens(weights: np.ndarray, top: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Largest and smallest entries of each row of ``weights`` [n_features, vocab].

    Returns:
        ``(promoted_ids, promoted, suppressed_ids, suppressed)``, each [n_features, top].
    """
    w = torch.as_tensor(np.asarray(weights))
    top = min(top, w.shape[1])
    hi, hi_ids = w.topk(top, dim=1)
    lo, lo_ids = (-w).topk(top, dim=1)
    return hi_ids.numpy(), hi.numpy(), lo_ids.numpy(), (-lo).numpy()


def feature_logit_weights(sae, lmap=None, *, scale: float = 1.0, features=None) -> torch.Tensor:
    """Logit weights [n_features, vocab]: ``lmap.logit_update(W_dec[features], scale)``.

    For an SAE trained on a logit-space site (``lmap`` None) the decoder rows already are logit updates.
    """
    rows = sae.W_dec.detach()
    if features is not None:
        rows = rows[torch.as_tensor(np.asarray(features), dtype=torch.long)]
    return rows if lmap is None else lmap.logit_update(rows.to(lmap.W_U.dtype), scale)


def feature_logits(model, sae, *, features=None, top: int = 10, scale: float = 1.0,
                   block: int | None = LATENT_BLOCK) -> FeatureLogits:
    """The FeatureLogits of ``sae`` (trained on ``sae.meta['site']`` of ``model``) for ``features`` (default all).

    The logit weights are formed ``block`` latents at a time and reduced to their top ``top`` tokens at once, so
    memory is O(block x vocab + latents x top) whatever the number of latents (393k latents x 49k tokens would
    be 77 GB as one table). ``block=None`` forms the whole [features, vocab] table in one go (same result).
    """
    from modscope.sae.logit_map import logit_map

    features = np.arange(sae.n_latents) if features is None else np.asarray(features)
    lmap = None if sae.meta.get("logit_space") else logit_map(model, sae.meta["site"])
    size = len(features) if block is None or len(features) == 0 else int(block)
    if size < 1 and len(features):
        raise ModscopeError(f"block must be a positive number of latents, got {block}")
    parts = [top_logit_tokens(feature_logit_weights(sae, lmap, scale=scale, features=features[start:start + size])
                              .float().numpy(), top) for start in range(0, max(len(features), 1), max(size, 1))]
    hi_ids, hi, lo_ids, lo = (np.concatenate([p[k] for p in parts]) for k in range(4))

    def decode(ids: np.ndarray) -> list[str]:
        return [model.tokenizer.decode([int(i)]) for i in ids]

    return FeatureLogits(features, hi_ids, hi, lo_ids, lo, [decode(r) for r in hi_ids], [decode(r) for r in lo_ids],
                         float(scale))
