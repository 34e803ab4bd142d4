"""``artbench run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from artbench.cli.common import OutOpt, PluginOpt, load_plugins, out, sigterm_as_interrupt
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console as err_console

MAX_SEEDS = 1000

CompileOpt = Annotated[
    bool,
    typer.Option(
        help="torch.compile the torch models (in place; checkpoints stay eager-compatible). Off by default: see the "
        "README's Performance section. Falls back to eager with a warning where the compiler does not work."
    ),
]
DeterministicOpt = Annotated[
    bool,
    typer.Option(
        "--deterministic",
        help="Repeatable CUDA runs: deterministic kernels only, cuBLAS workspace config, no cuDNN autotuning "
        "(slower; CPU runs are repeatable without it).",
    ),
]


def run(
    task: Annotated[str, typer.Argument(help="Task name (see `artbench tasks list`) or path to a task .toml.")],
    method: Annotated[str, typer.Argument(help="Method name (see `artbench methods list`).")],
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="With --resume: the run folder to continue (default: the latest run in --out with the same task, "
            "method and settings)."
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_SEEDS, help="Number of training seeds (1..N); default 1, or the resumed run's."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run: finished seeds are kept, unfinished ones trained (from their last "
            "epoch's checkpoint); a run with other settings is an error naming them.",
        ),
    ] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a method parameter: key=value.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Recipe file whose \\[config] table sets method parameters.")
    ] = None,
    out_dir: OutOpt = Path("artbench-out"),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (no effect on the CPU).")] = True,
    compile: CompileOpt = False,
    deterministic: DeterministicOpt = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI ('none' disables tracking). Default: $MLFLOW_TRACKING_URI, "
            "else a SQLite store in --out."
        ),
    ] = None,
    plugin: PluginOpt = None,
) -> None:
    """Train METHOD on TASK over several seeds, evaluate on the test split and print mean ± std.

    Ctrl-C or SIGTERM keeps the finished seeds and the checkpoint of the seed in progress: the same command with
    --resume continues the run."""
    from artbench.core.device import resolve_device
    from artbench.core.params import load_config_file, parse_set_option
    from artbench.evaluation.metrics import metric_label
    from artbench.methods import METHODS
    from artbench.runner import RunInterrupted, resolve_method, summary_rows
    from artbench.runner import run as run_benchmark
    from artbench.tasks import load_task
    from artbench.tracking.mlflow import default_tracking_uri

    if run_dir is not None and not resume:
        raise ArtbenchError(
            f"a run folder ({run_dir}) is only taken with --resume: artbench run TASK METHOD --resume DIR"
        )
    load_plugins(plugin)
    task_spec = load_task(task)
    entry = METHODS.get(method)
    file_layer = load_config_file(config) if config else {}
    set_layer = dict(parse_set_option(s) for s in set_ or [])
    chosen = resolve_method(entry, task_spec, file_layer, set_layer, str(config))
    dev = resolve_device(device)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(out_dir)
    try:
        with sigterm_as_interrupt():
            outcome = run_benchmark(
                task_spec,
                entry,
                chosen,
                seeds=seeds,
                out_dir=out_dir,
                device=dev,
                amp=amp,
                compile=compile,
                deterministic=deterministic,
                tracking_uri=None if uri == "none" else uri,
                resume=run_dir or resume,
            )
    except RunInterrupted as stop:
        err_console.print(
            f"[yellow]interrupted[/]: {len(stop.seeds_completed)} finished seed(s) saved in {stop.run_dir}; "
            "the run is marked incomplete; continue it with the same command and --resume",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/] before training started; no run was written")
        raise typer.Exit(130) from None
    table = Table(
        title=f"{task_spec.name} · {entry.name} · {len(outcome.seeds_completed)} seed(s)",
        caption="test split, mean ± std over seeds; scores in %",
    )
    table.add_column("target")
    for metric in task_spec.metrics:
        table.add_column(metric_label(metric), justify="right")
    rows = summary_rows(outcome.summary, outcome.targets, task_spec.metrics)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*rows[-1], style="bold")
    out.print(table)
    if outcome.status == "undefined":
        _warn_undefined(outcome.summary, outcome.targets)
    if resume and not outcome.seeds_trained and not outcome.seeds_busy:
        out.print(f"nothing to resume: seeds {_seed_list(outcome.seeds_completed)} were already finished")
    if outcome.seeds_busy:
        out.print(f"seed(s) {_seed_list(outcome.seeds_busy)} are being trained by another process; status incomplete")
    out.print(f"results: {outcome.run_dir}")
    if uri != "none" and outcome.tracking_lost:
        out.print(f"MLflow:  {uri}: logging stopped part-way ({outcome.tracking_lost}); the results folder is complete")
    elif uri != "none":
        out.print(f"MLflow:  {uri} (experiment '{task_spec.name}')")


def _warn_undefined(summary: dict[str, dict[str, Any]], targets: list[str]) -> None:
    """Say that no metric of the run is defined, and how many labelled test samples each target had."""
    counts = ", ".join(f"{t} {(summary.get(f'{t}.num_samples') or {}).get('mean') or 0:g}" for t in targets)
    err_console.print(
        "[yellow]warning:[/] no metric is defined in any seed (test samples with a known label, per target: "
        f"{counts}); the run's status is 'undefined', and leaderboards and compare leave it out",
        soft_wrap=True,
    )


def _seed_list(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) or "none"
