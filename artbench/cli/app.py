"""Typer application: ``run``, ``tasks list``, ``methods list``, ``datasets stats``, ``bench``, ``ui``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from artbench.errors import ArtbenchError
from artbench.progress import console as err_console
from artbench.registry import load_plugin

if TYPE_CHECKING:
    import pandas as pd

    from artbench.data.targets import TargetSpec

app = typer.Typer(
    help="artbench: benchmark suite for machine learning on cultural-heritage collections.\n\n"
    "Example: artbench run silknow-synth mtl --seeds 3",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="Benchmark tasks.", no_args_is_help=True)
methods_app = typer.Typer(help="Training methods.", no_args_is_help=True)
datasets_app = typer.Typer(help="Datasets.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(methods_app, name="methods")
app.add_typer(datasets_app, name="datasets")
out = Console()

PluginOpt = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Module name or .py file registering extra methods/datasets (repeatable)."),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder for runs and the default MLflow store.")]


def _load_plugins(plugins: list[str] | None) -> None:
    for module in plugins or []:
        load_plugin(module)


@app.command(
    epilog="Examples:\n\n  artbench run silknow-synth mtl --seeds 3\n\n"
    "  artbench run silknow-synth mtl_fo_rall --seeds 5 --set lr=3e-4 --set max_epochs=50\n\n"
    "  artbench run my_task.toml mtl --config baselines/silknet.toml --device cuda"
)
def run(
    task: Annotated[str, typer.Argument(help="Task name (see `artbench tasks list`) or path to a task .toml.")],
    method: Annotated[str, typer.Argument(help="Method name (see `artbench methods list`).")],
    seeds: Annotated[int, typer.Option(min=1, help="Number of training seeds (1..N).")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config value: key=value.")] = None,
    config: Annotated[Path | None, typer.Option(help="Recipe file whose \\[config] table overrides defaults.")] = None,
    out_dir: OutOpt = Path("artbench-out"),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI ('none' disables tracking). Default: $MLFLOW_TRACKING_URI, "
            "else a SQLite store in --out."
        ),
    ] = None,
    plugin: PluginOpt = None,
) -> None:
    """Train METHOD on TASK over several seeds, evaluate on the test split and print mean ± std."""
    from artbench.config import load_config_file, parse_set_option, resolve_config, validate_overrides
    from artbench.evaluation.metrics import METRIC_LABELS
    from artbench.methods import METHODS
    from artbench.runner import RunInterrupted, summary_rows
    from artbench.runner import run as run_benchmark
    from artbench.tasks import load_task
    from artbench.tracking.mlflow_tracker import default_tracking_uri
    from artbench.training.device import resolve_device

    _load_plugins(plugin)
    task_spec = load_task(task)
    method_spec = METHODS.get(method)
    file_layer = load_config_file(config) if config else {}
    set_layer = validate_overrides(dict(parse_set_option(s) for s in set_ or []), "--set")
    cfg = resolve_config(task_spec.defaults, method_spec.config, file_layer, set_layer)
    dev = resolve_device(device)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(out_dir)
    try:
        outcome = run_benchmark(
            task_spec,
            method_spec,
            cfg,
            seeds=seeds,
            out_dir=out_dir,
            device=dev,
            tracking_uri=None if uri == "none" else uri,
        )
    except RunInterrupted as stop:
        err_console.print(
            f"[yellow]interrupted[/]: {len(stop.seeds_completed)} finished seed(s) saved in {stop.run_dir}; "
            "the run is marked incomplete",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/] before training started; no run was written")
        raise typer.Exit(130) from None
    table = Table(
        title=f"{task_spec.name} · {method_spec.name} · {len(outcome.seeds_completed)} seed(s)",
        caption="test split, mean ± std over seeds, in %",
    )
    table.add_column("target")
    for metric in task_spec.metrics:
        table.add_column(METRIC_LABELS[metric], justify="right")
    rows = summary_rows(outcome.summary, outcome.targets, task_spec.metrics)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*rows[-1], style="bold")
    out.print(table)
    out.print(f"results: {outcome.run_dir}")
    if uri != "none":
        out.print(f"MLflow:  {uri} (experiment '{task_spec.name}')")


@tasks_app.command(
    "list", epilog="Examples:\n\n  artbench tasks list\n\n  ARTBENCH_TASKS=~/my-tasks artbench tasks list"
)
def tasks_list(plugin: PluginOpt = None) -> None:
    """List the benchmark tasks."""
    from artbench.tasks import list_tasks

    _load_plugins(plugin)
    table = Table(title="tasks")
    for col in ("name", "dataset", "targets", "split", "description"):
        table.add_column(col)
    problems: list[str] = []
    for t in list_tasks(problems):
        table.add_row(t.name, t.dataset, ", ".join(t.target_names), t.split.protocol, t.description)
    out.print(table)
    for problem in problems:
        err_console.print(f"[yellow]warning:[/] skipped {escape(problem)}", soft_wrap=True)


@methods_app.command(
    "list", epilog="Examples:\n\n  artbench methods list\n\n  artbench methods list --plugin my_methods.py"
)
def methods_list(plugin: PluginOpt = None) -> None:
    """List the registered methods."""
    from artbench.methods import METHODS

    _load_plugins(plugin)
    table = Table(title="methods")
    for col in ("name", "strategy", "description", "reference"):
        table.add_column(col)
    for name in METHODS.names():
        m = METHODS.get(name)
        table.add_row(name, m.strategy, m.description, m.reference)
    out.print(table)


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _parse_background(items: list[str]) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        if not sep or not target or not value:
            raise ArtbenchError(f"--background {item!r}: expected TARGET=VALUE, e.g. --background place='bg place'")
        mapping.setdefault(target, []).append(value)
    return mapping


@datasets_app.command(
    "download",
    epilog="Examples:\n\n  artbench datasets download silknow\n\n"
    "  ARTBENCH_DATA=/data artbench datasets download silknow",
)
def datasets_download(
    name: Annotated[str, typer.Argument(help="Dataset name (see `artbench datasets stats --help`).")],
    root: Annotated[str | None, typer.Option(help="Folder to download into (default: under $ARTBENCH_DATA).")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Download a dataset's files (labels and images) into the data home; files already there are kept."""
    import inspect

    from artbench.data.cache import require_images
    from artbench.data.dataset import DATASETS

    _load_plugins(plugin)
    builder = DATASETS.get(name)
    params = inspect.signature(builder).parameters
    if "download" not in params:
        downloadable = [n for n in DATASETS.names() if "download" in inspect.signature(DATASETS.get(n)).parameters]
        raise ArtbenchError(f"dataset {name!r} cannot be downloaded; downloadable datasets: {', '.join(downloadable)}")
    if root and "root" not in params:
        raise ArtbenchError(f"dataset {name!r} has no root option; set ARTBENCH_DATA to choose where it goes")
    dataset = builder(download=True, **({"root": root} if root else {}))
    require_images(dataset)
    groups = dataset.table["group"].nunique()
    out.print(f"{name}: {len(dataset.table)} images of {groups} groups ready")


def _stats_source(
    source: str, targets: str | None, image_col: str, group_col: str | None, background: list[str]
) -> tuple[pd.DataFrame, list[TargetSpec]]:
    """The sample table and target specs that ``datasets stats`` describes: from a task, a dataset or a CSV."""
    from artbench.data.dataset import DATASETS, RESERVED_COLUMNS, read_csv_table
    from artbench.data.targets import TargetSpec
    from artbench.data.task_data import build_dataset, load_dataset, resolve_targets
    from artbench.tasks import load_task, task_names

    is_task = source.endswith(".toml") or source in task_names()
    is_csv = not is_task and (source.endswith(".csv") or Path(source).is_file())
    if not is_csv and (image_col != "image" or group_col is not None):
        raise ArtbenchError("--image-col and --group-col apply to a CSV source only; a task or dataset names its own")
    if is_task and not ((targets is not None or background) and source in DATASETS):
        if targets is not None or background:
            raise ArtbenchError(f"task {source!r} defines its targets and background; drop --targets/--background")
        task = load_task(source)
        table = load_dataset(task).table
        return table, resolve_targets(task, table)
    if is_csv:
        if not targets:
            raise ArtbenchError("a CSV source needs --targets a,b,c naming its target columns")
        table = read_csv_table(source, image_col=image_col, group_col=group_col, targets=_split_names(targets))
    elif source in DATASETS:
        hint = " (for a CSV file pass its path instead)" if source == "csv" else ""
        table = build_dataset(source, {}, f"dataset {source!r}{hint}").table
    else:
        raise ArtbenchError(
            f"{source!r} is neither a task, a dataset ({', '.join(DATASETS.names())}) nor an existing CSV file"
        )
    available = [c for c in table.columns if c not in RESERVED_COLUMNS]
    names = _split_names(targets) if targets is not None else available
    if not names:
        raise ArtbenchError(f"--targets {targets!r} names no target; its targets: {', '.join(available)}")
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise ArtbenchError(f"--targets names {unknown}, which {source!r} lacks; its targets: {available}")
    bg = _parse_background(background)
    unknown = sorted(set(bg) - set(names))
    if unknown:
        raise ArtbenchError(f"--background names {unknown}, which are not among the targets {names}")
    for name, values in bg.items():
        labels = set(table[name].dropna())
        absent = [v for v in values if v not in labels]
        for value in absent:  # legitimate (SilkNet Table 1 has no material background) but often a typo
            shown = ", ".join(sorted(map(str, labels))[:10])
            err_console.print(
                f"[yellow]warning:[/] --background {escape(name)}={escape(repr(value))} matches no sample; "
                f"labels: {escape(shown)}"
            )
    return table, [TargetSpec(n, background=tuple(bg.get(n, []))).with_classes_from(table[n]) for n in names]


@datasets_app.command(
    "stats",
    epilog="Examples:\n\n  artbench datasets stats silknow-synth\n\n"
    "  artbench datasets stats table1.csv --targets place,time --background place='bg place' --json",
)
def datasets_stats(
    source: Annotated[str, typer.Argument(help="Task name, dataset name or path to a CSV file.")],
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    targets: Annotated[
        str | None, typer.Option(help="CSV (required) or dataset: comma-separated target columns.")
    ] = None,
    image_col: Annotated[str, typer.Option(help="CSV only: image column.")] = "image",
    group_col: Annotated[str | None, typer.Option(help="CSV only: group (record) column.")] = None,
    background: Annotated[
        list[str] | None, typer.Option(help="CSV or dataset: TARGET=VALUE background label (repeatable).")
    ] = None,
    plugin: PluginOpt = None,
) -> None:
    """Class statistics per target: counts, label availability, under-represented classes, imbalance ratio."""
    from artbench.data.stats import dataset_statistics

    _load_plugins(plugin)
    table, specs = _stats_source(source, targets, image_col, group_col, background or [])
    stats = dataset_statistics(table, specs)
    if json_:
        typer.echo(json.dumps(stats))
        return
    summary = Table(title=f"{source}: {stats['num_samples']} samples")
    for col in (
        "target",
        "K",
        "labelled",
        "labelled %",
        "background",
        "missing",
        "under-repr.",
        "IR (eq. 9)",
    ):
        summary.add_column(col, justify="left" if col == "target" else "right")
    for name, s in stats["targets"].items():
        ir = s["imbalance_ratio"]
        summary.add_row(
            name,
            str(s["num_classes"]),
            str(s["labelled"]),
            f"{100 * s['labelled_fraction']:.1f}",
            str(s["background"]),
            str(s["missing"]),
            str(s["num_underrepresented"]),
            f"{ir:.1f}" if ir is not None else ("inf" if s["labelled"] else "–"),
        )
    out.print(summary)
    for name, s in stats["targets"].items():
        classes = Table(title=f"{name}: class counts (* under-represented)", show_edge=False)
        classes.add_column("class")
        classes.add_column("count", justify="right")
        classes.add_column("%", justify="right")
        for c, k in sorted(s["class_counts"].items(), key=lambda kv: -kv[1]):
            mark = " *" if c in s["underrepresented"] else ""
            classes.add_row(c + mark, str(k), f"{100 * k / max(s['labelled'], 1):.1f}")
        out.print(classes)


@app.command(epilog="Example:\n\n  artbench bench --device cuda --backbone resnet50 --image-size 224 --batch-size 128")
def bench(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    backbone: Annotated[str, typer.Option(help="Backbone name.")] = "tiny_cnn",
    image_size: Annotated[int, typer.Option(min=8, help="Square input size in pixels.")] = 64,
    batch_size: Annotated[int, typer.Option(min=2, help="Training batch size.")] = 64,
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per measurement.")] = 20,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up steps.")] = 3,
    task: Annotated[str, typer.Option(help="Task whose prepared cache feeds the pipeline.")] = "silknow-synth",
    plugin: PluginOpt = None,
) -> None:
    """Training throughput (images/s) of the real pipeline vs a model-only loop, and their ratio."""
    from artbench.bench import run_bench

    _load_plugins(plugin)
    result = run_bench(
        task=task,
        device=device,
        backbone=backbone,
        image_size=image_size,
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
    )
    table = Table(
        title=f"training throughput · {result['device_name']} · {backbone} · {image_size}px · batch {batch_size}"
    )
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    table.add_row("pipeline (cache → augment → fwd/bwd/step)", f"{result['pipeline_images_per_s']:.1f}")
    table.add_row("model only (device tensors)", f"{result['model_images_per_s']:.1f}")
    table.add_section()
    table.add_row("ratio pipeline / model-only", f"{result['ratio']:.3f}", style="bold")
    out.print(table)


@app.command(epilog="Examples:\n\n  artbench ui\n\n  artbench ui --out runs --port 5001")
def ui(
    out_dir: OutOpt = Path("artbench-out"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the runs stored in --out."""
    from artbench.tracking.mlflow_tracker import default_tracking_uri

    store = out_dir / "mlflow.db"
    if not store.is_file():
        raise ArtbenchError(f"no MLflow store at {store}; run `artbench run ...` first or pass --out")
    uri = default_tracking_uri(out_dir)
    try:
        with socket.create_server((host, port)):
            pass  # free: MLflow binds it next
    except OSError as exc:
        raise ArtbenchError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port or --host"
        ) from None
    err_console.print(f"MLflow UI on http://{host}:{port} for {uri} (Ctrl-C to stop)", soft_wrap=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    try:
        returncode = subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if returncode:
        raise ArtbenchError(f"the MLflow UI stopped with exit code {returncode} (its messages are above)")
