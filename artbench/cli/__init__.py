"""The ``artbench`` command line (Typer). User mistakes print one line and exit with code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.markup import escape

from artbench.cli.app import app
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console


def _usage_error_line(exc: typer.TyperException) -> str:
    """One line for a command-line usage mistake, with the help command that explains the usage."""
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{exc.format_message()}{hint}"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``artbench`` console script."""
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="artbench", standalone_mode=False)
    except ArtbenchError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc.__cause__, EOFError):  # click turns an EOFError (a truncated file) into Abort
            raise exc.__cause__ from None
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(0)
        console.print(f"[bold red]error:[/] {escape(_usage_error_line(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
