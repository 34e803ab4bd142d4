"""The run-folder format: the runner writes through :class:`RunWriter`, every reader through :func:`read_run`.

```
<out>/<task>/<method>/<run-id>/
  config.json        resolved parameters, task, method, split
  environment.json   versions, git commit, device, dataset fingerprint
  summary.json       format_version, status (see RUN_STATUSES), seeds, mean/std/per-seed values of every metric
  seed-<k>/metrics.json      per target and overall metrics (+ fit info)
  seed-<k>/predictions.csv   image, <target>.true, <target>.pred (multilabel joined by the separator)
  seed-<k>/scores.npz        one array per target, rows as predictions.csv, columns as metrics.json's "classes"
  seed-<k>/*.png             plots
  seed-<k>/complete.json     written last: size and SHA-256 of every file above (format 3)
  seed-<k>.tmp/              the seed in progress; checkpoints/ holds a torch method's per-epoch checkpoints
  tracking.json      MLflow store and parent run id, so that a resumed run logs into the same parent
  logs/              sweep job logs and seed-<k>.failed notes
  .seed-<k>.lock, .run.lock  lock files (flock): a seed in training, the summary being rebuilt
```
A seed folder is written as ``seed-<k>.tmp``; its marker ``complete.json`` is written last and the folder is then
renamed, so a ``seed-<k>`` folder is whole, and a format-3 seed folder without a valid marker is never taken for a
finished one (:func:`seed_complete`). Format 1 (before ``format_version``) had no ``scores.npz``; it is read, but its
scores are not. Format 2 had no markers and no cost; it is read, but not resumed.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError

FORMAT_VERSION = 3
SUMMARY, CONFIG, ENVIRONMENT = "summary.json", "config.json", "environment.json"
METRICS, PREDICTIONS, SCORES = "metrics.json", "predictions.csv", "scores.npz"
COMPLETE, CHECKPOINTS, TRACKING, LOGS = "complete.json", "checkpoints", "tracking.json", "logs"
RESUMABLE_FORMAT = 3
"""The first format whose seed folders carry completion markers: older runs are read but not resumed."""
_CHECKPOINT_EPOCH = re.compile(r"-epoch-(\d+)\.pt$")


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


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so that a marker never outlives what it describes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _seed_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE)


def write_completion_marker(folder: Path, seed: int) -> None:
    """Write ``complete.json`` (size and SHA-256 of every file of the seed folder) after flushing those files."""
    files = _seed_files(folder)
    for path in files:
        _fsync(path)
    entries = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files}
    marker = folder / COMPLETE
    write_json(marker, {"seed": seed, "written": dt.datetime.now().isoformat(timespec="seconds"), "files": entries})
    _fsync(marker)


def seed_complete(seed_dir: Path, verify: bool = True) -> bool:
    """Whether ``seed_dir`` is a finished format-3 seed: its marker reads and (``verify``) every file it lists has
    the recorded size and SHA-256. A damaged or half-copied folder is not complete."""
    try:
        marker = json.loads((seed_dir / COMPLETE).read_text(encoding="utf-8"))
        files = marker["files"]
        for name, entry in files.items():
            path = seed_dir / name
            if path.stat().st_size != entry["size"] or (verify and _sha256(path) != entry["sha256"]):
                return False
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(files)


def seed_numbers(run_dir: Path) -> list[int]:
    """Seeds with a published folder ``seed-<k>`` (complete or not), ascending."""
    found = (re.fullmatch(r"seed-(\d+)", p.name) for p in Path(run_dir).iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def completed_seeds(run_dir: Path, verify: bool = True) -> list[int]:
    """Seeds of a format-3 run whose folder is complete (see :func:`seed_complete`), ascending."""
    return [k for k in seed_numbers(run_dir) if seed_complete(Path(run_dir) / f"seed-{k}", verify)]


def checkpoint_epoch(run_dir: Path, seed: int) -> int | None:
    """The latest epoch checkpointed for an unfinished seed (``seed-<k>.tmp/checkpoints/*-epoch-<e>.pt``)."""
    folder = Path(run_dir) / f"seed-{seed}.tmp" / CHECKPOINTS
    epochs = [int(m.group(1)) for p in folder.glob("*.pt") if (m := _CHECKPOINT_EPOCH.search(p.name))]
    return max(epochs) if epochs else None


class Lock:
    """An exclusive ``flock`` on a file; the operating system releases it when the holder dies (kill -9 too)."""

    def __init__(self, path: Path) -> None:
        self.path, self._fd = path, None

    def acquire(self, blocking: bool = True) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def seed_lock(run_dir: Path, seed: int) -> Lock:
    """The lock a process holds while it trains ``seed`` of a run (concurrent sweep jobs skip a locked seed)."""
    return Lock(Path(run_dir) / f".seed-{seed}.lock")


def seed_busy(run_dir: Path, seed: int) -> bool:
    """Whether another process is training ``seed`` of the run now."""
    lock = seed_lock(run_dir, seed)
    if not lock.path.exists():
        return False
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Serialise the writes that concern a whole run (summary.json, environment.json, MLflow parent status)."""
    lock = Lock(Path(run_dir) / ".run.lock")
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def read_tracking(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``tracking.json`` (MLflow store and parent run id), or None."""
    try:
        found = json.loads((Path(run_dir) / TRACKING).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return found if isinstance(found, dict) else None


def write_tracking(run_dir: Path, tracking: Mapping[str, Any]) -> None:
    write_json(Path(run_dir) / TRACKING, tracking)


def failure_note(run_dir: Path, seed: int) -> Path:
    """``logs/seed-<k>.failed``: the last error of a seed that failed in a sweep job (removed when it finishes)."""
    return Path(run_dir) / LOGS / f"seed-{seed}.failed"


def record_failure(run_dir: Path, seed: int, message: str) -> None:
    note = failure_note(run_dir, seed)
    note.parent.mkdir(exist_ok=True)
    tmp = note.with_name(note.name + ".tmp")
    tmp.write_text(message.strip() + "\n", encoding="utf-8")
    os.replace(tmp, note)


def clear_failure(run_dir: Path, seed: int) -> None:
    failure_note(run_dir, seed).unlink(missing_ok=True)


def failures(run_dir: Path) -> dict[int, str]:
    """Seed → first line of its last recorded failure."""
    found = {}
    for note in (Path(run_dir) / LOGS).glob("seed-*.failed"):
        m = re.fullmatch(r"seed-(\d+)\.failed", note.name)
        if m:
            text = note.read_text(encoding="utf-8", errors="replace").strip()
            found[int(m.group(1))] = text.splitlines()[0] if text else "failed"
    return dict(sorted(found.items()))


class RunWriter:
    """Creates a run folder (or reopens one, :meth:`reopen`) and writes its files; every write is atomic."""

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

    @classmethod
    def reopen(cls, run_dir: Path, task: str, method: str) -> RunWriter:
        """A writer for an existing run folder (resume)."""
        writer = cls.__new__(cls)
        writer.run_dir, writer.run_id = Path(run_dir), Path(run_dir).name
        writer.task, writer.method = task, method
        return writer

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
        """Write one finished seed (``extra`` adds files such as plots), drop its checkpoints, write the completion
        marker last and publish the folder by renaming."""
        tmp, final = self.seed_tmp(seed), self.run_dir / f"seed-{seed}"
        tmp.mkdir(exist_ok=True)
        write_json(tmp / METRICS, metrics)
        predictions.to_csv(tmp / PREDICTIONS, index=False)
        np.savez_compressed(tmp / SCORES, **{name: np.asarray(v) for name, v in scores.items()})
        if extra is not None:
            extra(tmp)
        shutil.rmtree(tmp / CHECKPOINTS, ignore_errors=True)
        write_completion_marker(tmp, seed)
        os.replace(tmp, final)
        _fsync(self.run_dir)
        return final

    def discard_seed(self, seed: int) -> None:
        shutil.rmtree(self.seed_tmp(seed), ignore_errors=True)

    def reset_seed_tmp(self, seed: int) -> Path:
        """``seed-<k>.tmp`` emptied of everything but its checkpoints (a resumed seed continues from them)."""
        tmp = self.seed_tmp(seed)
        tmp.mkdir(exist_ok=True)
        for path in tmp.iterdir():
            if path.name != CHECKPOINTS:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        return tmp

    def end_seed_attempt(self, seed: int) -> None:
        """After an interrupted or failed seed: keep ``seed-<k>.tmp`` only when it holds a checkpoint to resume."""
        tmp = self.seed_tmp(seed)
        if not any((tmp / CHECKPOINTS).glob("*.pt")):
            self.discard_seed(seed)
            return
        self.reset_seed_tmp(seed)

    def set_aside_incomplete_seed(self, seed: int) -> Path | None:
        """Move a ``seed-<k>`` folder that is not complete to ``seed-<k>.incomplete`` (replacing an older one), so
        that the seed can be trained again; returns the new place, or None when there was nothing to move."""
        final = self.run_dir / f"seed-{seed}"
        if not final.exists() or seed_complete(final):
            return None
        aside = self.run_dir / f"seed-{seed}.incomplete"
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
        return aside


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
        if not path.is_dir() or (self.format_version >= RESUMABLE_FORMAT and not (path / COMPLETE).is_file()):
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


RUN_STATUSES = ("complete", "incomplete", "undefined")
"""summary.json's ``status``: every requested seed is finished; some are not (yet); every seed is finished but no
metric is defined in any of them (e.g. no test sample with a known label), a result that leaderboards and
``compare`` leave out."""
FINISHED = frozenset({"complete", "undefined"})
"""The statuses of a run with nothing left to train."""


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
