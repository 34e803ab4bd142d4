"""iMet Collection 2019 (FGVC6) and 2020 (FGVC7): The Met's objects with multi-label attributes (Kaggle).

Source layout under ``root`` (research notes §4.2): ``labels.csv`` (``attribute_id,attribute_name``; names are
``<prefix>::<name>``, RFC-4180 quoted when they contain ``"``), ``train.csv`` (``id,attribute_ids`` with the ids
separated by spaces) and ``train/<id>.png``. Kaggle needs credentials, so there is no scripted download: see
:func:`manual_download`.

Targets (all multilabel, labels joined by ``|``):

* ``attributes``: the flat attribute set under full names (``culture::american``), what both competitions score.
  Every image has at least one attribute (§4.3, inferred), and an attribute that is absent is negative.
* one target per prefix (2019: ``culture``, ``tag``; 2020: ``country``, ``culture``, ``dimension``, ``medium``,
  ``tags``) with the names without the prefix. An image without any attribute of a prefix has a *missing* label
  for that target, not a known empty set: the annotations are single-annotator and incomplete (§4.3), so "no
  culture given" reads as "culture not annotated", and the sample table can only say NA or a non-empty label set
  (an empty cell is NA). Per-prefix scores are therefore over the images annotated with that prefix. The
  competitions' metrics are over ``attributes``, where absence is negative.

Split (test labels were never released, §4.4): a fixed 70/15/15 train/val/test split of ``train.csv`` by iterative
multilabel stratification (Sechidis et al. 2011; ``iterstrat``'s ``MultilabelStratifiedShuffleSplit``, the tool of
the Kaggle solutions' folds) on the flat attribute matrix. 15 % test matches MLE-bench's held-out share of the 2020
train.csv (§4.4); an equal 15 % validation is what threshold tuning and early stopping need (the 2019 solutions
swept the F2 threshold on held-out folds); 70 % is left to train. The split is written once, atomically, to
``<root>/splits/imet<year>-seed<seed>.csv`` (``id,split``) and reused from there. Images are their own group
(train.csv has no object ids).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from artbench.core.dataset import SPLITS, DataFile, Dataset, DatasetInfo, data_home, register_dataset
from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite
from artbench.core.progress import progress_bar

PREFIXES: dict[int, tuple[str, ...]] = {
    2019: ("culture", "tag"),
    2020: ("country", "culture", "dimension", "medium", "tags"),  # plural ``tags::`` in 2020 (§4.3)
}
COMPETITIONS = {2019: "imet-2019-fgvc6", 2020: "imet-2020-fgvc7"}
FLAT_TARGET = "attributes"
SEPARATOR = "|"
"""Joins the labels of a sample-table cell (the TargetSpec default); no iMet attribute name contains it."""
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
LABELS_2020_MD5 = "a62c433510585b96a558564fa8f530f4"
"""Of the real Kaggle 2020 labels.csv (notes §4.6, recorded by MLE-bench)."""


def manual_download(year: int) -> str:
    """The steps that fetch a Kaggle competition's files into the folder the builder reads."""
    competition = COMPETITIONS[year]
    return (
        f"accept the competition rules at https://www.kaggle.com/competitions/{competition}/rules, put your Kaggle "
        f"API token in ~/.kaggle/kaggle.json, run `kaggle competitions download -c {competition} -p ROOT` and "
        f"unzip everything it fetched in ROOT, so that ROOT holds labels.csv, train.csv and train/<id>.png; ROOT is "
        f"<data home>/imet{year} ($ARTBENCH_DATA, default ~/.cache/artbench) or the task's dataset_options.root"
    )


def read_labels(path: Path) -> pd.DataFrame:
    """``labels.csv`` as a table ``attribute_id`` (int), ``attribute_name``, ``prefix``, ``name`` (without prefix).

    Names are read verbatim (``"medium::""tinned"" surface"`` becomes ``medium::"tinned" surface``); a name that
    lacks ``::``, repeats within its prefix or contains :data:`SEPARATOR` is an error.
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ArtbenchError(f"cannot parse the iMet labels file {str(path)!r}: {exc}") from None
    if list(table.columns) != ["attribute_id", "attribute_name"]:
        raise ArtbenchError(
            f"{str(path)!r} is not an iMet labels.csv: its header is {list(table.columns)}, "
            "expected attribute_id,attribute_name"
        )
    if not table["attribute_id"].str.fullmatch(r"\d+").all():
        raise ArtbenchError(f"{str(path)!r}: attribute_id must be whole numbers")
    table["attribute_id"] = table["attribute_id"].astype(np.int64)
    repeated_ids = table.loc[table["attribute_id"].duplicated(), "attribute_id"]
    if len(repeated_ids):
        raise ArtbenchError(f"{str(path)!r}: attribute id {repeated_ids.iloc[0]} is listed twice")
    bad = table.loc[~table["attribute_name"].str.contains("::", regex=False), "attribute_name"]
    if len(bad):
        raise ArtbenchError(f"{str(path)!r}: attribute name {bad.iloc[0]!r} has no '<prefix>::' part")
    parts = table["attribute_name"].str.split("::", n=1, expand=True)
    table["prefix"], table["name"] = parts[0], parts[1]
    repeated = table.loc[table.duplicated(["prefix", "name"]), "attribute_name"]
    if len(repeated):
        raise ArtbenchError(f"{str(path)!r}: attribute {repeated.iloc[0]!r} is listed twice")
    clashing = table.loc[table["attribute_name"].str.contains(SEPARATOR, regex=False), "attribute_name"]
    if len(clashing):
        raise ArtbenchError(f"{str(path)!r}: attribute {clashing.iloc[0]!r} contains the label separator {SEPARATOR!r}")
    return table


def read_train(path: Path, known_ids: Sequence[int]) -> tuple[list[str], list[list[int]]]:
    """Image ids and their attribute ids from ``train.csv``; ids absent from ``labels.csv`` are an error."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ArtbenchError(f"cannot parse the iMet train file {str(path)!r}: {exc}") from None
    if list(table.columns) != ["id", "attribute_ids"]:
        raise ArtbenchError(
            f"{str(path)!r} is not an iMet train.csv: its header is {list(table.columns)}, expected id,attribute_ids"
        )
    duplicated = table["id"][table["id"].duplicated()]
    if len(duplicated):
        raise ArtbenchError(f"{str(path)!r} lists image {duplicated.iloc[0]!r} twice")
    known = set(known_ids)
    attributes = []
    for line, (image_id, cell) in enumerate(zip(table["id"], table["attribute_ids"], strict=True), start=2):
        try:
            ids = [int(token) for token in cell.split()]
        except ValueError:
            raise ArtbenchError(f"{str(path)!r} line {line}: attribute_ids {cell!r} are not whole numbers") from None
        unknown = sorted(set(ids) - known)
        if unknown:
            raise ArtbenchError(
                f"{str(path)!r} line {line}: attribute ids {unknown} of image {image_id!r} are not in labels.csv; "
                "are labels.csv and train.csv from the same competition?"
            )
        attributes.append(ids)
    return table["id"].tolist(), attributes


def attribute_matrix(attributes: Sequence[Sequence[int]], attribute_ids: Sequence[int]) -> np.ndarray:
    """Boolean ``[images, attributes]`` indicator matrix, columns in the order of ``attribute_ids``."""
    column = {a: j for j, a in enumerate(attribute_ids)}
    rows = np.repeat(np.arange(len(attributes)), [len(a) for a in attributes])
    cols = np.fromiter((column[a] for ids in attributes for a in ids), dtype=np.int64, count=len(rows))
    matrix = np.zeros((len(attributes), len(attribute_ids)), dtype=bool)
    matrix[rows, cols] = True
    return matrix


def stratified_split(matrix: np.ndarray, seed: int) -> np.ndarray:
    """Split names (``train``/``val``/``test``) by :data:`SPLIT_FRACTIONS` with iterative stratification.

    ``MultilabelStratifiedShuffleSplit`` twice, as in :func:`artbench.data.splits.iterative_grouped_split`: train
    against the rest, then validation against test within the rest.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    n = len(matrix)
    # Whole counts: float shares such as 1 - 0.7 = 0.30000000000000004 make sklearn round the sizes past n.
    n_train, n_val = round(SPLIT_FRACTIONS[0] * n), round(SPLIT_FRACTIONS[1] * n)
    assignment = np.full(n, 2)
    first = MultilabelStratifiedShuffleSplit(n_splits=1, train_size=n_train, test_size=n - n_train, random_state=seed)
    train, rest = next(first.split(np.zeros(n), matrix))
    assignment[train] = 0
    second = MultilabelStratifiedShuffleSplit(
        n_splits=1, train_size=n_val, test_size=len(rest) - n_val, random_state=seed
    )
    val, _ = next(second.split(np.zeros(len(rest)), matrix[rest]))
    assignment[rest[val]] = 1
    return np.asarray(SPLITS)[assignment]


def split_file(root: Path, year: int, seed: int) -> Path:
    return root / "splits" / f"imet{year}-seed{seed}.csv"


def read_split_file(path: Path, image_ids: Sequence[str]) -> np.ndarray:
    """The saved split of ``image_ids``; a file made from another ``train.csv`` is an error."""
    saved = pd.read_csv(path, dtype=str, keep_default_na=False)
    fix = f"delete {str(path)!r} to make the split again"
    if list(saved.columns) != ["id", "split"] or not saved["split"].isin(SPLITS).all():
        raise ArtbenchError(f"the iMet split file {str(path)!r} is damaged (expected columns id,split); {fix}")
    by_id = dict(zip(saved["id"], saved["split"], strict=True))
    if len(by_id) != len(saved) or by_id.keys() != set(image_ids):
        raise ArtbenchError(
            f"the iMet split file {str(path)!r} lists other images than train.csv ({len(saved)} rows, "
            f"{len(image_ids)} images); {fix}"
        )
    return np.array([by_id[i] for i in image_ids])


def write_split_file(path: Path, image_ids: Sequence[str], split: np.ndarray) -> None:
    """Write ``id,split`` under a temporary name and rename it, so a crash never leaves half a split."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pd.DataFrame({"id": image_ids, "split": split}).to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def label_cells(attributes: Sequence[Sequence[int]], names: dict[int, str]) -> list[str | None]:
    """One sample-table cell per image: the names of its attributes joined by :data:`SEPARATOR`, NA if none."""
    cells = []
    for ids in attributes:
        present = [names[a] for a in ids if a in names]
        cells.append(SEPARATOR.join(present) if present else None)
    return cells


def imet_table(root: Path, year: int, split_seed: int = 0) -> pd.DataFrame:
    """The sample table of one competition's ``train.csv`` with the fixed split (see the module docstring)."""
    labels = read_labels(root / "labels.csv")
    found = set(labels["prefix"])
    if found != set(PREFIXES[year]):
        other = next((y for y, p in PREFIXES.items() if set(p) == found), None)
        hint = f"; it looks like iMet {other}" if other else ""
        raise ArtbenchError(
            f"labels.csv in {str(root)!r} has the prefixes {sorted(found)}, not iMet {year}'s "
            f"{', '.join(PREFIXES[year])}{hint}"
        )
    image_ids, attributes = read_train(root / "train.csv", labels["attribute_id"].tolist())
    path = split_file(root, year, split_seed)
    if path.is_file():
        split = read_split_file(path, image_ids)
    else:
        with progress_bar(transient=True) as bar:
            bar.add_task(f"stratifying the iMet {year} split (once; saved to {path.name})", total=None)
            split = stratified_split(attribute_matrix(attributes, labels["attribute_id"].tolist()), split_seed)
        write_split_file(path, image_ids, split)
    table = pd.DataFrame(
        {"image": [str(root / "train" / f"{i}.png") for i in image_ids], "group": image_ids, "split": split}
    )
    full_names = dict(zip(labels["attribute_id"], labels["attribute_name"], strict=True))
    table[FLAT_TARGET] = label_cells(attributes, full_names)
    for prefix in PREFIXES[year]:
        of_prefix = labels[labels["prefix"] == prefix]
        table[prefix] = label_cells(attributes, dict(zip(of_prefix["attribute_id"], of_prefix["name"], strict=True)))
    return table


def build(year: int, root: str | None, split_seed: int) -> Dataset:
    base = Path(root) if root else default_root(year)
    absent = [name for name in ("labels.csv", "train.csv") if not (base / name).is_file()]
    if absent:
        raise MissingPrerequisite(
            "data", f"iMet {year} is not in {str(base)!r} (no {', '.join(absent)}): {manual_download(year)}"
        )
    return Dataset(
        f"imet{year}",
        imet_table(base, year, split_seed),
        missing_images_hint=f"unzip the competition's train images into {base / 'train'}",
        layout="kaggle",
    )


def default_root(year: int) -> Path:
    return data_home() / f"imet{year}"


def info(year: int, description: str, citation: str) -> DatasetInfo:
    competition = COMPETITIONS[year]
    page = f"https://www.kaggle.com/competitions/{competition}"
    return DatasetInfo(
        f"imet{year}",
        description=description,
        license="Kaggle competition rules (images: The Metropolitan Museum of Art)",
        citation=citation,
        homepage=page,
        targets={FLAT_TARGET: "multilabel", **{p: "multilabel" for p in PREFIXES[year]}},
        splits="derived",
        files=(
            DataFile("labels.csv", f"{page}/data", LABELS_2020_MD5 if year == 2020 else None),
            DataFile("train.csv", f"{page}/data"),
            DataFile("train/", f"{page}/data"),
        ),
        manual_download=manual_download(year),
    )


INFO_2019 = info(
    2019,
    "iMet Collection 2019 (FGVC6): 109,237 train images of The Met, 1,103 attributes (398 culture + 705 tag)",
    "Zhang, C., Kaeser-Chen, C., Vesom, G., Choi, J., Kessler, M., Belongie, S. (2019). The iMet Collection 2019 "
    "Challenge Dataset. arXiv:1906.00901",
)
INFO_2020 = info(
    2020,
    "iMet Collection 2020 (FGVC7): 142,119 train images of The Met, 3,474 attributes in 5 prefixes",
    "iMet Collection 2020 - FGVC7, Kaggle competition (2020), https://www.kaggle.com/competitions/imet-2020-fgvc7",
)


@register_dataset(INFO_2019, default_root=lambda: default_root(2019))
def imet2019_dataset(root: str | None = None, split_seed: int = 0) -> Dataset:
    """iMet 2019 train.csv with a fixed 70/15/15 stratified split (``split_seed`` picks which one)."""
    return build(2019, root, split_seed)


@register_dataset(INFO_2020, default_root=lambda: default_root(2020))
def imet2020_dataset(root: str | None = None, split_seed: int = 0) -> Dataset:
    """iMet 2020 train.csv with a fixed 70/15/15 stratified split (``split_seed`` picks which one)."""
    return build(2020, root, split_seed)
