"""What the command modules share: the stdout console, common options and plugin loading."""

from __future__ import annotations

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
