"""The checks before a run or a sweep starts: everything local first, every problem reported at once, and only then
any network access (issue 14, "check order").

:func:`check` takes the task × method pairs of a run (one pair) or a sweep (its grid). With downloads switched off
(:func:`artbench.core.prerequisites.offline`) it runs each method's checks (parameters, backbone, weights files) and
prepares each task's data once (the dataset is read, its targets resolved and encoded and the split made: absent
data and the task file's own mistakes show here). Every problem found is reported in one error: a missing dataset
with the command that downloads it, missing ImageNet weights with the file to place, where, and its URL, and any
other mistake with its own message. A single problem keeps its own message.

When everything local is in order, :meth:`Preflight.fetch` downloads what artbench fetches by itself (torchvision's
ImageNet weights, into ``$TORCH_HOME/hub/checkpoints``), after saying what and where; the caller does it right
before training, after the tracking store was probed, and not at all when there is nothing to train. Datasets are
never downloaded by a run: some are large, some need credentials, so absent data is always an error naming
``artbench datasets download NAME`` (or the manual steps). The generated ``silknow-synth`` is created locally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite, offline
from artbench.core.progress import console
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData, prepare_task
from artbench.methods import Method


def task_key(task: TaskSpec) -> tuple[str, str | None]:
    """How :attr:`Preflight.data` names a task: its name and the file it was read from."""
    return task.name, task.source


@dataclass
class Preflight:
    """What the local checks found in order: each task's prepared data, and what is still to download."""

    data: dict[tuple[str, str | None], TaskData]
    """Prepared data per :func:`task_key`."""
    to_fetch: list[MissingPrerequisite] = field(default_factory=list)
    """Absent files that artbench downloads itself (:meth:`fetch`)."""

    def data_for(self, task: TaskSpec) -> TaskData:
        return self.data[task_key(task)]

    def fetch(self) -> None:
        """Download what :attr:`to_fetch` lists (network access), saying what before each; a failed download is a
        one-line error naming the file to place by hand."""
        while self.to_fetch:
            item = self.to_fetch[0]
            console.print(item.fetching, soft_wrap=True)
            if item.fetch is not None:
                item.fetch()
            self.to_fetch.pop(0)


def _describe(exc: ArtbenchError) -> str:
    return f"{exc.kind}: {exc}" if isinstance(exc, MissingPrerequisite) else str(exc)


def check(
    pairs: Sequence[tuple[TaskSpec, Method]], prepared: Mapping[tuple[str, str | None], TaskData] | None = None
) -> Preflight:
    """Run every local check of ``pairs`` without network access (see the module docstring); ``prepared`` is data
    already prepared (a sweep job's), by :func:`task_key`. Raises one :class:`ArtbenchError` listing every problem."""
    of_tasks: list[ArtbenchError] = []
    of_methods: list[ArtbenchError] = []
    data = dict(prepared or {})
    with offline():
        for task, method in pairs:  # the quick checks first
            try:
                method.check(task)
            except ArtbenchError as exc:
                of_methods.append(exc)
        for key, task in {task_key(task): task for task, _ in pairs}.items():
            if key not in data:
                try:
                    data[key] = prepare_task(task)
                except ArtbenchError as exc:
                    of_tasks.append(exc)
    unique: dict[str, ArtbenchError] = {}
    for exc in [*of_tasks, *of_methods]:  # a missing weights file is found once per method that needs it
        unique.setdefault(_describe(exc), exc)
    fetchable = [e for e in unique.values() if isinstance(e, MissingPrerequisite) and e.fetch is not None]
    if len(unique) == len(fetchable):
        return Preflight(data, fetchable)
    if len(unique) == 1:
        raise next(iter(unique.values()))
    listed = "; ".join(f"({i}) {text}" for i, text in enumerate(unique, 1))
    raise ArtbenchError(f"{len(unique)} problems to fix before anything runs (nothing was downloaded): {listed}")
