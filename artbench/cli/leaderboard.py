"""``artbench leaderboard build`` and ``artbench leaderboard submit``: boards, static site, verified submissions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from artbench.cli.common import PluginOpt, load_plugins, out
from artbench.core.errors import ArtbenchError
from artbench.core.task import TaskSpec

leaderboard_app = typer.Typer(
    help="Leaderboards: rank the finished runs per task, publish them as files and a static site, add verified "
    "submissions.",
    no_args_is_help=True,
)

RunsOpt = Annotated[Path, typer.Option("--runs", help="Folder of the runs: the --out of `artbench run`.")]
BoardsOpt = Annotated[
    Path, typer.Option("--out", help="Leaderboards folder: boards (md, csv, json), HTML site, submissions.")
]
TrackingOpt = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI for the leaderboard runs ('none' disables). Default: $MLFLOW_TRACKING_URI, "
        "else the SQLite store in --runs, beside the training runs."
    ),
]


def resolve_task(name: str, runs_dir: Path) -> TaskSpec:
    """A task by name or ``.toml`` path; a task that is in no task folder is found through the ``task_file`` that
    its runs recorded in ``config.json``."""
    from artbench.results.store import find_runs
    from artbench.tasks import load_task

    try:
        return load_task(name)
    except ArtbenchError:
        for run in reversed(find_runs(runs_dir, name)):
            task_file = str(run.config.get("task_file") or "")
            if task_file.endswith(".toml") and Path(task_file).is_file():
                spec = load_task(task_file)
                if spec.name == name:
                    return spec
        raise


def _tracking(uri: str | None, runs_dir: Path) -> str | None:
    from artbench.tracking.mlflow import default_tracking_uri, probe_tracking_uri

    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(runs_dir)
    if chosen == "none":
        return None
    probe_tracking_uri(chosen)
    return chosen


def _tasks_with_runs(runs_dir: Path, boards_dir: Path) -> list[str]:
    from artbench.results.leaderboard import SUBMISSIONS
    from artbench.results.store import find_runs

    names = {r.task for r in find_runs(runs_dir) if r.status == "complete"}
    submissions = boards_dir / SUBMISSIONS
    if submissions.is_dir():
        names |= {p.name for p in submissions.iterdir() if p.is_dir() and any(p.iterdir())}
    return sorted(names)


def _print_published(published: list, boards_dir: Path) -> None:
    from artbench.results.leaderboard import column_label, format_value

    table = Table(title="leaderboards", caption=f"site: {boards_dir / 'index.html'}")
    for col in ("task", "rows", "leader", "score", "page"):
        table.add_column(col)
    for board, files in published:
        leader = board.measured[0]
        key = f"overall.{board.ranking}"
        page = next(str(f) for f in files if f.suffix == ".html")
        table.add_row(
            board.task.name,
            str(len(board.measured)),
            leader.name,
            f"{column_label(key)} {format_value(leader, key)}",
            page,
        )
    out.print(table)


@leaderboard_app.command(
    epilog="Examples:\n\n  artbench leaderboard build\n\n"
    "  artbench leaderboard build --task silknow-synth --runs artbench-out --out leaderboards"
)
def build(
    task: Annotated[
        list[str] | None,
        typer.Option("--task", help="Task name or .toml (repeatable). Default: every task with complete runs."),
    ] = None,
    runs: RunsOpt = Path("artbench-out"),
    out_dir: BoardsOpt = Path("leaderboards"),
    tracking_uri: TrackingOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Rank the methods of each task by its first metric and write the boards and the static site."""
    from artbench.results.site import publish

    load_plugins(plugin)
    names = task or _tasks_with_runs(runs, out_dir)
    if not names:
        raise ArtbenchError(f"no complete run in {str(runs)!r}; run `artbench run TASK METHOD` first or pass --runs")
    specs = [resolve_task(name, runs) for name in names]
    published = publish(specs, runs, out_dir, _tracking(tracking_uri, runs))
    _print_published(published, out_dir)


@leaderboard_app.command(
    epilog="Examples:\n\n  artbench leaderboard submit my-method.tar.gz\n\n"
    "  artbench leaderboard submit artbench-out/silknow-synth/mtl/20261126-101500-a1b2c3 --out leaderboards"
)
def submit(
    submission: Annotated[
        Path, typer.Argument(help="Run folder, .tar.gz, .tgz, .tar or .zip (layout: leaderboards/README.md).")
    ],
    task: Annotated[
        str | None, typer.Option(help="Task name or .toml. Default: the task named in the submission.")
    ] = None,
    runs: RunsOpt = Path("artbench-out"),
    out_dir: BoardsOpt = Path("leaderboards"),
    tracking_uri: TrackingOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Verify a submission (every score recomputed from its predictions) and add it to the task's board."""
    from artbench.results.leaderboard import column_label, format_value
    from artbench.results.site import publish
    from artbench.results.submission import submit as submit_entry

    load_plugins(plugin)
    fixed = resolve_task(task, runs) if task else None
    uri = _tracking(tracking_uri, runs)
    verified, entry = submit_entry(submission, lambda name: fixed or resolve_task(name, runs), out_dir)
    published = publish([verified.task], runs, out_dir, uri)
    board = published[0][0]
    row = next(e for e in board.measured if e.run is not None and e.run.run_dir == entry)
    key = f"overall.{board.ranking}"
    out.print(
        f"accepted: {escape(verified.name)} on {escape(verified.task.name)}, {len(verified.metrics)} seed(s), "
        f"every score recomputed; {column_label(key)} {format_value(row, key)}, rank {row.rank}",
        soft_wrap=True,
    )
    out.print(f"entry:   {entry}")
    out.print(f"board:   {out_dir / (verified.task.name + '.html')}")
