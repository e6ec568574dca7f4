"""Each package's __init__ is its face: every exported name resolves to the call or type, not to a module."""

import importlib
import types

import pytest

PACKAGES = ["modscope", "modscope.capture", "modscope.corpus", "modscope.geometry", "modscope.jacobian",
            "modscope.models", "modscope.sae", "modscope.stats", "modscope.training", "modscope.weights"]
MODULES_BY_DESIGN = {"modscope.corpus", "modscope.capture"}  # ``from modscope import capture, corpus``


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves(name):
    package = importlib.import_module(name)
    for export in package.__all__:
        value = getattr(package, export)
        if f"{name}.{export}" not in MODULES_BY_DESIGN:
            assert not isinstance(value, types.ModuleType), f"{name}.{export} is a module, not the call"


def test_short_imports_of_the_readme_examples():
    from modscope import capture, corpus, load_model
    from modscope.jacobian import block_spectrum, layer_ranks, path_spectrum
    from modscope.training import count_above, gradient_spectrum

    assert block_spectrum.__module__ == "modscope.jacobian.probes"
    assert {layer_ranks.__name__, path_spectrum.__name__, gradient_spectrum.__name__} == {
        "layer_ranks", "path_spectrum", "gradient_spectrum"}
    assert count_above([4.0, 2.0, 0.3], 0.1) == 2
    assert callable(capture) and capture.ActivationStore.__name__ == "ActivationStore"
    assert corpus.load.__module__ == "modscope.corpus"
    store = capture(load_model("tiny-gpt2"), ["one two three four", "five six"], "resid_post.0", progress=False)
    assert store["resid_post.0"].shape[1] == 64
