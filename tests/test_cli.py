"""The command line: foundation commands work, and bad input is one line on stderr with exit code 2."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from modscope.capture import ActivationStore
from modscope.cli import app

runner = CliRunner()


def test_sites_lists_every_site_with_its_shape():
    result = runner.invoke(app, ["sites", "tiny-llama", "--json"])
    assert result.exit_code == 0, result.output
    sites = json.loads(result.stdout)["sites"]
    assert sites["head_out.1"] == [4, 64] and sites["mlp_act.0"] == [128] and sites["logits"] == [257]


def test_models_lists_the_offline_models():
    result = runner.invoke(app, ["models", "--json"])
    names = [row["name"] for row in json.loads(result.stdout)]
    assert {"smollm2-135m", "random:smollm2-135m", "tiny-gpt2", "tiny-neox"} <= set(names)


def test_capture_writes_a_store_and_a_rerun_keeps_it(tmp_path):
    (tmp_path / "docs" / "notes").mkdir(parents=True)
    (tmp_path / "docs" / "notes" / "a.txt").write_text("a short note about linear algebra " * 5)
    args = ["capture", "--model", "tiny-gpt2", "--corpus", str(tmp_path / "docs"), "--sites", "resid_post.*",
            "--out", str(tmp_path / "store"), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rows"] == 170
    assert runner.invoke(app, args).exit_code == 0
    assert ActivationStore.open(tmp_path / "store").n_rows == 170


@pytest.mark.parametrize("argv, message", [
    (["capture", "--model", "tiny-gpt2", "--sites", "nope.*", "--out", "{tmp}/s"], "unknown site 'nope.*'"),
    (["capture", "--model", "tiny-gpt2", "--max-tokens", "0", "--out", "{tmp}/s"], "--max-tokens must be > 0"),
    (["sites", "./missing-model-dir"], "does not exist"),
    (["report", "{tmp}/nothing-here"], "is not a directory"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "modscope.cli", *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("modscope: error:") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()  # nothing half-written


def _commands(group, path=()):
    """Every (path, command) of the click tree behind ``app``."""
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name), command
        yield from _commands(command, (*path, name))


def test_help_prints_what_the_user_types_no_emoji_or_markup_substitutions():
    import typer

    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "1000"})
        assert result.exit_code == 0, (path, result.output)
        source = " ".join([command.help or "", *(getattr(p, "help", "") or "" for p in command.params),
                           *(c.help or "" for c in getattr(command, "commands", {}).values())])
        added = {ch for ch in result.output if not ch.isascii()} - set(source)
        assert not added, (path, added)  # no emoji or symbol the source text does not contain
        for param in command.params:
            text = "".join((param.help or "").split())  # compared without whitespace: help text is re-wrapped
            if text:  # each option's help appears as written (no ':A:' -> emoji, no [markup] dropped)
                assert text in "".join(result.output.split()), (path, param.name, text)
                checked += 1
    assert checked > 50
    capture_help = runner.invoke(app, ["capture", "--help"], env={"COLUMNS": "1000"}).output
    assert "range:A:B" in capture_help and "\U0001f170" not in capture_help


def test_usage_errors_and_ctrl_c_are_one_line_whatever_click_typer_ships(monkeypatch, capsys):
    import modscope.cli as cli

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    for argv, code, line in [(["modscope", "sites", "tiny-gpt2", "--bogus"], 2,
                              "modscope: error: No such option: --bogus (see 'modscope sites --help')"),
                             (["modscope", "capture", "--model", "tiny-gpt2", "--ctx", "x", "--out", "o"], 2,
                              "modscope: error: Invalid value for '--ctx'")]:
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == code and len(err) == 1 and err[0].startswith(line), err
    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 130 and err == [cli.INTERRUPTED]
