"""``artbench tasks list``, ``methods list/show`` and ``metrics list``: what is registered."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from artbench.cli.common import PluginOpt, load_plugins, out
from artbench.core.progress import console as err_console

tasks_app = typer.Typer(help="Benchmark tasks.", no_args_is_help=True)
methods_app = typer.Typer(help="Training methods.", no_args_is_help=True)
metrics_app = typer.Typer(help="Evaluation metrics.", no_args_is_help=True)


@tasks_app.command(
    "list", epilog="Examples:\n\n  artbench tasks list\n\n  ARTBENCH_TASKS=~/my-tasks artbench tasks list"
)
def tasks_list(plugin: PluginOpt = None) -> None:
    """List the benchmark tasks."""
    from artbench.tasks import list_tasks

    load_plugins(plugin)
    table = Table(title="tasks")
    table.add_column("name", overflow="fold")
    for col in ("dataset", "targets", "split", "description"):
        table.add_column(col)
    problems: list[str] = []
    for t in list_tasks(problems):
        targets = ", ".join(t.name if t.kind == "multiclass" else f"{t.name} ({t.kind})" for t in t.targets)
        table.add_row(t.name, t.dataset, targets, t.split.protocol, t.description)
    out.print(table)
    for problem in problems:
        err_console.print(f"[yellow]warning:[/] skipped {escape(problem)}", soft_wrap=True)


@methods_app.command(
    "list", epilog="Examples:\n\n  artbench methods list\n\n  artbench methods list --plugin my_methods.py"
)
def methods_list(plugin: PluginOpt = None) -> None:
    """List the registered methods."""
    from artbench.methods import METHODS

    load_plugins(plugin)
    table = Table(title="methods")
    table.add_column("name", no_wrap=True, min_width=max(map(len, METHODS.names()), default=4))
    for col in ("family", "target kinds", "description", "reference"):
        table.add_column(col)
    for name in METHODS.names():
        m = METHODS.get(name)
        table.add_row(name, m.family.__name__, ", ".join(sorted(m.family.supports)), m.description, m.reference)
    out.print(table)


@methods_app.command("show", epilog="Examples:\n\n  artbench methods show mtl_fo_rall")
def methods_show(
    name: Annotated[str, typer.Argument(help="Method name (see `artbench methods list`).")],
    plugin: PluginOpt = None,
) -> None:
    """A method's parameters: defaults (the recipe's fixed values marked *) and what each one means."""
    from artbench.core.params import param_docs
    from artbench.methods import METHODS

    load_plugins(plugin)
    entry = METHODS.get(name)
    out.print(f"[bold]{name}[/]: {escape(entry.description)}")
    out.print(f"family {entry.family.__name__}; learns {', '.join(sorted(entry.family.supports))}")
    if entry.reference:
        out.print(f"reference: {escape(entry.reference)}")
    table = Table(
        caption=escape("* fixed by the recipe (a task's [defaults] cannot change it; --config and --set can)")
    )
    for col in ("parameter", "default", "meaning"):
        table.add_column(col)
    for key, default, doc in param_docs(entry.family):
        value = entry.fixed.get(key, default)
        shown = list(value) if isinstance(value, tuple) else value
        table.add_row(key, escape(repr(shown)) + (" *" if key in entry.fixed else ""), escape(doc))
    out.print(table)


@metrics_app.command("list", epilog="Example:\n\n  artbench metrics list")
def metrics_list(plugin: PluginOpt = None) -> None:
    """List the registered metrics with the target kinds they apply to."""
    from artbench.evaluation.metrics import METRICS

    load_plugins(plugin)
    table = Table(title="metrics")
    table.add_column("name", overflow="fold")
    for col in ("label", "kinds", "needs scores", "better"):
        table.add_column(col)
    for name in METRICS.names():
        m = METRICS.get(name)
        better = "higher" if m.higher_is_better else "lower"
        table.add_row(name, m.label, ", ".join(sorted(m.kinds)), "yes" if m.needs_scores else "", better)
    out.print(table)
