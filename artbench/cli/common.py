"""What the command modules share: the stdout console, common options, plugin loading and SIGTERM handling."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from artbench.core.registry import load_plugin

out = Console()

PluginOpt = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Module name or .py file registering extra methods/datasets (repeatable)."),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder for runs and the default MLflow store.")]


def load_plugins(plugins: list[str] | None) -> None:
    for module in plugins or []:
        load_plugin(module)


def split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a scheduler, a service manager, ``kill``) stops a command as Ctrl-C does: a run
    keeps its finished seeds and the checkpoint of the seed in progress for ``--resume``; the UI stops its server
    (issue 14, "Hardening")."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
