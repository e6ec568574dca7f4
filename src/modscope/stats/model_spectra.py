"""Model-facing spectra: covariance spectra per site for a model and its twin, and block structure of chosen sites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modscope.errors import ModscopeError
from modscope.results import Result
from modscope.stats.block_structure import BlockResult, blocks
from modscope.stats.covariance import covariance
from modscope.stats.spectra import SHUFFLE_ROWS, SpectrumResult, site_nulls, spectrum, spectrum_of_covariance


@dataclass(frozen=True)
class ModelSpectraResult(Result):
    """Spectra per site of a model (and its twin) plus block structure of selected sites.

    Attributes:
        model, twin: model names (twin None when absent).
        sites: the sites, in order.
        trained: SpectrumResult per site of the model.
        twin_spectra: SpectrumResult per site of the twin (empty when absent).
        block_sites: sites whose correlation matrix was tested for blocks.
        blocks: BlockResult per block site (of the model), or empty.
        twin_blocks: BlockResult per block site of the twin, or empty.
    """

    model: str
    twin: str | None
    sites: list[str]
    trained: list[SpectrumResult]
    twin_spectra: list[SpectrumResult]
    block_sites: list[str]
    blocks: list[BlockResult]
    twin_blocks: list[BlockResult]

    def to_frame(self) -> pd.DataFrame:
        """One row per (site, model): PR, effective rank, top shares, tail exponent and null counts."""
        rows = [{"site": site, "model": who, "d": s.d, "participation_ratio": s.participation_ratio,
                 "shuffle_pr": s.shuffle_participation_ratio, "effective_rank": s.effective_rank,
                 "top1_share": s.top1_share, f"top{s.top_k}_share": s.topk_share, "tail_exponent": s.tail_exponent,
                 "n_above_mp": s.n_above_mp, "n_above_null": s.n_above_null, "null": s.null_name}
                for who, spectra in (("trained", self.trained), ("twin", self.twin_spectra))
                for site, s in zip(self.sites, spectra, strict=False)]
        rows += [{"site": site, "model": f"{who} blocks", "n_blocks": b.n_blocks, "modularity": b.modularity,
                  "modularity_null": b.null_mean, "modularity_z": b.z}
                 for who, found in (("trained", self.blocks), ("twin", self.twin_blocks))
                 for site, b in zip(self.block_sites, found, strict=False)]
        return pd.DataFrame(rows)

    def plot(self, ax=None):
        """Spectra of every site on one log–log plot: trained in blue, twin in orange, darker = deeper."""
        from modscope import figures as style

        ax = style.axes(ax, figsize=(6.0, 4.0))
        count = len(self.sites)
        for spectra, colour, name in ((self.trained, style.TRAINED, self.model),
                                      (self.twin_spectra, style.TWIN, self.twin)):
            for i, s in enumerate(spectra):
                ax.loglog(np.arange(1, s.d + 1), np.where(s.eigenvalues > 0, s.eigenvalues, np.nan), color=colour,
                          alpha=0.3 + 0.7 * (i + 1) / count, lw=1, label=name if i == count - 1 else None)
        ax.set(xlabel="rank i", ylabel="eigenvalue" + (" (correlation)" if self.trained[0].standardized else ""),
               title="covariance spectra per site (darker = deeper)")
        ax.legend()
        return ax

    def plot_metrics(self):
        """Participation ratio and top-1 share per site, model vs twin vs the shuffle null."""
        from modscope import figures as style

        fig, axs = style.grid(2, cols=2, size=3.2)
        x = np.arange(len(self.sites))
        for spectra, colour, name in ((self.trained, style.TRAINED, self.model),
                                      (self.twin_spectra, style.TWIN, self.twin)):
            if spectra:
                axs[0].plot(x, [s.participation_ratio for s in spectra], "o-", color=colour, ms=3, label=name)
                axs[1].plot(x, [s.top1_share for s in spectra], "o-", color=colour, ms=3, label=name)
        nulls = [s.shuffle_participation_ratio for s in self.trained]
        if all(v is not None for v in nulls):
            axs[0].plot(x, nulls, ":", color=style.NULL, label="column-shuffled")
        axs[0].set(yscale="log", ylabel="participation ratio", xlabel="site index")
        axs[1].set(ylabel="top-1 variance share", xlabel="site index")
        axs[0].legend(fontsize=7)
        return fig


def spectra_of_stores(store: Any, twin_store: Any | None, sites: list[str], *, block_sites: list[str] | None = None,
                      standardize: bool = False, n_shuffles: int = 20, seed: int = 0, engine: str = "local",
                      scheduler: str | None = None, shuffle_rows: int = SHUFFLE_ROWS) -> ModelSpectraResult:
    """Spectrum of each site (and block structure of ``block_sites``) from capture stores.

    Memory does not grow with the rows: each covariance is a float64 ``Covariance`` streamed batch by batch
    from the store, and the column-shuffle null uses at most ``shuffle_rows`` rows (see ``site_nulls``; all rows,
    exactly as ``spectrum``, when the store has no more).

    Args:
        store: ActivationStore of the model. twin_store: the twin's store (optional).
        sites: sites to analyse. block_sites: subset tested for block structure (default: none).
        standardize: spectra of correlation instead of covariance matrices.
        n_shuffles: shuffles of the modularity null. seed: seed of all shuffles.
        engine, scheduler: ``dask`` streams each covariance chunk by chunk from the stores (no column-shuffle null).
        shuffle_rows: most rows held in memory for the column-shuffle null.
    """
    block_sites = block_sites or []
    unknown = [s for s in block_sites if s not in sites]
    if unknown:
        raise ModscopeError(f"block sites {', '.join(unknown)} are not among the analysed sites {', '.join(sites)}")

    def analyse(st):
        spectra, accs = [], {}
        for site in sites:
            if engine != "local":
                spectra.append(spectrum(st[site], standardize=standardize, engine=engine, scheduler=scheduler))
                continue
            acc = accs[site] = covariance(st[site])
            if acc.n < 2:
                raise ModscopeError(f"a spectrum needs at least 2 rows, got {acc.n}")
            shuffled, null, found, null_name = site_nulls(st[site], standardize=standardize, seed=seed,
                                                          shuffle_rows=shuffle_rows)
            spectra.append(spectrum_of_covariance(acc, standardize, shuffle_eigenvalues=shuffled, null_eigenvalues=null,
                                                  null_name=null_name, massive=found))
        found = [blocks(accs.get(s) or covariance(st[s]), n_shuffles=n_shuffles, seed=seed) for s in block_sites]
        return spectra, found

    trained, trained_blocks = analyse(store)
    twin_spectra, twin_blocks = analyse(twin_store) if twin_store is not None else ([], [])
    return ModelSpectraResult(
        model=store.model_info.get("name", "model"),
        twin=twin_store.model_info.get("name", "twin") if twin_store is not None else None, sites=list(sites),
        trained=trained, twin_spectra=twin_spectra, block_sites=list(block_sites), blocks=trained_blocks,
        twin_blocks=twin_blocks)


def model_spectra(model: Any, twin: Any | None, source: Any, sites: str, *, block_sites: list[str] | None = None,
                  max_tokens: int | None = 20000, ctx: int = 512, standardize: bool = False, n_shuffles: int = 20,
                  seed: int = 0, progress: bool = False) -> ModelSpectraResult:
    """Capture ``sites`` of ``model`` (and ``twin``) on ``source`` and compute their spectra and blocks."""
    from modscope.capture import capture

    names = model.select_sites(sites)
    store = capture(model, source, names, max_tokens=max_tokens, ctx=ctx, progress=progress)
    twin_store = capture(twin, source, names, max_tokens=max_tokens, ctx=ctx, progress=progress) if twin else None
    return spectra_of_stores(store, twin_store, names, block_sites=block_sites, standardize=standardize,
                             n_shuffles=n_shuffles, seed=seed)
