"""Published baselines: the papers' recipes and reported numbers in ``baselines/*.toml``.

Reported numbers are marked as such (``source = "reported"``) so that leaderboards can show them beside
reproduced ones without mixing the two. A ``[reported.<method>]`` table (optionally one level deeper per task,
``[reported.<method>.<task>]``) maps registered metric names to ``{target = value}`` in the paper's unit; SilkNet's
file uses its own keys (``f1``, ``accuracy``, ``f1_per_target``, ``f1_underrepresented``), read as the registered
``f1_macro``, ``accuracy`` and ``f1_underrepresented``. Keys that are no registered metric (``other``, ``classes``,
``challenge_only``) hold numbers without an artbench counterpart and are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artbench.core.errors import ArtbenchError
from artbench.core.params import read_toml

_RESULT_KEYS = {"f1", "f1_std", "accuracy", "accuracy_std", "f1_per_target", "f1_underrepresented"}


@dataclass(frozen=True)
class ReportedResult:
    """One method's numbers as printed in a paper (percent)."""

    paper: str
    method: str
    f1: float | None = None
    f1_std: float | None = None
    accuracy: float | None = None
    accuracy_std: float | None = None
    f1_per_target: dict[str, float] = field(default_factory=dict)
    f1_underrepresented: dict[str, float] = field(default_factory=dict)
    source: str = "reported"


def baseline_dirs() -> list[Path]:
    package = Path(__file__).resolve().parents[1]  # artbench/
    return [d for d in (package.parent / "baselines", package / "_bundled" / "baselines") if d.is_dir()]


def load_baseline(name: str) -> dict[str, Any]:
    """The parsed recipe file ``baselines/<name>.toml``."""
    for d in baseline_dirs():
        path = d / f"{name}.toml"
        if path.is_file():
            return read_toml(path, "baseline file")
    names = sorted({p.stem for d in baseline_dirs() for p in d.glob("*.toml")})
    raise ArtbenchError(f"unknown baseline {name!r}; valid choices: {', '.join(names)}")


@dataclass(frozen=True)
class ReportedValue:
    """One number printed in a paper: ``target`` is ``overall`` for the mean over targets."""

    paper: str
    method: str
    task: str | None
    target: str
    metric: str
    value: float
    std: float | None = None
    source: str = "reported"


_SILKNET_KEYS = {"f1": "f1_macro", "accuracy": "accuracy"}
_SILKNET_PER_TARGET = {"f1_per_target": "f1_macro", "f1_underrepresented": "f1_underrepresented"}


def _values(paper: str, method: str, task: str | None, table: dict[str, Any], metrics: set[str]) -> list[ReportedValue]:
    out: list[ReportedValue] = []
    for key, value in table.items():
        if key in _SILKNET_KEYS and isinstance(value, int | float):
            std = table.get(f"{key}_std")
            out.append(ReportedValue(paper, method, task, "overall", _SILKNET_KEYS[key], float(value), std))
        elif key in _SILKNET_PER_TARGET and isinstance(value, dict):
            metric = _SILKNET_PER_TARGET[key]
            out += [ReportedValue(paper, method, task, t, metric, float(v)) for t, v in value.items()]
        elif key in metrics and isinstance(value, dict):
            out += [ReportedValue(paper, method, task, t, key, float(v)) for t, v in value.items()]
        elif (
            isinstance(value, dict)
            and task is None
            and key not in metrics
            and any(isinstance(v, dict) and k in metrics for k, v in value.items())
        ):  # one level deeper: a task's table
            out += _values(paper, method, key, value, metrics)
    return out


def reported_values(name: str, metrics: set[str]) -> list[ReportedValue]:
    """Every comparable reported number of ``baselines/<name>.toml``; ``metrics`` are the registered metric names."""
    data = load_baseline(name)
    paper = data.get("paper", {}).get("key", name)
    return [
        v for method, table in data.get("reported", {}).items() for v in _values(paper, method, None, table, metrics)
    ]


def reported_results(name: str) -> list[ReportedResult]:
    """The reported results of every method in ``baselines/<name>.toml``."""
    data = load_baseline(name)
    paper = data.get("paper", {}).get("key", name)
    results = []
    for method, values in data.get("reported", {}).items():
        unknown = set(values) - _RESULT_KEYS
        if unknown:
            raise ArtbenchError(f"baselines/{name}.toml [reported.{method}]: unknown keys {sorted(unknown)}")
        results.append(ReportedResult(paper=paper, method=method, **values))
    return results
