"""The run-folder format: the runner writes through :class:`RunWriter`, every reader through :func:`read_run`.

```
<out>/<task>/<method>/<run-id>/
  config.json        resolved parameters, task, method, split
  environment.json   versions, git commit, device, dataset fingerprint
  summary.json       format_version, status, seeds, mean/std/per-seed values of every metric
  seed-<k>/metrics.json      per target and overall metrics (+ fit info)
  seed-<k>/predictions.csv   image, <target>.true, <target>.pred (multilabel joined by the separator)
  seed-<k>/scores.npz        one array per target, rows as predictions.csv, columns as metrics.json's "classes"
  seed-<k>/*.png             plots
```
A seed folder is written as ``seed-<k>.tmp`` and renamed when complete, so a folder named ``seed-<k>`` is always
whole. Format 1 (before ``format_version``) had no ``scores.npz``; it is read, but its scores are not.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError

FORMAT_VERSION = 2
SUMMARY, CONFIG, ENVIRONMENT = "summary.json", "config.json", "environment.json"
METRICS, PREDICTIONS, SCORES = "metrics.json", "predictions.csv", "scores.npz"


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def jsonable(obj: Any) -> Any:
    """Replace NaN (undefined metrics) by None and numpy scalars by Python ones, so JSON files stay standard."""
    if isinstance(obj, float | np.floating):
        return None if obj != obj else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False, default=str))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtbenchError(f"cannot read {str(path)!r} ({type(exc).__name__}); the run folder is damaged") from None


class RunWriter:
    """Creates a run folder and writes its files; every write is atomic."""

    def __init__(self, out_dir: Path, task: str, method: str) -> None:
        self.run_id = new_run_id()
        self.run_dir = out_dir / task / method / self.run_id
        self.task, self.method = task, method
        try:
            self.run_dir.mkdir(parents=True)
        except OSError as exc:
            raise ArtbenchError(
                f"cannot create the run folder {str(self.run_dir)!r} ({exc}); pass a writable --out"
            ) from None

    def write_config(self, config: Mapping[str, Any]) -> None:
        write_json(self.run_dir / CONFIG, config)

    def write_environment(self, environment: Mapping[str, Any]) -> None:
        write_json(self.run_dir / ENVIRONMENT, environment)

    def write_summary(self, status: str, seeds_requested: int, seeds_completed: list[int], **extra: Any) -> None:
        write_json(
            self.run_dir / SUMMARY,
            {
                "format_version": FORMAT_VERSION,
                "task": self.task,
                "method": self.method,
                "run_id": self.run_id,
                "status": status,
                "seeds_requested": seeds_requested,
                "seeds_completed": seeds_completed,
                **extra,
            },
        )

    def seed_tmp(self, seed: int) -> Path:
        return self.run_dir / f"seed-{seed}.tmp"

    def write_seed(
        self,
        seed: int,
        metrics: Mapping[str, Any],
        predictions: pd.DataFrame,
        scores: Mapping[str, np.ndarray],
        extra: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write one finished seed (``extra`` adds files such as plots) and publish it by renaming."""
        tmp, final = self.seed_tmp(seed), self.run_dir / f"seed-{seed}"
        tmp.mkdir(exist_ok=True)
        write_json(tmp / METRICS, metrics)
        predictions.to_csv(tmp / PREDICTIONS, index=False)
        np.savez_compressed(tmp / SCORES, **{name: np.asarray(v) for name, v in scores.items()})
        if extra is not None:
            extra(tmp)
        os.replace(tmp, final)
        return final

    def discard_seed(self, seed: int) -> None:
        shutil.rmtree(self.seed_tmp(seed), ignore_errors=True)


@dataclass
class RunRecord:
    """A run folder as read back."""

    run_dir: Path
    format_version: int
    summary: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.summary["task"]

    @property
    def method(self) -> str:
        return self.summary["method"]

    @property
    def status(self) -> str:
        return self.summary["status"]

    @property
    def seeds(self) -> list[int]:
        return list(self.summary.get("seeds_completed", []))

    def seed_dir(self, seed: int) -> Path:
        path = self.run_dir / f"seed-{seed}"
        if not path.is_dir():
            raise ArtbenchError(f"run {str(self.run_dir)!r} has no finished seed {seed}")
        return path

    def metrics(self, seed: int) -> dict[str, Any]:
        return _read_json(self.seed_dir(seed) / METRICS)

    def predictions(self, seed: int) -> pd.DataFrame:
        return pd.read_csv(self.seed_dir(seed) / PREDICTIONS, dtype=str, keep_default_na=False)

    def scores(self, seed: int) -> dict[str, np.ndarray]:
        if self.format_version < 2:
            raise ArtbenchError(
                f"run {str(self.run_dir)!r} has format {self.format_version}, written before scores.npz existed; "
                "run it again to compare it with score-based tests"
            )
        with np.load(self.seed_dir(seed) / SCORES) as npz:
            return {name: npz[name] for name in npz.files}


def read_run(run_dir: Path) -> RunRecord:
    """Read a run folder; a folder that is not one, or of an unknown format, is a one-line error."""
    summary_path = Path(run_dir) / SUMMARY
    if not summary_path.is_file():
        raise ArtbenchError(f"{str(run_dir)!r} is not an artbench run folder (no {SUMMARY})")
    summary = _read_json(summary_path)
    version = summary.get("format_version", 1) if isinstance(summary, dict) else None
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION or "status" not in summary:
        raise ArtbenchError(
            f"run folder {str(run_dir)!r} has an unknown format (format_version {version!r}); "
            f"this artbench reads formats 1-{FORMAT_VERSION}: upgrade artbench or run it again"
        )
    record = RunRecord(Path(run_dir), version, summary)
    for name, attr in ((CONFIG, "config"), (ENVIRONMENT, "environment")):
        if (Path(run_dir) / name).is_file():
            setattr(record, attr, _read_json(Path(run_dir) / name))
    return record


def find_runs(out_dir: Path, task: str | None = None, method: str | None = None) -> list[RunRecord]:
    """Every readable run under ``out_dir`` (optionally of one task and method), oldest first."""
    pattern = f"{task or '*'}/{method or '*'}/*/{SUMMARY}"
    runs = []
    for path in sorted(Path(out_dir).glob(pattern), key=lambda p: p.parent.name):
        try:
            runs.append(read_run(path.parent))
        except ArtbenchError:
            continue
    return runs


def latest_complete_run(out_dir: Path, task: str, method: str) -> RunRecord:
    complete = [r for r in find_runs(out_dir, task, method) if r.status == "complete"]
    if not complete:
        raise ArtbenchError(
            f"no complete run of {method!r} on {task!r} in {str(out_dir)!r}; run `artbench run {task} {method}` first"
        )
    return complete[-1]
