"""The ``modscope`` command line: parses arguments and calls the library (the maths lives elsewhere)."""

from __future__ import annotations

import sys

import click
import typer

from modscope.commands import register_all
from modscope.errors import ModscopeError

app = typer.Typer(
    name="modscope", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Find modules and information channels inside neural networks with linear algebra.",
)
register_all(app)


def main() -> None:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except ModscopeError as exc:
        print(f"modscope: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Abort:
        print("modscope: interrupted; re-run the same command to continue where it stopped", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("modscope: interrupted; re-run the same command to continue where it stopped", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
