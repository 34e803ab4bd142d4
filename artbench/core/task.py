"""The task contract (MTEB-style validated metadata): a dataset, its targets, a split protocol, metrics and
method defaults, parsed from a task's TOML content. Finding task files and checking names against the method
and metric registries is :mod:`artbench.tasks`' job."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from artbench.core.errors import ArtbenchError
from artbench.core.targets import TARGET_KINDS, TargetSpec

SPLIT_PROTOCOLS = ("grouped", "official")
_TASK_KEYS = {
    "name",
    "description",
    "dataset",
    "dataset_options",
    "targets",
    "split",
    "metrics",
    "defaults",
    "metadata",
    "underrepresented",
}
UNDERREPRESENTED_FROM = ("dataset", "train")
_TARGET_KEYS = {"name", "kind", "classes", "background", "separator"}
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
    """Method parameters sized for the task; each applies to the methods that have that parameter."""
    metadata: tuple[str, ...] = ()
    """Sample-table columns given to methods as metadata inputs (multimodal methods)."""
    underrepresented: str = "dataset"
    """Population whose class frequencies define the under-represented classes (ζ < 1/K): ``dataset`` (SilkNet
    Table 2) or ``train``."""
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


def _split_seed(value: Any, source: str) -> int:
    """NumPy seeds are non-negative integers below 2**32 (a negative one used to crash inside the split)."""
    seed = _expect(value, int, f"{source}: split.seed")
    if not 0 <= seed < 2**32:
        raise ArtbenchError(f"{source}: split.seed must be an integer in [0, 2**32), got {seed}")
    return seed


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
        name = _expect(raw["name"], str, f"{where}.name")
        if name in ("image", "group", "split"):
            raise ArtbenchError(f"{where}: {name!r} is a reserved column of the sample table, not a target")
        try:
            targets.append(
                TargetSpec(
                    name=name,
                    kind=kind,
                    classes=_str_list(raw.get("classes", []), f"{where}.classes"),
                    background=_str_list(raw.get("background", []), f"{where}.background"),
                    separator=_expect(raw.get("separator", "|"), str, f"{where}.separator"),
                )
            )
        except ArtbenchError as exc:
            raise ArtbenchError(f"{where}: {exc}") from None
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
        raise ArtbenchError(f"{source}: metrics is empty; name at least one metric (see `artbench metrics list`)")
    metadata = _str_list(data.get("metadata", []), f"{source}: metadata")
    clash = sorted(set(metadata) & ({*names} | {"image", "group", "split"}))
    if clash:
        raise ArtbenchError(f"{source}: metadata columns {clash} are targets or reserved columns")
    under = _expect(data.get("underrepresented", "dataset"), str, f"{source}: underrepresented")
    if under not in UNDERREPRESENTED_FROM:
        raise ArtbenchError(
            f"{source}: underrepresented must be one of {', '.join(UNDERREPRESENTED_FROM)}, got {under!r}"
        )
    return TaskSpec(
        name=_task_name(data["name"], source),
        dataset=_expect(data["dataset"], str, f"{source}: dataset"),
        targets=tuple(targets),
        description=_expect(data.get("description", ""), str, f"{source}: description"),
        dataset_options=dict(_expect(data.get("dataset_options", {}), dict, f"{source}: dataset_options")),
        split=SplitSpec(protocol, fractions, _split_seed(split_raw.get("seed", 0), source)),
        metrics=metrics,
        defaults=dict(_expect(data.get("defaults", {}), dict, f"{source}: defaults")),
        metadata=metadata,
        underrepresented=under,
        source=source,
    )
