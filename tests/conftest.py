"""Shared fixtures: tiny models are cached per session (building one takes ~0.1 s, but tests use them a lot)."""

from __future__ import annotations

import pytest

from modscope import load_model


@pytest.fixture(scope="session")
def tiny_gpt2():
    return load_model("tiny-gpt2")


@pytest.fixture(scope="session")
def tiny_llama():
    return load_model("tiny-llama")
