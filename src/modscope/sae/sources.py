"""Where training activations come from: an array, a capture store's site, or a model streamed on the fly.

Every source yields shuffled float32 batches of [batch_size, d_in] for as long as asked, and sets aside a
held-out block (never yielded for training) on which feature density is measured.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from modscope.errors import ModscopeError

SHUFFLE_BUFFER_ROWS = 1 << 16


class ActivationSource:
    """Base of the sources. ``d_in``, ``heldout`` [n, d_in] and ``batches(batch_size, seed)``; ``meta`` for saving."""

    d_in: int
    meta: dict[str, Any]

    def heldout(self) -> torch.Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def chunks(self, seed: int) -> Iterator[np.ndarray]:  # pragma: no cover
        """Training rows in chunks (any order), forever."""
        raise NotImplementedError

    def batches(self, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        """Shuffled training batches [batch_size, d_in], forever (chunks pass through a shuffle buffer)."""
        rng = np.random.default_rng(seed)
        buffer = np.empty((0, self.d_in), dtype=np.float32)
        for chunk in self.chunks(seed):
            buffer = np.concatenate([buffer, np.asarray(chunk, dtype=np.float32)])
            if len(buffer) < max(batch_size, min(SHUFFLE_BUFFER_ROWS, 4 * batch_size)):
                continue
            buffer = buffer[rng.permutation(len(buffer))]
            n_full = len(buffer) // batch_size
            for i in range(n_full):
                yield torch.from_numpy(buffer[i * batch_size:(i + 1) * batch_size])
            buffer = buffer[n_full * batch_size:]


def token_windows(model, texts: Sequence[str], ctx: int) -> torch.Tensor:
    """Each text's tokens cut into non-overlapping windows of ``ctx`` tokens (remainders dropped) [n, ctx]."""
    windows = [seq[i:i + ctx] for seq in model.tokenize(list(texts)) for i in range(0, len(seq) - ctx + 1, ctx)]
    if len(windows) < 2:
        raise ModscopeError(f"the texts give {len(windows)} windows of {ctx} tokens; give longer/more texts "
                            "or a smaller ctx")
    return torch.tensor(windows)


@torch.inference_mode()
def site_activations(model, site: str, windows: torch.Tensor, lmap=None, *, batch: int = 8) -> torch.Tensor:
    """``site`` of ``model`` on token ``windows`` [n, ctx] (its logit-space image if ``lmap`` is a LogitMap),
    flattened to float32 [n * ctx, d_in], computed ``batch`` windows per forward pass."""
    parts = []
    for i in range(0, len(windows), batch):
        ids = windows[i:i + batch]
        acts = lmap.site_logits_from_model(model, ids) if lmap is not None else model.run_with_sites(ids, [site])[site]
        parts.append(acts.reshape(-1, acts.shape[-1]).float())
    return torch.cat(parts)


def _split_heldout(n_rows: int, heldout_tokens: int) -> int:
    """Rows kept for training; the held-out block is the last ``min(heldout_tokens, n_rows // 5)`` rows."""
    if n_rows < 10:
        raise ModscopeError(f"only {n_rows} activation rows: an SAE needs at least thousands; capture more tokens")
    return n_rows - max(min(heldout_tokens, n_rows // 5), 1)


@dataclass
class ArraySource(ActivationSource):
    """Activations held in memory: ``array`` [n_rows, d_in]; the last rows are the held-out block."""

    array: np.ndarray
    heldout_tokens: int = 16384
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = np.asarray(self.array.detach().cpu() if isinstance(self.array, torch.Tensor) else self.array)
        if array.ndim != 2:
            raise ModscopeError(f"activations must be [n_rows, d_in], got shape {array.shape}; flatten tokens first")
        self.array = array
        self.d_in = array.shape[1]
        self.n_train = _split_heldout(len(array), self.heldout_tokens)

    def heldout(self) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.array[self.n_train:], dtype=np.float32))

    def chunks(self, seed: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed + 1)
        while True:  # one epoch per permutation, handed out in slices so that no full copy is made
            order = rng.permutation(self.n_train)
            for start in range(0, self.n_train, SHUFFLE_BUFFER_ROWS):
                yield self.array[np.sort(order[start:start + SHUFFLE_BUFFER_ROWS])]


@dataclass
class StoreSource(ActivationSource):
    """One site of a capture ``ActivationStore`` (in RAM or zarr on disk), read in chunks of ``chunk_rows``."""

    store: Any
    site: str
    heldout_tokens: int = 16384
    chunk_rows: int = 1 << 15
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.site not in self.store.sites:
            raise ModscopeError(f"site '{self.site}' is not in this store; it holds {', '.join(self.store.sites)}")
        shape = tuple(self.store.shapes[self.site])
        if len(shape) != 1:
            raise ModscopeError(f"site '{self.site}' has per-token shape {shape}; an SAE needs a vector site")
        self.d_in = shape[0]
        self.n_train = _split_heldout(int(self.store.n_rows), self.heldout_tokens)
        info = dict(getattr(self.store, "model_info", {}) or {})
        self.meta = {"site": self.site, "model": info.get("name"), **self.meta}

    def heldout(self) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.store[self.site][self.n_train:], dtype=np.float32))

    def chunks(self, seed: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed + 1)
        starts = np.arange(0, self.n_train, self.chunk_rows)
        while True:
            for start in rng.permutation(starts):
                yield np.asarray(self.store[self.site][start:min(start + self.chunk_rows, self.n_train)])


@dataclass
class ModelSource(ActivationSource):
    """A model's site computed on the fly from token windows of ``texts``: nothing is held beyond a buffer.

    The texts are tokenised and cut into windows of ``ctx`` tokens; the last windows (enough for
    ``heldout_tokens``) are held out. With ``logit_space`` the site's direct effect on the logits is yielded
    instead (see ``modscope.sae.logit_map``). With ``keep_in_memory`` the first pass over the windows is kept
    and later epochs reuse it (one forward pass per token instead of one per epoch; needs the RAM for it).
    """

    model: Any
    site: str
    texts: Sequence[str]
    ctx: int = 128
    sequences_per_pass: int = 16
    heldout_tokens: int = 16384
    logit_space: bool = False
    keep_in_memory: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from modscope.sae.logit_map import logit_map

        (self.site,) = self.model.select_sites(self.site)
        shape = self.model.sites()[self.site]
        if len(shape) != 1:
            raise ModscopeError(f"site '{self.site}' has per-token shape {shape}; use resid_*, mlp_*, attn_out")
        windows = token_windows(self.model, self.texts, self.ctx)
        split = len(windows) - max(min(len(windows) // 5, -(-self.heldout_tokens // self.ctx)), 1)
        self.windows, self.heldout_windows = windows[:split], windows[split:]
        self.map = logit_map(self.model, self.site) if self.logit_space else None
        self.d_in = self.model.vocab_size if self.logit_space else shape[0]
        self.meta = {"site": self.site, "model": self.model.name, "logit_space": self.logit_space,
                     "fingerprint": self.model.fingerprint, "ctx": self.ctx, **self.meta}

    def activations(self, windows: torch.Tensor) -> torch.Tensor:
        """The site (or its logit-space image) for ``windows`` [n, ctx], flattened to [n * ctx, d_in]."""
        return site_activations(self.model, self.site, windows, self.map, batch=self.sequences_per_pass)

    def heldout(self) -> torch.Tensor:
        return self.activations(self.heldout_windows)

    def chunks(self, seed: int) -> Iterator[np.ndarray]:
        gen = torch.Generator().manual_seed(seed + 1)
        kept: list[np.ndarray] = []
        while True:
            order = torch.randperm(len(self.windows), generator=gen)
            for i in range(0, len(order), self.sequences_per_pass):
                chunk = self.activations(self.windows[order[i:i + self.sequences_per_pass]]).numpy()
                if self.keep_in_memory:
                    kept.append(chunk)
                yield chunk
            if self.keep_in_memory:
                yield from ArraySource(np.concatenate(kept), heldout_tokens=0).chunks(seed)


def as_source(source: Any, *, heldout_tokens: int = 16384) -> ActivationSource:
    """Accept an ActivationSource, an array [n_rows, d_in], or a ``(store, site)`` pair."""
    if isinstance(source, ActivationSource):
        return source
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return ArraySource(source, heldout_tokens=heldout_tokens)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], str):
        store, site = source
        if hasattr(store, "sites") and hasattr(store, "n_rows"):
            return StoreSource(store, site, heldout_tokens=heldout_tokens)
        if hasattr(store, "run_with_sites"):
            raise ModscopeError("a (model, site) pair needs texts to run on: use ModelSource(model, site, texts)")
    raise ModscopeError(f"cannot train on a {type(source).__name__}; give an array [n_rows, d_in], a (store, site) "
                        "pair, or ModelSource(model, site, texts)")
