"""Result types of the model-facing Jacobian probes: one sublayer, one path, ranks across layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modscope import figures as style
from modscope.jacobian.spectrum import JacobianSpectrum
from modscope.results import Result


@dataclass(frozen=True)
class BlockSpectrum(Result):
    """The Jacobian spectrum of one sublayer of a model at a real input.

    Attributes:
        model: model name. layer: block index. part: ``attn`` | ``mlp`` | ``block``.
        residual: whether the identity path is included. tokens: tokens in the input (J is tokens·d square).
        spectrum: the JacobianSpectrum (σ in output units per input unit of the residual stream).
        reproduction_error: max |part(x) − model's own site| / max |site| against the model's float32 forward
            pass (checks that the isolated part is the sublayer; ~1e-7 expected).
    """

    model: str
    layer: int
    part: str
    residual: bool
    tokens: int
    spectrum: JacobianSpectrum
    reproduction_error: float

    @property
    def label(self) -> str:
        return f"{self.part}{'+I' if self.residual else ''} L{self.layer}, {self.tokens} tok"

    def plot(self, ax=None, *, color: str | None = None):
        ax = self.spectrum.plot(ax, label=f"{self.model}: {self.label}", color=color or style.model_colour(self.model))
        ax.set_title(f"{self.label}: rank {self.spectrum.rank_text}/{self.spectrum.full_size} ({self.spectrum.method})")
        return ax


@dataclass(frozen=True)
class PathSpectrum(Result):
    """The spectrum of ∂ x_dst[dst_pos] / ∂ x_src[src_pos] through the model (d×d).

    Attributes:
        model: model name. src, dst: stream sites. src_pos, dst_pos: token positions.
        spectrum: the JacobianSpectrum. reproduction_error: as in BlockSpectrum, against the destination site.
    """

    model: str
    src: str
    dst: str
    src_pos: int
    dst_pos: int
    spectrum: JacobianSpectrum
    reproduction_error: float

    @property
    def label(self) -> str:
        return f"{self.src}[{self.src_pos}] → {self.dst}[{self.dst_pos}]"

    def plot(self, ax=None, *, color: str | None = None):
        ax = self.spectrum.plot(ax, label=f"{self.model}", color=color or style.model_colour(self.model))
        ax.set_title(f"{self.label}: rank {self.spectrum.rank_text}/{self.spectrum.full_size}")
        return ax


@dataclass(frozen=True)
class LayerRanks(Result):
    """Numerical rank of one part's Jacobian at every layer ("where is the tight pass?").

    Attributes:
        model, part, residual, tokens: as in BlockSpectrum. layers: block indices.
        ranks: rank per layer (count of σ above the floor). size: min(n_in, n_out) = tokens·d (full rank).
        sigma_max: σ₁ per layer. noise_floors: the floor per layer (for a token-wise part the largest token floor;
        each token is counted against its own). rank_kind: ``exact``, ``estimate`` or ``mixed``.
        effective_rank: exp of the entropy of σ²/Σσ² per layer (Roy & Vetterli 2007), a floor-free width.
        float32_ranks: count above √d·eps32·σ₁ per layer (see JacobianSpectrum). rank_gaps: σ_r/σ_{r+1} per layer.
    """

    model: str
    part: str
    residual: bool
    tokens: int
    layers: np.ndarray
    ranks: np.ndarray
    size: int
    sigma_max: np.ndarray
    noise_floors: np.ndarray
    rank_kind: str
    effective_rank: np.ndarray
    float32_ranks: np.ndarray | None = None
    rank_gaps: np.ndarray | None = None

    _frame_columns = ("layers", "ranks", "sigma_max", "noise_floors", "effective_rank", "float32_ranks", "rank_gaps")

    @property
    def rank_prefix(self) -> str:
        """"≈ " for slq estimates, "" for exact ranks (per-layer ranks are never top-k lower bounds)."""
        return "" if self.rank_kind == "exact" else "≈ "

    def plot(self, ax=None, *, color: str | None = None):
        ax = style.axes(ax)
        colour = color or style.model_colour(self.model)
        ax.plot(self.layers, self.ranks / self.size, "o-", color=colour,
                label=f"{self.model}: {self.rank_prefix}rank / {self.size}")
        if self.float32_ranks is not None:
            ax.plot(self.layers, self.float32_ranks / self.size, ".:", color=colour, alpha=0.8,
                    label="above the float32 threshold")
        ax.plot(self.layers, self.effective_rank / self.size, "s--", color=colour, alpha=0.6,
                label="effective rank / size")
        ax.axhline(1.0, color=style.NULL, ls=":", lw=1)
        ax.set(xlabel="layer", ylabel="fraction of full rank",
               title=f"{self.part} Jacobian rank per layer, {self.tokens} tokens")
        ax.legend(fontsize=7)
        return ax


def effective_rank(values: np.ndarray) -> float:
    """exp(H(p)) with p = σ²/Σσ² (Roy & Vetterli 2007, "The effective rank", EUSIPCO): 1 for one direction,
    n for a flat spectrum."""
    p = np.asarray(values, dtype=np.float64) ** 2
    p = p[p > 0] / p.sum() if p.sum() > 0 else np.ones(1)
    return float(np.exp(-(p * np.log(p)).sum()))
