"""Published baselines: the papers' recipes and reported numbers in ``baselines/*.toml``.

Reported numbers are marked as such (``source = "reported"``) so that leaderboards can show them beside
reproduced ones without mixing the two.
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
