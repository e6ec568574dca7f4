"""CLI commands for the weights capability."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to ``app``."""


def demo_steps() -> list:
    """This capability's steps of `modscope demo`."""
    return []
