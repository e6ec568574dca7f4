"""Input checks shared by the statistics (and geometry): NaN or inf in the data is an error, not a LinAlgError."""

from __future__ import annotations

from typing import Any

import numpy as np

from modscope.errors import ModscopeError

ADVICE = "check the capture (overflow in float16?) or drop the non-finite rows"


def require_finite(array: Any, what: str = "the data") -> None:
    """Raise ``ModscopeError`` if ``array`` holds NaN or ±inf (``what`` names it in the message)."""
    values = np.asarray(array)
    if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ModscopeError(f"{what} contains NaN or inf ({bad} of {values.size} values); {ADVICE}")


def require_finite_moments(acc: Any, what: str = "the rows") -> None:
    """Raise ``ModscopeError`` if a streamed covariance accumulator met a NaN or inf.

    Any non-finite input value makes the running mean or scatter non-finite (NaN propagates, and inf - inf is NaN),
    so checking the accumulated moments covers streamed sources without a second pass over the rows.
    """
    if not (np.all(np.isfinite(acc.mean)) and np.all(np.isfinite(acc.scatter))):
        raise ModscopeError(f"{what} contain NaN or inf; {ADVICE}")
