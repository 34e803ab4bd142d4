"""From a task spec to training-ready data: dataset, resolved targets, encoded labels, split, image cache."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from artbench.data.cache import ImageCache, prepare_cache
from artbench.data.dataset import DATASETS, Dataset
from artbench.data.splits import grouped_split, official_split
from artbench.data.stats import class_counts, underrepresented_mask
from artbench.data.targets import MISSING, TargetSpec, encode_targets
from artbench.errors import ArtbenchError
from artbench.tasks import TaskSpec


@dataclass
class PreparedTask:
    """A task's data ready for training: resolved targets, encoded labels, split and image cache."""

    task: TaskSpec
    dataset: Dataset
    targets: list[TargetSpec]
    labels: np.ndarray
    split: np.ndarray
    cache: ImageCache
    underrepresented: dict[str, list[str]] = field(default_factory=dict)

    def index(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def build_dataset(name: str, options: dict[str, Any], where: str) -> Dataset:
    """Build registered dataset ``name`` from ``options``; unfit options are a user error naming ``where``."""
    builder = DATASETS.get(name)
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


def prepare_task(task: TaskSpec, image_size: int, colour_grid: int | None = None) -> PreparedTask:
    dataset = load_dataset(task)
    targets = resolve_targets(task, dataset.table)
    labels = encode_targets(dataset.table, targets)
    if task.split.protocol == "official":
        split = official_split(dataset.table)
    else:
        split = grouped_split(dataset.table["group"].to_numpy(), labels, task.split.fractions, task.split.seed)
    empty = [name for name in ("train", "val", "test") if not (split == name).any()]
    if empty:
        groups = dataset.table["group"].nunique()
        raise ArtbenchError(
            f"task {task.name!r}: the {'/'.join(empty)} split is empty ({len(split)} samples in {groups} groups); "
            "a split needs whole groups, so check the dataset's size, its group and split columns, "
            "or the split fractions"
        )
    train = split == "train"
    unlabelled = [
        t.name for m, t in enumerate(targets) if t.num_classes == 0 or not (labels[train, m] != MISSING).any()
    ]
    if unlabelled:
        raise ArtbenchError(
            f"task {task.name!r}: target(s) {unlabelled} have no class label in the train split; "
            "remove them from the task or check their column and background values"
        )
    cache = prepare_cache(dataset, image_size, colour_grid=colour_grid)
    under = {
        t.name: [
            c for c, u in zip(t.classes, underrepresented_mask(class_counts(labels[train, m], t)), strict=True) if u
        ]
        for m, t in enumerate(targets)
    }
    return PreparedTask(task, dataset, targets, labels, split, cache, under)
