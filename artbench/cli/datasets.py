"""``artbench datasets list/info/download/stats``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from artbench.cli.audit import AUDIT_EPILOG, audit
from artbench.cli.common import PluginOpt, load_plugins, out, split_names
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console as err_console

if TYPE_CHECKING:
    import pandas as pd

    from artbench.core.targets import TargetSpec

datasets_app = typer.Typer(help="Datasets.", no_args_is_help=True)


def _parse_background(items: list[str]) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        if not sep or not target or not value:
            raise ArtbenchError(f"--background {item!r}: expected TARGET=VALUE, e.g. --background place='bg place'")
        mapping.setdefault(target, []).append(value)
    return mapping


@datasets_app.command("list", epilog="Example:\n\n  artbench datasets list")
def datasets_list(plugin: PluginOpt = None) -> None:
    """The registered datasets with their licence and citation."""
    from artbench.core.dataset import DATASETS

    load_plugins(plugin)
    table = Table(title="datasets")
    table.add_column("name", overflow="fold")
    for col in ("targets", "splits", "download", "licence", "citation"):
        table.add_column(col)
    for name in DATASETS.names():
        entry = DATASETS.get(name)
        info = entry.info
        how = "scripted" if entry.download else ("manual" if info.manual_download else "–")
        targets = ", ".join(t if k == "multiclass" else f"{t} ({k})" for t, k in info.targets.items())
        table.add_row(name, targets, info.splits, how, escape(info.license), escape(info.citation))
    out.print(table)


@datasets_app.command("info", epilog="Example:\n\n  artbench datasets info silknow")
def datasets_info(
    name: Annotated[str, typer.Argument(help="Dataset name (see `artbench datasets list`).")],
    root: Annotated[str | None, typer.Option(help="Folder holding a copy: name the layout found there.")] = None,
    plugin: PluginOpt = None,
) -> None:
    """A dataset's metadata, its files (URLs and checksums) and how to get it."""
    from artbench.core.dataset import DATASETS

    load_plugins(plugin)
    entry = DATASETS.get(name)
    info = entry.info
    out.print(f"[bold]{escape(info.name)}[/]: {escape(info.description)}")
    for label, value in (
        ("licence", info.license),
        ("citation", info.citation),
        ("homepage", info.homepage),
        ("splits", info.splits),
        ("targets", ", ".join(f"{t} ({k})" for t, k in info.targets.items())),
    ):
        if value:
            out.print(f"{label}: {escape(value)}", soft_wrap=True)
    if entry.download:
        out.print(f"download: artbench datasets download {name} [--root DIR]")
    if info.manual_download:
        out.print(f"manual download: {escape(info.manual_download)}", soft_wrap=True)
    if info.files:
        files = Table(title="files", show_edge=False)
        for col in ("file", "md5", "url"):
            files.add_column(col)
        for f in info.files:
            files.add_row(escape(f.name), f.md5 or "(not published)", escape(f.url))
        out.print(files)
    if root is not None:
        from artbench.data.task_data import build_dataset

        dataset = build_dataset(name, {"root": root}, f"dataset {name!r}")
        out.print(f"layout in {root}: {dataset.layout or 'the only one'}; {len(dataset.table)} images")


@datasets_app.command(
    "download",
    epilog="Examples:\n\n  artbench datasets download silknow\n\n"
    "  artbench datasets download silknow --root /data/silknow",
)
def datasets_download(
    name: Annotated[str, typer.Argument(help="Dataset name (see `artbench datasets list`).")],
    root: Annotated[str | None, typer.Option(help="Folder to download into (default: under $ARTBENCH_DATA).")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Download a dataset's files (labels and images); files already there and verified are kept."""
    from artbench.core.dataset import DATASETS
    from artbench.data.cache import require_images
    from artbench.data.task_data import build_dataset

    load_plugins(plugin)
    entry = DATASETS.get(name)
    if entry.download is None:
        if entry.info.manual_download:
            raise ArtbenchError(f"dataset {name!r} cannot be downloaded by a script: {entry.info.manual_download}")
        downloadable = [n for n in DATASETS.names() if DATASETS.get(n).download]
        raise ArtbenchError(f"dataset {name!r} cannot be downloaded; downloadable datasets: {', '.join(downloadable)}")
    target = Path(root) if root else entry.default_root() if entry.default_root else None
    if target is None:
        raise ArtbenchError(f"dataset {name!r} has no default folder; pass --root DIR")
    entry.download(target)
    dataset = build_dataset(name, {"root": str(target)} if root else {}, f"dataset {name!r}")
    require_images(dataset)
    groups = dataset.table["group"].nunique()
    out.print(f"{name}: {len(dataset.table)} images of {groups} groups ready in {target}")


def _stats_source(
    source: str, targets: str | None, image_col: str, group_col: str | None, background: list[str], root: str | None
) -> tuple[pd.DataFrame, list[TargetSpec]]:
    """The sample table and target specs that ``datasets stats`` describes: from a task, a dataset or a CSV."""
    from artbench.core.dataset import DATASETS, RESERVED_COLUMNS
    from artbench.core.targets import TargetSpec
    from artbench.data.task_data import build_dataset, load_dataset, resolve_targets
    from artbench.datasets.csv import read_csv_table
    from artbench.tasks import load_task, task_names

    kinds: dict[str, str] = {}
    is_task = source.endswith(".toml") or source in task_names()
    if root is not None and source not in DATASETS:
        raise ArtbenchError("--root applies to a dataset name only; a task names its root in dataset_options")
    is_csv = not is_task and (source.endswith(".csv") or Path(source).is_file())
    if not is_csv and (image_col != "image" or group_col is not None):
        raise ArtbenchError("--image-col and --group-col apply to a CSV source only; a task or dataset names its own")
    if is_task and not ((targets is not None or background or root is not None) and source in DATASETS):
        if targets is not None or background:
            raise ArtbenchError(f"task {source!r} defines its targets and background; drop --targets/--background")
        task = load_task(source)
        table = load_dataset(task).table
        return table, resolve_targets(task, table)
    if is_csv:
        if not targets:
            raise ArtbenchError("a CSV source needs --targets a,b,c naming its target columns")
        table = read_csv_table(source, image_col=image_col, group_col=group_col, targets=split_names(targets))
    elif source in DATASETS:
        hint = " (for a CSV file pass its path instead)" if source == "csv" else ""
        table = build_dataset(source, {"root": root} if root else {}, f"dataset {source!r}{hint}").table
        kinds = DATASETS.get(source).info.targets
    else:
        raise ArtbenchError(
            f"{source!r} is neither a task, a dataset ({', '.join(DATASETS.names())}) nor an existing CSV file"
        )
    available = [c for c in table.columns if c not in RESERVED_COLUMNS]
    names = split_names(targets) if targets is not None else [t for t in kinds if t in available] or available
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
    specs = [TargetSpec(n, kinds.get(n, "multiclass"), background=tuple(bg.get(n, []))) for n in names]
    return table, [s.with_classes_from(table[s.name]) for s in specs]


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
    root: Annotated[str | None, typer.Option(help="Dataset only: folder holding its files.")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Class statistics per target: counts, label availability, under-represented classes, imbalance ratio."""
    from artbench.data.stats import dataset_statistics

    load_plugins(plugin)
    table, specs = _stats_source(source, targets, image_col, group_col, background or [], root)
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
        if s["kind"] == "regression":
            summary.add_row(
                name, "–", str(s["labelled"]), f"{100 * s['labelled_fraction']:.1f}", "–", str(s["missing"]), "–", "–"
            )
            continue
        ir = s["imbalance_ratio"]
        summary.add_row(
            name if s["kind"] == "multiclass" else f"{name} ({s['kind']})",
            str(s["num_classes"]),
            str(s["labelled"]),
            f"{100 * s['labelled_fraction']:.1f}",
            str(s.get("background", "–")),
            str(s["missing"]),
            str(s["num_underrepresented"]),
            f"{ir:.1f}" if ir is not None else ("inf" if s["labelled"] else "–"),
        )
    out.print(summary)
    for name, s in stats["targets"].items():
        if s["kind"] == "regression":
            out.print(
                f"{name}: {s['count']} values in [{s['min']}, {s['max']}], mean {s['mean']:.1f}"
                + (f", std {s['std']:.1f}" if s["std"] is not None else "")
                if s["count"]
                else f"{name}: no values"
            )
            continue
        total = sum(s["class_counts"].values())
        classes = Table(title=f"{name}: class counts (* under-represented)", show_edge=False)
        classes.add_column("class")
        classes.add_column("count", justify="right")
        classes.add_column("%", justify="right")
        for c, k in sorted(s["class_counts"].items(), key=lambda kv: -kv[1]):
            mark = " *" if c in s["underrepresented"] else ""
            classes.add_row(c + mark, str(k), f"{100 * k / max(total, 1):.1f}")
        out.print(classes)


datasets_app.command("audit", epilog=AUDIT_EPILOG)(audit)
