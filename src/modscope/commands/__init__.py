"""CLI command groups, one module per capability; each exposes ``register(app)`` (and ``demo_steps()`` if any)."""

from __future__ import annotations

import importlib

import typer

# Order is the order of `modscope --help` and of the demo.
MODULES = ("foundation", "stats", "jacobian", "geometry", "clusters", "weights", "training", "grokking",
           "memorization", "sae", "distributed", "calibrate", "demo")


def modules():
    return [importlib.import_module(f"modscope.commands.{name}") for name in MODULES]


def register_all(app: typer.Typer) -> None:
    for module in modules():
        module.register(app)
