"""README "Common options" is the CLI's vocabulary: every row matches the real --help of every command it names."""

import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from modscope.cli import app
from modscope.errors import ModscopeError

try:  # typer >= 0.24 vendors its own click
    from typer import _click as click
except ImportError:  # pragma: no cover - depends on the installed typer
    import click

README = Path(__file__).resolve().parents[1] / "README.md"
UNSET = {"none", "off"}  # the help shows no default: an optional value, or a flag that is off
# (command, old spelling): hidden from --help, still accepted for one release
OLD_SPELLINGS = [("capture", "--sample-seed"), ("capture-shard", "--sample-seed"), ("capture-shard", "--engine"),
                 ("gradients", "--method"), ("jacobian", "--tokens"), ("cka", "--vs"),
                 ("clusterability", "--n-shuffles"), ("clusterability", "--jobs"), ("spectrum", "--standardize"),
                 ("sweep", "--center"), ("memorization", "--null")]
STORE_AS_ARGUMENT = ["dask-stats", "grad-svd", "gradients"]


def commands(group=None, path=(), parent=None):
    """(command path, click command, help context) of every leaf command behind ``app``."""
    group = group or get_command(app)
    ctx = click.Context(group, info_name=" ".join(path) or "modscope", parent=parent, terminal_width=10_000,
                        max_content_width=10_000)
    if not hasattr(group, "commands"):
        yield " ".join(path), group, ctx
        return
    for name, command in group.commands.items():
        yield from commands(command, (*path, name), ctx)


def help_options(command, ctx) -> dict[str, str]:
    """{--option: the default its --help shows ('none' if it shows none, 'required' if it is required)}."""
    text = command.get_help(ctx).split("Options:", 1)[1]
    records: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            records.append([line])
        elif records and line.strip():
            records[-1].append(line)
    shown = {}
    for record in records:
        first, _, rest = record[0].strip().partition("  ")
        body = " ".join([rest, *record[1:]])
        default = re.search(r"\[default: (.*)\]\s*$", body)
        if default:
            value = default.group(1)
        elif "[required]" in body or "(required)" in body:
            value = "required"
        else:
            value = "none"
        for name in re.findall(r"--[\w-]+", first):
            shown[name] = value
    shown.pop("--help", None)
    return shown


HELP = {path: help_options(command, ctx) for path, command, ctx in commands()}


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def table() -> list[dict]:
    """The rows of README's "Common options" table: option, commands, and {command: default}."""
    section = README.read_text().split("\n## Common options\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `--"):
            continue
        option, _meaning, _values, default, listed = [c.strip() for c in line.strip("|").split(" | ")]
        if listed.startswith("all"):
            cmds = [c for c in HELP if c not in names(listed)]
        else:
            cmds = names(listed)
        defaults: dict[str, str] = {}
        rest = None
        for entry in default.split("; "):
            exact = re.fullmatch(r"(.*?)\s*\(((?:`[^`]+`(?:, )?)+)\)", entry)
            value = entry if exact is None else exact.group(1)
            value = names(value)[0] if value.startswith("`") else re.split(r"[:\s]", value)[0]
            if exact is None:
                rest = value
            else:
                defaults.update(dict.fromkeys(names(exact.group(2)), value))
        defaults.update({c: rest for c in cmds if c not in defaults})
        rows.append({"option": names(option)[0], "commands": cmds, "defaults": defaults})
    return rows


ROWS = table()


def test_the_table_is_found_and_names_only_real_commands():
    assert len(ROWS) >= 30
    assert {"--model", "--twin", "--seed", "--store", "--engine", "--out", "--sites"} <= {r["option"] for r in ROWS}
    for row in ROWS:
        unknown = [c for c in row["commands"] if c not in HELP]
        assert not unknown, f"{row['option']}: no such command {unknown}"
        assert None not in row["defaults"].values(), f"{row['option']}: a listed command has no default"


@pytest.mark.parametrize("row", ROWS, ids=[r["option"] for r in ROWS])
def test_every_named_command_shows_the_option_with_the_tabled_default(row):
    for command in row["commands"]:
        shown = HELP[command]
        assert row["option"] in shown, f"`{command} --help` has no {row['option']}"
        expected, actual = row["defaults"][command], shown[row["option"]]
        if expected in UNSET:
            assert actual == "none", f"{command} {row['option']}: README says no default, --help shows {actual}"
        else:
            assert actual == expected, f"{command} {row['option']}: README says {expected}, --help shows {actual}"


def test_every_command_with_a_tabled_option_is_named_in_its_row():
    for row in ROWS:
        having = {c for c, shown in HELP.items() if row["option"] in shown}
        assert having == set(row["commands"]), f"{row['option']}: commands differ by {having ^ set(row['commands'])}"


def test_every_option_shared_by_two_commands_is_in_the_table():
    tabled = {r["option"] for r in ROWS}
    counts: dict[str, int] = {}
    for shown in HELP.values():
        for option in shown:
            counts[option] = counts.get(option, 0) + 1
    shared = {o for o, n in counts.items() if n >= 2}
    assert shared <= tabled, f"options of several commands missing from README: {sorted(shared - tabled)}"


def test_engines_are_local_or_dask_with_one_default():
    engines = {c: shown["--engine"] for c, shown in HELP.items() if "--engine" in shown}
    assert len(engines) >= 5 and set(engines.values()) == {"local"}
    assert HELP["jacobian"]["--twin"] == "random" and HELP["cka"]["--twin"] == "random"


@pytest.mark.parametrize("command, old", OLD_SPELLINGS)
def test_old_spellings_stay_accepted_but_hidden_and_are_written_down(command, old):
    leaf = {path: c for path, c, _ in commands()}[command]
    params = [p for p in leaf.params if old in (*p.opts, *p.secondary_opts)]
    assert params and all(p.hidden for p in params), f"{command} {old}: not a hidden alias"
    assert old not in HELP[command]
    paragraph = README.read_text().split("Old spellings, hidden from", 1)[1].split("\n\n", 1)[0]
    assert old in paragraph


@pytest.mark.parametrize("command", STORE_AS_ARGUMENT)
def test_a_store_given_as_first_argument_is_still_read_and_both_forms_must_agree(command, tmp_path):
    runner = CliRunner()
    extra = ["--site", "x"] if command == "dask-stats" else []
    missing = tmp_path / "missing"
    old = runner.invoke(app, [command, str(missing), *extra])
    new = runner.invoke(app, [command, "--store", str(missing), *extra])
    # the same store is opened either way: the same refusal of a directory that holds no store
    assert isinstance(old.exception, ModscopeError) and isinstance(new.exception, ModscopeError)
    assert str(old.exception) == str(new.exception) and str(missing) in str(new.exception)
    both = runner.invoke(app, [command, str(tmp_path / "a"), "--store", str(tmp_path / "b"), *extra])
    assert isinstance(both.exception, ModscopeError) and "two stores" in str(both.exception)
    neither = runner.invoke(app, [command, *extra])
    assert isinstance(neither.exception, ModscopeError) and "--store" in str(neither.exception)


@pytest.mark.parametrize("args, message", [
    (["clusterability", "--model", "tiny-gpt2", "--twin", "none", "--n-shuffles", "1"],
     "--shuffles must be at least 2"),
    (["clusterability", "--model", "tiny-gpt2", "--twin", "none", "--jobs", "0"], "--workers must be at least 1"),
    (["jacobian", "--model", "tiny-gpt2", "--twin", "none", "--text", "a b c d e f", "--tokens", "two"],
     "--token-counts must be comma-separated integers"),
    (["capture-shard", "--model", "tiny-gpt2", "--engine", "threads", "--out", "{tmp}/s"], "--backend must be one of"),
])
def test_an_old_spelling_reaches_the_new_option(tmp_path, args, message):
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert isinstance(result.exception, ModscopeError), result.output
    assert message in str(result.exception)


class Reached(Exception):
    """Raised by a stand-in for the library call, to read the arguments the command passed."""


@pytest.mark.parametrize("argv, target, keyword, value", [
    (["sweep"], "modscope.training.sweep.run_sweep", "centre", False),
    (["sweep", "--centre"], "modscope.training.sweep.run_sweep", "centre", True),
    (["sweep", "--center"], "modscope.training.sweep.run_sweep", "centre", True),
    (["sweep", "--centre", "--no-center"], "modscope.training.sweep.run_sweep", "centre", False),
    (["memorization"], "modscope.training.memorization.memorization_report", "shuffled_null", True),
    (["memorization", "--no-shuffled-null"], "modscope.training.memorization.memorization_report", "shuffled_null",
     False),
    (["memorization", "--no-null"], "modscope.training.memorization.memorization_report", "shuffled_null", False),
])
def test_flags_under_the_old_and_the_new_spelling_reach_the_library(monkeypatch, argv, target, keyword, value):
    import importlib

    seen = {}

    def stand_in(*args, **kwargs):
        seen.update(kwargs)
        raise Reached

    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(module), name, stand_in)
    result = CliRunner().invoke(app, argv)
    assert isinstance(result.exception, Reached), result.output
    assert seen[keyword] is value
