"""The ``artbench`` command line (Typer). User mistakes print one line and exit with code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.markup import escape

from artbench.cli.app import app
from artbench.errors import ArtbenchError
from artbench.progress import console


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``artbench`` console script."""
    try:
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except ArtbenchError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        console.print("[yellow]aborted[/]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
