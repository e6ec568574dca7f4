"""The ``modscope`` command line: parses arguments and calls the library (the maths lives elsewhere)."""

from __future__ import annotations

import sys

import typer

from modscope.commands import register_all
from modscope.errors import ModscopeError

try:  # typer >= 0.24 vendors its own click; older typer uses the click package
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the installed typer
    import click  # type: ignore[no-redef]

ClickException = click.exceptions.ClickException
UsageError = click.exceptions.UsageError
# Abort lives in typer.exceptions when click is vendored, in click.exceptions otherwise
Abort = getattr(click.exceptions, "Abort", None) or getattr(typer.exceptions, "Abort", KeyboardInterrupt)
INTERRUPTED = "modscope: interrupted; re-run the same command to continue where it stopped"

app = typer.Typer(
    name="modscope", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    # plain help: rich markup would turn 'range:A:B' into 'range🅰B' (':A:' is an emoji code)
    rich_markup_mode=None,
    help="Find modules and information channels inside neural networks with linear algebra.",
)
register_all(app)


def usage_line(exc: ClickException) -> str:
    """One line for a usage error: what was wrong and where the help is."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"modscope: error: {message}{hint}"


def main() -> None:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False, prog_name="modscope")  # what the user types, however it was started
    except ModscopeError as exc:
        print(f"modscope: error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    except (Abort, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `modscope` alone: the help, as asked
            exc.show()
            sys.exit(0)
        print(usage_line(exc), file=sys.stderr)
        sys.exit(2 if isinstance(exc, UsageError) else exc.exit_code)
    if code == 130:  # typer turns Ctrl-C inside a command into a silent exit code 130
        print(INTERRUPTED, file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
