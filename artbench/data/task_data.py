"""From a task spec to the data every method fits on: dataset, resolved targets, labels by kind, split,
under-represented classes, metadata inputs, and images through the prepared cache."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.dataset import DATASETS, Dataset
from artbench.core.errors import ArtbenchError
from artbench.core.targets import MISSING, TargetSpec, encode_targets
from artbench.core.task import TaskSpec
from artbench.data.cache import ImageCache, ImageFeature, prepare_cache
from artbench.data.splits import official_split, split_task
from artbench.data.stats import underrepresented_classes


@dataclass
class TaskData:
    """A task's data ready for any method.

    ``labels[m]`` is target m's encoding (see :mod:`artbench.core.targets`); ``split`` names the split of each row;
    ``metadata`` holds the task's metadata columns (raw strings, NA where unknown) for multimodal methods.
    """

    task: TaskSpec
    dataset: Dataset
    targets: list[TargetSpec]
    labels: list[np.ndarray]
    split: np.ndarray
    underrepresented: dict[str, list[str]] = field(default_factory=dict)
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    _caches: dict[tuple, ImageCache] = field(default_factory=dict, repr=False)

    def index(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    @property
    def kinds(self) -> set[str]:
        return {t.kind for t in self.targets}

    def images(self, size: int, features: Sequence[ImageFeature] = ()) -> ImageCache:
        """The image cache at ``size`` px with the given per-image features, prepared on first use.

        Rows whose image is missing or unreadable (the cache skips them) lose their labels here, so that no method
        trains on them and no metric counts them; their predictions stay in predictions.csv without a true label.
        """
        key = (size, tuple(f.name for f in features))
        if key not in self._caches:
            cache = prepare_cache(self.dataset, size, features=features)
            skipped = np.asarray(getattr(cache, "skipped", ()), dtype=np.int64)
            for spec, codes in zip(self.targets, self.labels, strict=True):
                codes[skipped] = np.nan if spec.kind == "regression" else MISSING
            self._caches[key] = cache
        return self._caches[key]


def build_dataset(name: str, options: dict[str, Any], where: str) -> Dataset:
    """Build registered dataset ``name`` from ``options``; unfit options are a user error naming ``where``."""
    builder = DATASETS.get(name).build
    signature = inspect.signature(builder)
    allowed = signature.parameters
    try:
        signature.bind(**options)
    except TypeError:
        required = [n for n, p in allowed.items() if p.default is inspect.Parameter.empty]
        needs = f" and needs {', '.join(required)}" if required else ""
        raise ArtbenchError(
            f"{where}: dataset_options {sorted(options)} do not fit dataset {name!r}; "
            f"its options are {', '.join(allowed)}{needs}"
        ) from None
    try:
        return builder(**options)
    except (TypeError, ValueError) as exc:
        raise ArtbenchError(f"{where}: dataset {name!r} rejects dataset_options {options}: {exc}") from None
    except MemoryError:
        raise ArtbenchError(f"{where}: not enough memory to build dataset {name!r} with {options}") from None


def load_dataset(task: TaskSpec) -> Dataset:
    return build_dataset(task.dataset, task.dataset_options, f"task {task.source or task.name!r}")


def resolve_targets(task: TaskSpec, table: pd.DataFrame) -> list[TargetSpec]:
    absent = [t.name for t in task.targets if t.name not in table.columns]
    if absent:
        raise ArtbenchError(
            f"task {task.name!r}: targets {absent} are not columns of the dataset; columns: {', '.join(table.columns)}"
        )
    return [t.with_classes_from(table[t.name]) for t in task.targets]


def _check_metadata(task: TaskSpec, table: pd.DataFrame) -> pd.DataFrame:
    absent = [c for c in task.metadata if c not in table.columns]
    if absent:
        raise ArtbenchError(
            f"task {task.name!r}: metadata columns {absent} are not columns of the dataset; "
            f"columns: {', '.join(table.columns)}"
        )
    return table[list(task.metadata)].reset_index(drop=True)


def _check_images_in_one_group(task: TaskSpec, table: pd.DataFrame) -> None:
    """An image file listed under two groups could sit in two splits: training on test images."""
    groups = table.groupby("image")["group"].nunique()
    shared = groups[groups > 1]
    if len(shared):
        first = shared.index[0]
        names = sorted(map(str, table.loc[table["image"] == first, "group"].unique()))
        raise ArtbenchError(
            f"task {task.name!r}: {len(shared)} image file(s) belong to more than one group (first: {first} in "
            f"groups {', '.join(names[:3])}); an image must belong to one record, so fix the group column"
        )


def _check_learnable(task: TaskSpec, targets: list[TargetSpec], labels: list[np.ndarray]) -> None:
    """A multiclass target with a single known class scores 100 % without learning anything."""
    single = [
        t.name
        for t, codes in zip(targets, labels, strict=True)
        if t.kind == "multiclass" and len(set(codes[codes >= 0].tolist())) == 1
    ]
    if single:
        raise ArtbenchError(
            f"task {task.name!r}: target(s) {single} have a single class among their labels, so every metric would "
            "be trivially perfect; remove them or check their column and background values"
        )


def _empty_split_reason(
    task: TaskSpec, table: pd.DataFrame, targets: list[TargetSpec], labels: list[np.ndarray]
) -> str:
    """Why the grouped protocol left a split empty: classes held by fewer groups than there are splits go to
    train and test first (so that they are learnt and evaluated), which can use up every group."""
    group_codes = table["group"].to_numpy()
    rare = sum(
        int(pd.Series(group_codes[codes == c]).nunique() < 3)
        for t, codes in zip(targets, labels, strict=True)
        if t.kind == "multiclass"
        for c in np.unique(codes[codes >= 0])
    )
    if task.split.protocol == "grouped" and rare:
        return (
            f"{rare} class(es) are held by fewer than 3 groups and went to train and test first; merge rare "
            "classes, drop them, or use more data"
        )
    return (
        "a split needs whole groups, so check the dataset's size, its group and split columns, or the split fractions"
    )


def prepare_task(task: TaskSpec) -> TaskData:
    """Load, encode and split a task's data (images are prepared later, at the size a method asks for)."""
    dataset = load_dataset(task)
    table = dataset.table
    _check_images_in_one_group(task, table)
    targets = resolve_targets(task, table)
    metadata = _check_metadata(task, table)
    labels = encode_targets(table, targets)
    if task.split.protocol == "official":
        split = official_split(table)
    else:
        split = split_task(table["group"].to_numpy(), targets, labels, task.split.fractions, task.split.seed)
    empty = [name for name in ("train", "val", "test") if not (split == name).any()]
    if empty:
        groups = table["group"].nunique()
        raise ArtbenchError(
            f"task {task.name!r}: the {'/'.join(empty)} split is empty ({len(split)} samples in {groups} groups); "
            + _empty_split_reason(task, table, targets, labels)
        )
    train = split == "train"
    unlabelled = [
        t.name
        for t, codes in zip(targets, labels, strict=True)
        if (t.kind != "regression" and t.num_classes == 0) or not t.known(codes[train]).any()
    ]
    if unlabelled:
        raise ArtbenchError(
            f"task {task.name!r}: target(s) {unlabelled} have no label in the train split; "
            "remove them from the task or check their column and background values"
        )
    _check_learnable(task, targets, labels)
    population = slice(None) if task.underrepresented == "dataset" else train
    under = {t.name: underrepresented_classes(codes[population], t) for t, codes in zip(targets, labels, strict=True)}
    return TaskData(task, dataset, targets, labels, split, under, metadata)
