"""From a task spec to training-ready data: dataset, resolved targets, encoded labels, split, image cache."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from artbench.data.cache import ImageCache, prepare_cache
from artbench.data.dataset import DATASETS, Dataset
from artbench.data.splits import grouped_split, official_split
from artbench.data.stats import class_counts, underrepresented_mask
from artbench.data.targets import TargetSpec, encode_targets
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


def load_dataset(task: TaskSpec) -> Dataset:
    builder = DATASETS.get(task.dataset)
    try:
        inspect.signature(builder).bind(**task.dataset_options)
    except TypeError:
        allowed = ", ".join(inspect.signature(builder).parameters)
        raise ArtbenchError(
            f"task {task.name!r}: dataset_options {sorted(task.dataset_options)} do not fit dataset "
            f"{task.dataset!r}; its options are: {allowed}"
        ) from None
    return builder(**task.dataset_options)


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
        raise ArtbenchError(
            f"task {task.name!r}: the {'/'.join(empty)} split is empty ({len(split)} samples); "
            "check the dataset's split column or the split fractions"
        )
    cache = prepare_cache(dataset, image_size, colour_grid=colour_grid)
    train = split == "train"
    under = {
        t.name: [
            c for c, u in zip(t.classes, underrepresented_mask(class_counts(labels[train, m], t)), strict=True) if u
        ]
        for m, t in enumerate(targets)
    }
    return PreparedTask(task, dataset, targets, labels, split, cache, under)
