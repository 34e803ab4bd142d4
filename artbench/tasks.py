"""Benchmark tasks: declarative TOML files naming a dataset, its targets, a split protocol and metrics.

Tasks are looked up by name in ``$ARTBENCH_TASKS`` (a folder), the repository's ``tasks/`` folder and the copy
bundled in the wheel; a path to a ``.toml`` file is accepted too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from artbench.config import read_toml, validate_overrides
from artbench.data.targets import TARGET_KINDS, TargetSpec
from artbench.errors import ArtbenchError
from artbench.evaluation.metrics import METRIC_NAMES

SPLIT_PROTOCOLS = ("grouped", "official")
_TASK_KEYS = {"name", "description", "dataset", "dataset_options", "targets", "split", "metrics", "defaults"}
_TARGET_KEYS = {"name", "kind", "classes", "background"}
_SPLIT_KEYS = {"protocol", "fractions", "seed"}
TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PATH_OPTIONS = ("path", "root", "image_root")
"""``[dataset_options]`` keys holding paths (also any key ending in ``_path``, ``_dir`` or ``_root``)."""


@dataclass(frozen=True)
class SplitSpec:
    """``grouped``: random split by group into train/val/test fractions, every class of every target in every
    split where its count allows (SilkNet §4), fixed ``seed``. ``official``: the dataset's ``split`` column."""

    protocol: str = "grouped"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0


@dataclass(frozen=True)
class TaskSpec:
    name: str
    dataset: str
    targets: tuple[TargetSpec, ...]
    description: str = ""
    dataset_options: dict[str, Any] = field(default_factory=dict)
    split: SplitSpec = SplitSpec()
    metrics: tuple[str, ...] = ("f1_macro", "accuracy", "f1_underrepresented")
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def target(self, name: str) -> TargetSpec:
        for t in self.targets:
            if t.name == name:
                return t
        raise ArtbenchError(f"task {self.name!r} has no target {name!r}; targets: {self.target_names}")

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ArtbenchError(f"{where} must be {names}, got {value!r}")
    return value


def _unknown_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ArtbenchError(f"{where}: unknown key(s) {extra}; allowed: {', '.join(sorted(allowed))}")


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    _expect(value, list, where)
    return tuple(_expect(v, str, f"{where}[]") for v in value)


def _task_name(value: Any, source: str) -> str:
    """A task name becomes a folder under ``--out`` and an MLflow experiment: letters, digits, ``.``, ``_``, ``-``."""
    name = _expect(value, str, f"{source}: name")
    if not TASK_NAME.fullmatch(name):
        raise ArtbenchError(
            f"{source}: name {name!r} must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def parse_task(data: dict[str, Any], source: str) -> TaskSpec:
    """Validate a task's TOML content; errors name ``source`` and the offending key."""
    _unknown_keys(data, _TASK_KEYS, source)
    for key in ("name", "dataset", "targets"):
        if key not in data:
            raise ArtbenchError(f"{source}: missing required key {key!r}")
    targets = []
    for i, raw in enumerate(_expect(data["targets"], list, f"{source}: targets")):
        where = f"{source}: targets[{i}]"
        _expect(raw, dict, where)
        _unknown_keys(raw, _TARGET_KEYS, where)
        if "name" not in raw:
            raise ArtbenchError(f"{where}: missing 'name'")
        kind = _expect(raw.get("kind", "multiclass"), str, f"{where}.kind")
        if kind not in TARGET_KINDS:
            raise ArtbenchError(f"{where}: unknown kind {kind!r}; valid kinds: {', '.join(TARGET_KINDS)}")
        targets.append(
            TargetSpec(
                name=_expect(raw["name"], str, f"{where}.name"),
                kind=kind,
                classes=_str_list(raw.get("classes", []), f"{where}.classes"),
                background=_str_list(raw.get("background", []), f"{where}.background"),
            )
        )
    if not targets:
        raise ArtbenchError(f"{source}: a task needs at least one target")
    names = [t.name for t in targets]
    if "overall" in names:
        raise ArtbenchError(f"{source}: 'overall' is reserved for the mean over targets; rename that target")
    if len(set(names)) != len(names):
        raise ArtbenchError(f"{source}: duplicate target names in {names}")
    split_raw = _expect(data.get("split", {}), dict, f"{source}: split")
    _unknown_keys(split_raw, _SPLIT_KEYS, f"{source}: split")
    protocol = _expect(split_raw.get("protocol", "grouped"), str, f"{source}: split.protocol")
    if protocol not in SPLIT_PROTOCOLS:
        raise ArtbenchError(f"{source}: unknown split protocol {protocol!r}; valid: {', '.join(SPLIT_PROTOCOLS)}")
    fractions = tuple(
        float(_expect(f, (int, float), f"{source}: split.fractions[]"))
        for f in _expect(split_raw.get("fractions", [0.6, 0.2, 0.2]), list, f"{source}: split.fractions")
    )
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ArtbenchError(
            f"{source}: split.fractions must be three positive numbers summing to 1, got {list(fractions)}"
        )
    metrics = _str_list(data.get("metrics", list(TaskSpec.metrics)), f"{source}: metrics")
    if not metrics:
        raise ArtbenchError(f"{source}: metrics is empty; name at least one of {', '.join(METRIC_NAMES)}")
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ArtbenchError(f"{source}: unknown metric(s) {unknown}; valid: {', '.join(METRIC_NAMES)}")
    return TaskSpec(
        name=_task_name(data["name"], source),
        dataset=_expect(data["dataset"], str, f"{source}: dataset"),
        targets=tuple(targets),
        description=_expect(data.get("description", ""), str, f"{source}: description"),
        dataset_options=dict(_expect(data.get("dataset_options", {}), dict, f"{source}: dataset_options")),
        split=SplitSpec(protocol, fractions, _expect(split_raw.get("seed", 0), int, f"{source}: split.seed")),
        metrics=metrics,
        defaults=validate_overrides(
            _expect(data.get("defaults", {}), dict, f"{source}: defaults"), f"{source}: [defaults]"
        ),
        source=source,
    )


def task_dirs() -> list[Path]:
    """Folders searched for ``<name>.toml``, in priority order."""
    package = Path(__file__).resolve().parent
    dirs = [package.parent / "tasks", package / "_bundled" / "tasks"]
    if env := os.environ.get("ARTBENCH_TASKS"):
        dirs.insert(0, Path(env))
    return [d for d in dirs if d.is_dir()]


def task_names() -> list[str]:
    """Names that :func:`load_task` finds: the ``.toml`` file names in the task folders."""
    return sorted({p.stem for d in task_dirs() for p in d.glob("*.toml")})


def _is_path_option(key: str) -> bool:
    return key in PATH_OPTIONS or key.endswith(("_path", "_dir", "_root"))


def read_task_file(path: Path) -> TaskSpec:
    """Load a task file; relative paths among its ``[dataset_options]`` are taken from the file's folder."""
    task = parse_task(read_toml(path, "task file"), str(path))
    options = {
        key: str((path.parent / value).resolve()) if _is_path_option(key) and isinstance(value, str) else value
        for key, value in task.dataset_options.items()
    }
    return replace(task, dataset_options=options)


def _named_task(path: Path) -> TaskSpec:
    """A task in a task folder: looked up by file name, so its ``name`` must be the file name."""
    task = read_task_file(path)
    if task.name != path.stem:
        raise ArtbenchError(f"{path}: name {task.name!r} differs from the file name; rename one to match the other")
    return task


def list_tasks(problems: list[str] | None = None) -> list[TaskSpec]:
    """Every task in the task folders, by name. With ``problems``, a broken task file is skipped and its error
    appended there instead of raised."""
    found: dict[str, TaskSpec] = {}
    for d in task_dirs():
        for path in sorted(d.glob("*.toml")):
            if path.stem in found:
                continue
            try:
                found[path.stem] = _named_task(path)
            except ArtbenchError as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
    return [found[k] for k in sorted(found)]


def load_task(name_or_path: str) -> TaskSpec:
    """Load a task by name or from a ``.toml`` path."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ArtbenchError(f"task file {name_or_path!r} does not exist")
        return read_task_file(path)
    for d in task_dirs():
        path = d / f"{name_or_path}.toml"
        if path.is_file():
            return _named_task(path)
    raise ArtbenchError(f"unknown task {name_or_path!r}; valid choices: {', '.join(task_names())}")
