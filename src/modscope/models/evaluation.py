"""Next-token loss per corpus category: the first sanity check that a model (and not its twin) knows the text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope.results import Result


@dataclass(frozen=True)
class LossResult(Result):
    """Mean next-token cross-entropy per category.

    Attributes:
        models: model names, in order.
        categories: corpus categories.
        loss: nats/token, shape [len(models), len(categories)] (mean over documents).
        uniform: log(vocab), the loss of a uniform prediction (nats/token): the reference a random model sits near.
    """

    models: tuple[str, ...]
    categories: tuple[str, ...]
    loss: np.ndarray
    uniform: float

    def to_frame(self):
        """Mean loss (nats per token), one row per model and one column per category."""
        import pandas as pd

        return pd.DataFrame(self.loss, index=list(self.models), columns=list(self.categories))

    def plot(self, ax=None):
        from modscope.figures import axes, model_colour

        ax = axes(ax)
        width = 0.8 / len(self.models)
        x = np.arange(len(self.categories))
        for i, name in enumerate(self.models):
            ax.bar(x + i * width, self.loss[i], width, label=name, color=model_colour(name))
        ax.axhline(self.uniform, color="#9a9a9a", ls="--", label=f"uniform over vocab (log V = {self.uniform:.1f})")
        ax.set(xticks=x + width * (len(self.models) - 1) / 2, xticklabels=self.categories,
               ylabel="loss (nats/token)", title="next-token loss by category")
        ax.legend()
        return ax


def loss_by_category(models, corpus, *, max_tokens: int = 256) -> LossResult:
    """Loss of each model on each document of ``corpus`` (first ``max_tokens`` tokens), averaged per category."""
    cats = tuple(corpus.categories)
    table = np.zeros((len(models), len(cats)))
    for i, model in enumerate(models):
        for j, cat in enumerate(cats):
            table[i, j] = np.mean([model.loss(d.text, max_tokens=max_tokens) for d in corpus.docs if d.category == cat])
    return LossResult(tuple(m.name for m in models), cats, table, float(np.log(models[0].vocab_size)))
