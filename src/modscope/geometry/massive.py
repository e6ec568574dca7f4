"""Geometry without the massive coordinates: the same sample with each site's massive columns dropped.

A handful of coordinates of a residual stream can reach thousands of times the typical |x| (Sun et al. 2024,
"Massive activations in large language models"). Linear CKA, cosine similarity and mean pairwise cosine are sums
of products over coordinates, so such columns can decide them alone. The detector is ``stats.massive``
(|x_ij| > ratio × median |x|, the one the spectra use); here every column holding such an entry is dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from modscope.geometry.gather import Gathered
from modscope.stats.massive import DEFAULT_RATIO, MassiveActivations, find_massive

WHAT = "massive coordinates dropped"  # which variant: columns are removed, every row is kept


def massive_entries(x: np.ndarray, found: MassiveActivations, axis: int) -> np.ndarray:
    """Whether each column (``axis=0``) or row (``axis=1``) of ``x`` holds an entry above the detector's threshold
    (``found.coords`` lists at most 20)."""
    if not found.found:
        return np.zeros(x.shape[1 - axis], dtype=bool)
    return (np.abs(np.asarray(x)) > found.ratio * found.median_abs).any(axis=axis)


def without_massive(gathered: Gathered, *, ratio: float = DEFAULT_RATIO) -> tuple[Gathered, dict[str, dict]]:
    """``gathered`` with each site's massive coordinates removed, and what was removed per site.

    Args:
        gathered: per-site [n, d] arrays. ratio: the detector's factor over the median |x|.

    Returns:
        (the reduced ``Gathered``; site -> {"dropped": column indices, "n_dropped", "share": variance share they
        carried, "max_ratio": largest |x| / median |x|}). A site keeps at least one column.
    """
    arrays, dropped = {}, {}
    for site, x in gathered.arrays.items():
        found = find_massive(x, ratio=ratio)
        columns = np.flatnonzero(massive_entries(x, found, axis=0))
        if columns.size >= x.shape[1]:  # everything is "massive": nothing sensible to drop
            columns = columns[:0]
        arrays[site] = np.ascontiguousarray(np.delete(x, columns, axis=1)) if columns.size else x
        dropped[site] = {"dropped": [int(c) for c in columns], "n_dropped": int(columns.size),
                         "share": float(found.share) if columns.size else 0.0, "max_ratio": float(found.max_ratio)}
    return replace(gathered, arrays=arrays), dropped


def dropped_sentence(dropped: dict[str, dict]) -> str:
    """``"3 massive coordinates at 2 of 12 sites (up to 99.1% of a site's variance)"`` or ``"no massive ..."``."""
    hit = {s: d for s, d in dropped.items() if d["n_dropped"]}
    if not hit:
        return f"no massive coordinates (no |x| above {DEFAULT_RATIO:g}× the median |x|) at any of {len(dropped)} sites"
    total = sum(d["n_dropped"] for d in hit.values())
    return (f"{total} massive coordinate{'s' * (total != 1)} at {len(hit)} of {len(dropped)} sites (up to "
            f"{max(d['share'] for d in hit.values()):.1%} of a site's variance)")


def rests_on(dropped: dict[str, dict], with_text: str, without_text: str) -> str:
    """The verdict's closing sentence: both numbers and which one the verdict rests on.

    With massive coordinates found, the verdict rests on the numbers without them (they describe the
    representation, not a handful of coordinates); otherwise the two agree and it rests on all coordinates.
    """
    sentence = dropped_sentence(dropped)
    if not any(d["n_dropped"] for d in dropped.values()):
        return f" {sentence[0].upper()}{sentence[1:]}, so every number is over all coordinates ({with_text})."
    return (f" With the massive coordinates {with_text}; without them ({sentence}; coordinates dropped, every row "
            f"kept) {without_text}: this verdict rests on the numbers without them.")


def without_massive_rows(gathered: Gathered, *, ratio: float = DEFAULT_RATIO) -> tuple[Gathered, dict]:
    """``gathered`` without the rows (tokens) that hold a massive entry at any site; every coordinate kept.

    Massive activations sit on a few token positions (often the first token, Sun et al. 2024), so dropping those
    rows is the other way to keep them from deciding a Gram-based number; rows are dropped at every site at once,
    so the sites stay row-aligned (CKA pairs them).

    Returns:
        (the reduced ``Gathered`` — unchanged if no row, or every row, is massive; {"n_rows_dropped", "rows":
        the dropped row indices, "positions": token position -> how many dropped rows sit there}).
    """
    n = len(gathered.labels)
    hit = np.zeros(n, dtype=bool)
    for x in gathered.arrays.values():
        hit |= massive_entries(x, find_massive(x, ratio=ratio), axis=1)
    if not hit.any() or hit.all():
        return gathered, {"n_rows_dropped": 0, "rows": [], "positions": {}}
    keep = np.flatnonzero(~hit)
    positions = Counter(int(gathered.positions[i]) for i in np.flatnonzero(hit))
    reduced = replace(gathered, arrays={s: np.ascontiguousarray(x[keep]) for s, x in gathered.arrays.items()},
                      labels=[gathered.labels[i] for i in keep], groups=[gathered.groups[i] for i in keep],
                      positions=[gathered.positions[i] for i in keep])
    return reduced, {"n_rows_dropped": int(hit.sum()), "rows": [int(i) for i in np.flatnonzero(hit)],
                     "positions": dict(sorted(positions.items()))}
