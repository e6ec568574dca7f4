"""The report's decision rules as calibration trials: (regime, rng) -> did the rule fire?"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from modscope.calibration import Sizes
from modscope.errors import ModscopeError
from modscope.stats import simulate as sim
from modscope.stats.calibration import Rule

ALPHA = 0.05
Z_VERDICT = 3.0
ALPHA_VERDICT = float(norm.sf(Z_VERDICT))
MI_CHANNELS, MI_RHO = 2, 0.3
GAUSSIAN_TRUTH = ("gaussian", "n_close")  # regimes whose planted MI is known exactly


def seed_of(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def mi_rules(s: Sizes) -> list[Rule]:
    from modscope.stats.curve import EXTRAPOLATION_CALIBRATED, mi_curve
    from modscope.stats.mi import gaussian_mi

    def mi(regime, rng, channels):
        x, y = sim.channel_pair(regime, s.n, s.d, s.d, rng, channels=channels, rho=MI_RHO)
        return gaussian_mi(x, y, permutations=s.permutations, seed=seed_of(rng))

    def covered(regime, rng, channels) -> bool | None:
        if channels and regime not in GAUSSIAN_TRUTH:
            return None
        n = sim.rows_for(regime, s.curve_n, 2 * s.curve_d)
        x, y = sim.channel_pair(regime, n, s.curve_d, s.curve_d, rng, channels=channels, rho=MI_RHO)
        c = mi_curve(x, y, points=6, seed=seed_of(rng))
        miss = abs(c.mi_inf - sim.planted_mi(channels, MI_RHO)) > 2 * c.mi_inf_se
        return (not miss) if channels else bool(miss)

    effect = f"{MI_CHANNELS} channels of ρ = {MI_RHO} ({sim.planted_mi(MI_CHANNELS, MI_RHO):.3f} nats in the core)"
    return [
        Rule("mi_p", "MI p < 0.05 (the z / p of gaussian_mi)", ALPHA,
             lambda g, r: mi(g, r, 0).p <= ALPHA, lambda g, r: mi(g, r, MI_CHANNELS).p <= ALPHA, effect),
        Rule("mi_z3", "MI z > 3 read as a normal tail (withdrawn: the verdict uses p)", ALPHA_VERDICT,
             lambda g, r: mi(g, r, 0).z > Z_VERDICT, lambda g, r: mi(g, r, MI_CHANNELS).z > Z_VERDICT, effect,
             in_verdicts=False),
        Rule("mi_extrapolation", "MI n→∞ extrapolation: truth outside mi_inf ± 2 se (power column: coverage)",
             ALPHA, lambda g, r: covered(g, r, 0), lambda g, r: covered(g, r, MI_CHANNELS),
             effect + "; coverage only where the truth is known (Gaussian cores)",
             in_verdicts=EXTRAPOLATION_CALIBRATED),
    ]


def spectrum_rules(s: Sizes) -> list[Rule]:
    from modscope.stats.spectra import spectrum

    def spec(regime, rng, loading):
        x = sim.factor_rows(regime, s.n, s.d, rng, loading=loading)
        return spectrum(x, seed=seed_of(rng), n_shuffles=s.permutations)

    effect = "one shared direction, loading 1 (top core eigenvalue 2 vs 1)"
    return [
        Rule("spectrum_null", "spectrum: ≥ 1 direction above the shuffled null", ALPHA,
             lambda g, r: spec(g, r, 0.0).n_above_null >= 1, lambda g, r: spec(g, r, 1.0).n_above_null >= 1, effect),
        Rule("spectrum_mp", "spectrum: ≥ 1 eigenvalue above the Marchenko–Pastur edge", ALPHA,
             lambda g, r: spec(g, r, 0.0).n_above_mp >= 1, lambda g, r: spec(g, r, 1.0).n_above_mp >= 1, effect,
             in_verdicts=False),
    ]


def block_rules(s: Sizes) -> list[Rule]:
    from modscope.stats.block_structure import blocks
    from modscope.stats.covariance import Covariance

    def p(regime, rng, loading, with_rows) -> float:
        x = sim.block_rows(regime, s.n, s.d, rng, loading=loading)
        return blocks(Covariance.from_batch(x), rows=x if with_rows else None, n_shuffles=19, seed=seed_of(rng)).p

    effect = "2 blocks, one factor each, loading 0.7 (within-block correlation 0.33)"
    return [Rule("block_modularity", "block modularity p < 0.05, covariance only (Wishart null)", ALPHA,
                 lambda g, r: p(g, r, 0.0, False) <= ALPHA, lambda g, r: p(g, r, 0.7, False) <= ALPHA, effect),
            Rule("block_modularity_rows", "block modularity p < 0.05, rows given (sign-flip null)", ALPHA,
                 lambda g, r: p(g, r, 0.0, True) <= ALPHA, lambda g, r: p(g, r, 0.7, True) <= ALPHA, effect)]


def geometry_rules(s: Sizes) -> list[Rule]:
    from modscope.geometry.separation import separation
    from modscope.geometry.similarity import similarity
    from modscope.geometry.streams import rank_stream_dimensions

    def sep(regime, rng, shift) -> float:
        x, labels = sim.labelled_rows(regime, s.separation_n, s.d, rng, shift=shift)
        return separation(similarity(x, "centred"), labels, n_permutations=s.permutations,
                          seed=seed_of(rng)).p

    def streams(regime, rng, shift) -> float:
        layers = 3
        x, labels = sim.labelled_rows(regime, s.separation_n, layers * s.d, rng, shift=shift)
        values = x.reshape(len(x), layers, s.d)
        ranking = rank_stream_dimensions(values, labels, n_permutations=s.permutations, seed=seed_of(rng))
        return float(np.min(ranking.p_fwer))

    return [
        Rule("separation", "similarity separation p < 0.05 (label permutation)", ALPHA,
             lambda g, r: sep(g, r, 0.0) <= ALPHA, lambda g, r: sep(g, r, 1.0) <= ALPHA,
             "category mean shifted by 1 sd along one coordinate"),
        Rule("stream_dimension", "stream dimension min p_fwer < 0.05", ALPHA,
             lambda g, r: streams(g, r, 0.0) <= ALPHA, lambda g, r: streams(g, r, 1.5) <= ALPHA,
             "one dimension of one layer shifted by 1.5 sd between categories"),
    ]


def weight_rules(s: Sizes) -> list[Rule]:
    from modscope.weights.clusterability import clusterability

    def p(regime, rng, boost) -> float:
        layers = sim.layered_weights(regime, s.widths, rng, boost=boost)
        return clusterability(layers, k=2, n_shuffles=19, seed=seed_of(rng)).p_value

    return [Rule("clusterability", "clusterability p < 0.05 (weights shuffled within layers)", ALPHA,
                 lambda g, r: p(g, r, 1.0) <= ALPHA, lambda g, r: p(g, r, 4.0) <= ALPHA,
                 "2 diagonal modules with weights ×4")]


def make_rules(s: Sizes) -> list[Rule]:
    return mi_rules(s) + spectrum_rules(s) + block_rules(s) + geometry_rules(s) + weight_rules(s)


def select(rules: list[Rule], names: list[str] | None) -> list[Rule]:
    if not names:
        return rules
    known = [r.name for r in rules]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ModscopeError(f"unknown rule(s) {', '.join(unknown)}; the rules are: {', '.join(known)}")
    return [r for r in rules if r.name in names]
