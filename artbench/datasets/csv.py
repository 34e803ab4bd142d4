"""Bring-your-own collection: a CSV with an image column, an optional group column and target columns."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from artbench.core.dataset import RESERVED_COLUMNS, Dataset, DatasetInfo, register_dataset
from artbench.core.errors import ArtbenchError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

INFO = DatasetInfo(
    "csv",
    description="Your own collection: a CSV of image paths, an optional group (object) column and target columns",
    license="yours",
    splits="none",
)


def read_csv_table(
    path: str | Path,
    *,
    image_col: str = "image",
    group_col: str | None = None,
    split_col: str | None = None,
    targets: Sequence[str] | None = None,
    image_root: str | Path | None = None,
) -> pd.DataFrame:
    """Read a user CSV into the canonical sample table.

    Labels are read as strings and only empty cells count as missing: pandas' default NA list would turn the
    ISO country code ``NA`` (Namibia) or the class ``None`` into missing labels.
    Image paths are resolved relative to ``image_root`` (default: the CSV's folder).
    """
    path = Path(path)
    if not path.is_file():
        raise ArtbenchError(f"CSV file {str(path)!r} does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ArtbenchError(f"cannot parse CSV {str(path)!r}: {exc}") from None
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:  # pandas would silently rename the second one "<name>.1"
        raise ArtbenchError(f"CSV {str(path)!r}: column name(s) {repeated} appear more than once; rename them")
    wanted = [image_col] + [c for c in (group_col, split_col) if c] + list(targets or [])
    absent = [c for c in wanted if c not in raw.columns]
    if absent:
        raise ArtbenchError(f"CSV {str(path)!r} has no column(s) {absent}; its columns are: {', '.join(raw.columns)}")
    root = Path(image_root) if image_root is not None else path.parent
    table = pd.DataFrame({"image": [_absolute(root / p) if p else "" for p in raw[image_col].fillna("")]})
    if (table["image"] == "").any():
        raise ArtbenchError(f"CSV {str(path)!r}: column {image_col!r} has empty cells")
    # An image without a group is its own group, never one shared "nan" group.
    table["group"] = raw[group_col].fillna(table["image"]).to_numpy() if group_col else table["image"].to_numpy()
    if split_col:
        table["split"] = raw[split_col].to_numpy()
    target_cols = (
        list(targets) if targets is not None else [c for c in raw.columns if c not in {image_col, group_col, split_col}]
    )
    clashing = [c for c in target_cols if c in RESERVED_COLUMNS]
    if clashing:
        raise ArtbenchError(
            f"CSV {str(path)!r}: column(s) {clashing} would be read as targets but the names are reserved; "
            "declare them as group_col/split_col (dataset_options or --group-col) or rename them"
        )
    for name in target_cols:
        table[name] = raw[name].to_numpy()
    return table


def _absolute(path: Path) -> str:
    """``path`` with its symlinks resolved; a symlink loop stays absolute and unresolved (the image cache skips it
    as unreadable, issue 14)."""
    try:
        return str(path.resolve())
    except (RuntimeError, OSError):  # a symlink loop: RuntimeError before Python 3.13, OSError since
        return os.path.abspath(path)


@register_dataset(INFO)
def csv_dataset(
    path: str,
    image_col: str = "image",
    group_col: str | None = None,
    split_col: str | None = None,
    image_root: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Bring-your-own collection: a CSV with an image column, an optional group column and target columns."""
    dataset_name = name or Path(path).stem
    if not SAFE_NAME.fullmatch(dataset_name):  # the name becomes a folder of the image cache
        raise ArtbenchError(
            f"dataset name {dataset_name!r} must be 1-100 letters, digits, '.', '_' or '-' starting with a letter or "
            "digit; set dataset_options.name"
        )
    table = read_csv_table(path, image_col=image_col, group_col=group_col, split_col=split_col, image_root=image_root)
    return Dataset(dataset_name, table)
