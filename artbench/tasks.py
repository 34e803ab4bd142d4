"""Finding and loading benchmark tasks: TOML files in ``$ARTBENCH_TASKS`` (a folder), the repository's ``tasks/``
folder and the copy bundled in the wheel; a path to a ``.toml`` file is accepted too.

Loading checks the task against the registries: its metrics must be registered metrics and every key of its
``[defaults]`` a parameter of at least one registered method.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from artbench.core.errors import ArtbenchError
from artbench.core.params import read_toml
from artbench.core.task import TaskSpec, parse_task
from artbench.evaluation.metrics import METRICS
from artbench.methods import all_parameter_names

PATH_OPTIONS = ("path", "root", "image_root")
"""``[dataset_options]`` keys holding paths (also any key ending in ``_path``, ``_dir`` or ``_root``)."""


def check_against_registries(task: TaskSpec) -> TaskSpec:
    """Unknown metrics or ``[defaults]`` keys that no registered method has are errors in the task file."""
    where = task.source or task.name
    unknown = [m for m in task.metrics if m not in METRICS]
    if unknown:
        raise ArtbenchError(f"{where}: unknown metric(s) {unknown}; valid: {', '.join(METRICS.names())}")
    known = all_parameter_names()
    stray = sorted(set(task.defaults) - known)
    if stray:
        raise ArtbenchError(
            f"{where}: [defaults] key(s) {stray} are parameters of no registered method; "
            "see `artbench methods show NAME` for a method's parameters"
        )
    return task


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
    task = check_against_registries(parse_task(read_toml(path, "task file"), str(path)))
    options = {
        key: os.path.abspath(path.parent / value) if _is_path_option(key) and isinstance(value, str) else value
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
