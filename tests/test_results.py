"""Every probe result: JSON round trip to the same type, array-safe equality, tables."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import types
import typing

import numpy as np
import pytest

import modscope
from modscope.results import Result


def result_types() -> list[type]:
    for info in pkgutil.walk_packages(modscope.__path__, "modscope."):
        if not info.name.startswith(("modscope.commands", "modscope.cli")):  # the CLI holds no results
            importlib.import_module(info.name)
    found, todo = set(), [Result]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def sample(kind, depth=0):
    """A value of annotation ``kind`` with the awkward cases in it (NaN, ±inf, nesting)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), depth)
    if kind is np.ndarray:
        return np.array([[1.5, np.nan], [np.inf, -2.0]])
    if kind is float:
        return float("inf")
    if kind is bool:
        return True
    if kind is int:
        return 3
    if kind is str:
        return "exact"
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return build(kind, depth + 1)
    if origin is list:
        return [sample(args[0], depth), sample(args[0], depth)] if args else [1, "a", None]
    if origin is tuple:
        return tuple(sample(args[0], depth) for _ in range(2)) if args[-1] is Ellipsis else \
            tuple(sample(a, depth) for a in args)
    if origin is dict and args:
        return {"first": sample(args[1], depth), "second": sample(args[1], depth)}
    return {"a": [1.0, None], "b": {"c": "inf"}}  # dict, Any, object: kept as plain JSON


def build(cls, depth=0):
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name], depth) for f in dataclasses.fields(cls) if f.init})


RESULTS = result_types()
# results whose JSON holds every field, nested ones included: they come back equal to the original
FULL_JSON = {"MIResult", "MICurve", "ModelMIResult", "MassiveActivations", "HistogramResult", "CKAMap", "LossResult",
             "RankComparison", "SubspaceAlignment", "LayerRanks", "MINull", "ClusterResult", "Memorization"}


def test_every_probe_result_is_a_frozen_dataclass():
    assert len(RESULTS) >= 45
    for cls in RESULTS:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls


@pytest.mark.parametrize("cls", RESULTS, ids=lambda c: c.__name__)
def test_from_json_rebuilds_the_same_result(cls):
    original = build(cls)
    saved = json.dumps(original.to_json())
    loaded = cls.from_json(saved)
    assert type(loaded) is cls
    assert json.dumps(loaded.to_json()) == saved
    kept = [f.name for f in dataclasses.fields(cls) if f.name not in cls._json_exclude]
    assert all(np.array_equal(getattr(loaded, n), getattr(original, n), equal_nan=True)
               for n in kept if isinstance(getattr(original, n), np.ndarray))
    assert cls.from_json(loaded.to_json()) == loaded  # what the JSON holds comes back whole
    if not cls._json_exclude and cls.__name__ in FULL_JSON:
        assert loaded == original


def test_from_json_reads_a_probe_result_file(tmp_path):
    from modscope.report.page import write_probe
    from modscope.stats import gaussian_mi

    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    result = gaussian_mi(x, x @ rng.standard_normal((3, 2)) + rng.standard_normal((400, 2)), permutations=19)
    write_probe(tmp_path, probe="mi", title="t", question="q", result=result)
    loaded = type(result).from_json(tmp_path / "result.json")
    assert loaded == result
    assert isinstance(loaded.canonical_correlations, np.ndarray)
    assert loaded.perm_null.shape == (19,)


def test_equality_compares_arrays_by_value():
    from modscope.stats import spectrum

    x = np.random.default_rng(1).standard_normal((200, 6))
    a, b = spectrum(x, shuffle=False), spectrum(x.copy(), shuffle=False)
    assert a == b and hash(a) == hash(b)
    c = spectrum(x[:150], shuffle=False)
    assert a != c
    assert len({a, b, c}) == 2


def test_nested_results_come_back_as_their_types():
    from modscope.jacobian.results import BlockSpectrum
    from modscope.jacobian.spectrum import JacobianSpectrum

    block = build(BlockSpectrum)
    loaded = BlockSpectrum.from_json(block.to_json())
    assert isinstance(loaded.spectrum, JacobianSpectrum)
    assert np.isinf(loaded.reproduction_error)
    assert np.isnan(loaded.spectrum.singular_values[0, 1])


def test_default_to_frame_has_one_row_per_element():
    from modscope.stats.curve import MICurve

    curve = build(MICurve)
    frame = curve.to_frame()
    assert list(frame.columns) == ["n", "mi", "mi_corrected", "null_mean", "null_sd", "z"]
    assert len(frame) == 2


def test_results_without_a_table_say_so():
    from modscope.stats.mi import MIResult

    with pytest.raises(TypeError, match="not a table"):
        build(MIResult).to_frame()


def test_a_saved_mi_run_reloads_as_its_type_with_the_same_table(tmp_path):
    from modscope import capture, load_model
    from modscope.report.page import write_probe
    from modscope.stats.mi import MIResult
    from modscope.stats.model_mi import ModelMIResult, mi_of_stores

    texts = ["The quick brown fox jumps over the lazy dog. " * 20, "def f(x):\n    return x * 2\n" * 25]
    store = capture(load_model("tiny-gpt2"), texts, "resid_post.*", out=tmp_path / "store", progress=False)
    result = mi_of_stores(store, None, ["resid_post.0", "resid_post.1"], pair="layers", curve_points=3)
    write_probe(tmp_path / "mi", probe="mi", title="MI", question="q", result=result)
    loaded = ModelMIResult.from_json(tmp_path / "mi" / "result.json")
    assert loaded == result
    assert isinstance(loaded.results[0], MIResult) and loaded.results[0].canonical_correlations.shape == (64,)
    assert loaded.to_frame().equals(result.to_frame()) and list(loaded.to_frame()["n"]) == [store.n_rows]
    assert loaded.table().equals(loaded.to_frame())  # the old name still answers


def test_new_result_types_draw_what_they_hold():
    from modscope.sae.log import TrainingLog
    from modscope.stats import mi_null, subspace
    from modscope.training.gram import GradGram
    from modscope.weights.spectral import spectral_clusters

    null = mi_null(500, 3, 4)
    assert null.plot().get_lines()[0].get_xdata()[0] == pytest.approx(null.mean - 3 * null.sd)
    partition = spectral_clusters([np.kron(np.eye(2), np.ones((3, 3)))], 2)
    assert list(partition.plot().get_lines()[0].get_ydata()) == list(partition.eigenvalues)
    gram = np.array([[2.0, 1.0], [1.0, 3.0]])
    image = GradGram(gram, {}, ("w",), np.arange(2), 5).plot().get_images()[0]
    assert np.array_equal(image.get_array(), gram)
    log = TrainingLog(steps=[1, 2], tokens=[10, 20], loss=[3.0, 1.0], mse=[2.0, 0.5], l0=[8.0, 4.0], dead=[0, 1],
                      aux_loss=[0.0, 0.1])
    assert list(log.plot().get_lines()[0].get_ydata()) == [3.0, 1.0]
    assert list(log.to_frame()["loss"]) == [3.0, 1.0]
    sub = subspace(np.diag([4.0, 1.0, 0.0]))
    assert list(sub.plot().get_lines()[0].get_ydata()) == [4.0, 1.0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        log.seconds = 1.0
