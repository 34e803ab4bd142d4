"""The sample table: one row per image, the data model every dataset adapter produces.

Columns: ``image`` (absolute path), ``group`` (the record/object an image belongs to; all images of a group fall
in the same split), optional ``split`` (``train``/``val``/``test``, the official split) and one column per
target with the raw label values (NA = missing).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from artbench.errors import ArtbenchError
from artbench.registry import Registry

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass
class Dataset:
    """A sample table plus its provenance; ``name`` keys the image cache together with ``fingerprint``."""

    name: str
    table: pd.DataFrame
    missing_images_hint: str = "check the image paths in the sample table"
    """What to tell a user whose image files are absent (e.g. the download command)."""

    def __post_init__(self) -> None:
        missing = [c for c in ("image", "group") if c not in self.table.columns]
        if missing:
            raise ArtbenchError(f"dataset {self.name!r}: sample table lacks columns {missing}")
        if "split" in self.table.columns:
            bad = sorted(set(self.table["split"].dropna().astype(str)) - set(SPLITS))
            if bad:
                raise ArtbenchError(
                    f"dataset {self.name!r}: split column has values {bad}; allowed: {', '.join(SPLITS)}"
                )

    @property
    def fingerprint(self) -> str:
        """Hash of the table and of each image file's size and modification time."""
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(self.table.astype(str), index=False).to_numpy().tobytes())
        for path in self.table["image"]:
            try:
                st = os.stat(path)
                digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                digest.update(b"absent")
        return digest.hexdigest()[:16]


DatasetBuilder = Callable[..., Dataset]
DATASETS: Registry[DatasetBuilder] = Registry("dataset", entry_point_group="artbench.datasets")


def register_dataset(name: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Decorator registering a dataset builder: a function taking the task's ``[dataset_options]``."""
    return DATASETS.decorator(name)


RESERVED_COLUMNS = ("image", "group", "split")
"""Columns of the canonical sample table that are not targets."""


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
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ArtbenchError(f"cannot parse CSV {str(path)!r}: {exc}") from None
    wanted = [image_col] + [c for c in (group_col, split_col) if c] + list(targets or [])
    absent = [c for c in wanted if c not in raw.columns]
    if absent:
        raise ArtbenchError(f"CSV {str(path)!r} has no column(s) {absent}; its columns are: {', '.join(raw.columns)}")
    root = Path(image_root) if image_root is not None else path.parent
    table = pd.DataFrame({"image": [str((root / p).resolve()) if p else "" for p in raw[image_col].fillna("")]})
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


@register_dataset("csv")
def csv_dataset(
    path: str,
    image_col: str = "image",
    group_col: str | None = None,
    split_col: str | None = None,
    image_root: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Bring-your-own collection: a CSV with an image column, an optional group column and target columns."""
    table = read_csv_table(path, image_col=image_col, group_col=group_col, split_col=split_col, image_root=image_root)
    return Dataset(name or Path(path).stem, table)


def data_home() -> Path:
    """Where generated and downloaded datasets and prepared caches live (``$ARTBENCH_DATA``)."""
    home = Path(os.environ.get("ARTBENCH_DATA", Path.home() / ".cache" / "artbench"))
    if home.exists() and not home.is_dir():
        raise ArtbenchError(f"the data home {str(home)!r} is a file; point ARTBENCH_DATA at a folder")
    return home


@register_dataset("silknow-synth")
def silknow_synth_dataset(num_images: int = 4000, image_size: int = 64, seed: int = 0) -> Dataset:
    """The embedded synthetic SILKNOW-shaped dataset (see :mod:`artbench.data.synth`), generated on first use."""
    from artbench.data.synth import generate_silknow_synth

    root = data_home() / "silknow-synth" / f"n{num_images}-px{image_size}-seed{seed}"
    csv = generate_silknow_synth(root, num_images=num_images, image_size=image_size, seed=seed)
    table = read_csv_table(csv, group_col="group")
    return Dataset("silknow-synth", table)
