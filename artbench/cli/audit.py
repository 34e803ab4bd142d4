"""``artbench datasets audit``: leakage between the splits of a task or dataset (see :mod:`artbench.data.audit`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from artbench.cli.common import PluginOpt, load_plugins, out
from artbench.core.errors import ArtbenchError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

AUDIT_EPILOG = (
    "Examples:\n\n  artbench datasets audit silknow\n\n"
    "  artbench datasets audit silknow --root /data/silknow --fix\n\n"
    "  artbench datasets audit my_task.toml --threshold 4 --json"
)


def _audit_source(source: str, root: str | None) -> tuple[str, str, pd.DataFrame, np.ndarray]:
    """Name, dataset name, sample table and split to audit: a task's split, or a dataset's official one."""
    from artbench.core.dataset import DATASETS
    from artbench.data.task_data import build_dataset, prepare_task
    from artbench.tasks import load_task, task_names

    is_task = source.endswith(".toml") or source in task_names()
    if is_task and not (root is not None and source in DATASETS):
        if root is not None:
            raise ArtbenchError("--root applies to a dataset name only; a task names its root in dataset_options")
        data = prepare_task(load_task(source))
        return data.task.name, data.task.dataset, data.dataset.table, data.split
    if source not in DATASETS:
        raise ArtbenchError(f"{source!r} is neither a task ({', '.join(task_names())}) nor a dataset")
    table = build_dataset(source, {"root": root} if root else {}, f"dataset {source!r}").table
    if "split" not in table.columns or table["split"].isna().any():
        raise ArtbenchError(
            f"dataset {source!r} has no complete official split; audit a task that splits it (artbench tasks list)"
        )
    return source, source, table, table["split"].astype(str).to_numpy()


def _usage_hint(dataset: str, split_file: Path) -> str:
    if dataset == "silknow":
        return f'use it with dataset_options.split_path = "{split_file}" and [split] protocol = "official"'
    return (
        'join it to your labels by the image column and read the result with dataset = "csv", '
        'split_col = "split" and [split] protocol = "official"'
    )


def audit(
    source: Annotated[str, typer.Argument(help="Task name or .toml file, or dataset name (with an official split).")],
    root: Annotated[str | None, typer.Option(help="Dataset only: folder holding its files.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the pairs CSV and the fixed split.")] = Path(
        "artbench-out"
    ),
    threshold: Annotated[
        int, typer.Option(min=0, max=64, help="Near duplicates: largest pHash Hamming distance (bits of 64).")
    ] = 6,
    fix: Annotated[
        bool, typer.Option("--fix", help="Write a split with every duplicate set moved into one split.")
    ] = False,
    plugin: PluginOpt = None,
) -> None:
    """Leakage between splits: the same image name under two groups, identical files, near-identical images."""
    from artbench.data.audit import audit_split, leak_free_split, name_key_for

    load_plugins(plugin)
    name, dataset, table, split = _audit_source(source, root)
    report = audit_split(table, split, name_key_for(dataset), threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs_file = out_dir / f"audit-{name}-pairs.csv"
    report.pairs.to_csv(pairs_file, index=False)
    summary: dict[str, object] = {"name": name, **report.summary(), "pairs_csv": str(pairs_file)}
    split_file, moved, hint = out_dir / f"audit-{name}-split.csv", 0, ""
    if fix:
        fixed, moved = leak_free_split(table, split, report.pairs)
        table[["image"]].assign(split=fixed).to_csv(split_file, index=False)
        hint = _usage_hint(dataset, split_file.resolve())
        summary["fix"] = {"split_csv": str(split_file), "moved_images": moved, "usage": hint}
    if json_:
        typer.echo(json.dumps(summary))
        return
    counts = report.counts()
    headings = {"same_name": "same name", "exact": "identical files", "near": f"near (pHash ≤ {threshold} bits)"}
    result = Table(title=f"leakage audit of {escape(name)}: {report.images} images in {report.groups} groups")
    result.add_column("splits")
    for kind in counts:
        result.add_column(headings[kind], justify="right")
    for pair in next(iter(counts.values())):
        result.add_row(pair, *(str(counts[kind][pair]) for kind in counts))
    out.print(result)
    if len(counts) == 1:
        out.print("identical and near-identical images: not checked, no image file found")
    else:
        out.print(
            f"images hashed: {report.hashed}, missing: {report.missing}, unreadable: {report.unreadable}; "
            f"near duplicates: 64-bit DCT pHash, Hamming distance ≤ {threshold}"
        )
    out.print(f"pairs: {escape(str(pairs_file))}", soft_wrap=True)
    if fix:
        out.print(f"fixed split: {escape(str(split_file))}; {moved} images moved", soft_wrap=True)
        out.print(escape(hint), soft_wrap=True)
