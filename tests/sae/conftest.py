"""Shared fixtures of the SAE tests: a planted sparse dictionary."""

from __future__ import annotations

import pytest

from modscope.sae.planted import planted_dictionary


@pytest.fixture(scope="session")
def planted():
    return planted_dictionary()
