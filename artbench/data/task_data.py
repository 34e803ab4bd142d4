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
from artbench.core.targets import TargetSpec, encode_targets
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
        """The image cache at ``size`` px with the given per-image features, prepared on first use."""
        key = (size, tuple(f.name for f in features))
        if key not in self._caches:
            self._caches[key] = prepare_cache(self.dataset, size, features=features)
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


def prepare_task(task: TaskSpec) -> TaskData:
    """Load, encode and split a task's data (images are prepared later, at the size a method asks for)."""
    dataset = load_dataset(task)
    table = dataset.table
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
            "a split needs whole groups, so check the dataset's size, its group and split columns, "
            "or the split fractions"
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
    population = slice(None) if task.underrepresented == "dataset" else train
    under = {t.name: underrepresented_classes(codes[population], t) for t, codes in zip(targets, labels, strict=True)}
    return TaskData(task, dataset, targets, labels, split, under, metadata)
