"""A headline number together with its null, so the report can show value, null and distance from it side by side."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits ("-" for missing, "inf" / "nan" spelled out)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}"  # non-finite values format as "nan", "inf", "-inf"


def duration(seconds: float | None) -> str:
    """``seconds`` as "N s" or "M min SS s" ("-" when unknown)."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


@dataclass(frozen=True)
class Number:
    """One headline number and the null it is compared with.

    ``z = (value - null) / null_sd`` is the distance from the null in null standard deviations (defined when
    both ``null`` and a positive ``null_sd`` are given). Pass instances in ``write_probe(headline=[...])`` next to
    (or instead of) plain sentences: the page shows ``sentence()``, the run report a table of value, null and z.

    Attributes:
        label: what is measured, e.g. "MI at resid_post.12".
        value: the measurement, in ``unit``.
        unit: e.g. "nats", "bits", "nats/token"; "" for unitless.
        null: the null's mean (same unit), or None when there is no null.
        null_sd: the null's standard deviation (same unit), or None.
        null_name: what the null is, e.g. "random twin", "shuffled weights", "independence".
        digits: significant digits shown.
    """

    label: str
    value: float
    unit: str = ""
    null: float | None = None
    null_sd: float | None = None
    null_name: str = "null"
    digits: int = 3

    @property
    def z(self) -> float | None:
        if self.null is None or not self.null_sd or not math.isfinite(self.null_sd) or self.null_sd <= 0:
            return None
        return (self.value - self.null) / self.null_sd

    def sentence(self) -> str:
        """E.g. "MI at layer 12: 4.1 nats (independence 0.01 ± 0.1; 41 sd above)"."""
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.label}: {fmt(self.value, self.digits)}{unit}"
        if self.null is None:
            return text
        null = f"{self.null_name} {fmt(self.null, self.digits)}"
        if self.null_sd is not None:
            null += f" ± {fmt(self.null_sd, self.digits)}"
        z = self.z
        if z is not None:
            null += f"; {fmt(abs(z), 2)} sd {'above' if z >= 0 else 'below'}"
        return f"{text} ({null})"

    def to_json(self) -> dict[str, Any]:
        from modscope.results import jsonable

        return jsonable({"label": self.label, "value": self.value, "unit": self.unit, "null": self.null,
                         "null_sd": self.null_sd, "null_name": self.null_name, "z": self.z, "digits": self.digits})


def plural(count: int | float, noun: str, plural_form: str | None = None, *, digits: int | None = None) -> str:
    """``count`` and ``noun`` agreeing in number: "1 direction", "0 directions", "2 single dimensions".

    Args:
        count: how many. noun: the singular ("direction", "single dimension"; only the last word is inflected).
        plural_form: an irregular plural ("matrices") replacing the default ``noun + "s"`` / ``"es"``.
        digits: significant digits for a non-integer count (default: printed as an integer with thousands commas).
    """
    one = count == 1
    if plural_form is None:
        plural_form = noun + ("es" if noun.endswith(("s", "x", "z", "ch", "sh")) else "s")
    whole = digits is None and float(count).is_integer()
    number = f"{int(count):,}" if whole else fmt(float(count), digits or 3)
    return f"{number} {noun if one else plural_form}"
