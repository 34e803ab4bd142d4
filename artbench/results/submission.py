"""Leaderboard submissions (issue 11, "Leaderboards"): validate, recompute every score, add the entry.

A submission is a run folder as ``artbench run`` writes it (:mod:`artbench.results.store`), given as a folder or as a
``.tar.gz``/``.tgz``/``.tar``/``.zip`` archive (the files at its top or inside one top folder); the exact layout is
in ``leaderboards/README.md``. Scores are never copied: every seed's ``predictions.csv`` and ``scores.npz`` go
through :func:`artbench.results.evaluate.evaluate_file` (``artbench evaluate``, the code path of ``artbench run``)
against the task's ground truth, and the submission is rejected, with nothing written, when a claimed score differs
from the recomputed one, when the dataset fingerprint differs from the local dataset's, when a seed covers fewer
(or other) test images than the task, or when a file is missing or malformed. Archives are extracted into a
temporary folder member by member: no absolute paths, no ``..``, no links or device files, and limits on the
number of members and on the bytes actually written (a lying header or a zip bomb stops at the limit).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

import artbench
from artbench.core.errors import ArtbenchError
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData, prepare_task
from artbench.evaluation.aggregate import flatten_metrics, summarise
from artbench.results.evaluate import evaluate_file
from artbench.results.leaderboard import SUBMISSIONS
from artbench.results.store import (
    CONFIG,
    ENVIRONMENT,
    FORMAT_VERSION,
    PREDICTIONS,
    SCORES,
    SUMMARY,
    RunRecord,
    read_run,
    write_completion_marker,
    write_json,
)
from artbench.results.store import (
    METRICS as METRICS_FILE,
)

SUBMISSION_FILE = "submission.json"
SUBMISSION_KEYS = ("name", "description", "url", "authors")
ENVIRONMENT_KEYS = ("artbench_version", "git_commit", "torch", "cuda", "device_name", "dataset_fingerprint")
MAX_BYTES = 2 * 1024**3
"""Largest total size of an archive's extracted files."""
MAX_MEMBERS = 10_000
"""Most members (files and folders) of an archive."""
TOLERANCE = 1e-6
"""Largest absolute difference between a claimed and a recomputed score (scores are fractions)."""
SHOWN = 5
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class SubmissionRejected(ArtbenchError):
    """A submission that cannot go on the board; the message says why and what differs."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"submission rejected: {reason}")


# ------------------------------------------------------------------------------------------------------ archives


def _member_path(name: str, dest: Path) -> Path:
    """Where archive member ``name`` goes under ``dest``; absolute names, drive letters, backslashes and ``..``
    are refused."""
    if not name or name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
        raise SubmissionRejected(f"archive member {name!r} has an absolute or non-POSIX path")
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        raise SubmissionRejected(f"archive member {name!r} points outside the archive ('..')")
    target = dest.joinpath(*parts) if parts else dest
    if not target.resolve().is_relative_to(dest.resolve()):
        raise SubmissionRejected(f"archive member {name!r} points outside the archive")
    return target


def _copy_limited(source: IO[bytes], target: Path, budget: list[int], max_bytes: int) -> None:
    """Copy a member's bytes, counting what is really written against ``budget`` (headers may lie)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as out:
            while chunk := source.read(1 << 20):
                budget[0] -= len(chunk)
                if budget[0] < 0:
                    raise SubmissionRejected(f"the archive expands to more than {max_bytes:,} bytes")
                out.write(chunk)
    except FileExistsError:
        raise SubmissionRejected(f"archive member {target.name!r} is listed twice") from None


def _check_count(count: int, max_members: int) -> None:
    if count > max_members:
        raise SubmissionRejected(f"the archive has {count:,} members; at most {max_members:,} are accepted")


def _extract_tar(archive: Path, dest: Path, max_bytes: int, max_members: int) -> None:
    budget = [max_bytes]
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        _check_count(len(members), max_members)
        if sum(m.size for m in members if m.isfile()) > max_bytes:
            raise SubmissionRejected(f"the archive expands to more than {max_bytes:,} bytes")
        for member in members:
            target = _member_path(member.name, dest)
            if member.issym() or member.islnk():
                raise SubmissionRejected(f"archive member {member.name!r} is a link; links are not accepted")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a stream
                with source:
                    _copy_limited(source, target, budget, max_bytes)
            else:
                raise SubmissionRejected(f"archive member {member.name!r} is not a regular file or folder")


def _extract_zip(archive: Path, dest: Path, max_bytes: int, max_members: int) -> None:
    budget = [max_bytes]
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_count(len(infos), max_members)
        for info in infos:
            target = _member_path(info.filename, dest)
            mode = info.external_attr >> 16
            if (mode & 0o170000) not in (0, 0o100000, 0o040000):  # not unknown, regular file or folder: a link, ...
                raise SubmissionRejected(f"archive member {info.filename!r} is a link or special file")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:
                _copy_limited(source, target, budget, max_bytes)


def extract_archive(archive: Path, dest: Path, *, max_bytes: int = MAX_BYTES, max_members: int = MAX_MEMBERS) -> Path:
    """Extract ``archive`` (``.tar.gz``, ``.tgz``, ``.tar`` or ``.zip``) safely into the folder ``dest``."""
    name = archive.name.lower()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if name.endswith(".zip"):
            _extract_zip(archive, dest, max_bytes, max_members)
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            _extract_tar(archive, dest, max_bytes, max_members)
        else:
            raise SubmissionRejected(
                f"{archive.name!r} is no folder and no archive artbench reads ({', '.join(ARCHIVE_SUFFIXES)})"
            )
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, SubmissionRejected):
            raise
        raise SubmissionRejected(f"cannot read the archive {archive.name!r} ({type(exc).__name__}: {exc})") from None
    return dest


def _check_no_links(folder: Path) -> None:
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(parent, name)
            if path.is_symlink():
                raise SubmissionRejected(f"{str(path.relative_to(folder))!r} is a link; links are not accepted")


def submission_root(folder: Path) -> Path:
    """The folder holding ``summary.json``: ``folder`` itself or its only subfolder."""
    if (folder / SUMMARY).is_file():
        return folder
    children = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir() and (children[0] / SUMMARY).is_file():
        return children[0]
    raise SubmissionRejected(
        f"no {SUMMARY} at the top of the submission or of its only folder; submit a run folder of "
        "`artbench run` (see leaderboards/README.md)"
    )


# ---------------------------------------------------------------------------------------------------- validation


@dataclass
class Verified:
    """A submission whose every score was recomputed and matched its claims."""

    root: Path
    record: RunRecord
    task: TaskSpec
    name: str
    info: dict[str, Any]
    metrics: dict[int, dict[str, Any]]
    """Per seed: the ``metrics.json`` to store (the submitter's fit info, the recomputed scores)."""
    summary: dict[str, dict[str, Any]]
    """Mean, std and per-seed values of the recomputed scores, as a run's ``summary.json`` holds them."""


def _read_object(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionRejected(f"cannot read {what} ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise SubmissionRejected(f"{what} must hold a JSON object")
    return value


def _submission_info(root: Path, method: str) -> dict[str, Any]:
    path = root / SUBMISSION_FILE
    info = _read_object(path, SUBMISSION_FILE) if path.is_file() else {}
    unknown = sorted(set(info) - set(SUBMISSION_KEYS))
    if unknown:
        raise SubmissionRejected(f"{SUBMISSION_FILE}: unknown key(s) {unknown}; allowed: {', '.join(SUBMISSION_KEYS)}")
    if any(not isinstance(v, str) for v in info.values()):
        raise SubmissionRejected(f"{SUBMISSION_FILE}: every value must be a string")
    info.setdefault("name", method)
    if not NAME.fullmatch(info["name"]):
        raise SubmissionRejected(
            f"name {info['name']!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
            f"(set it in {SUBMISSION_FILE})"
        )
    return info


def read_submission(root: Path) -> RunRecord:
    """The submission as a run record, with the files and keys the board and the recomputation need."""
    for name in (SUMMARY, CONFIG, ENVIRONMENT):
        if not (root / name).is_file():
            raise SubmissionRejected(f"{name} is missing (see leaderboards/README.md)")
    try:
        record = read_run(root)
    except ArtbenchError as exc:
        raise SubmissionRejected(str(exc)) from None
    if record.status != "complete":
        raise SubmissionRejected(f"{SUMMARY} says status {record.status!r}; submit a complete run")
    seeds = record.summary.get("seeds_completed")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SubmissionRejected(f"{SUMMARY}: seeds_completed must be a non-empty list of seed numbers")
    if len(set(seeds)) != len(seeds):
        raise SubmissionRejected(f"{SUMMARY}: seeds_completed lists a seed twice")
    for seed in seeds:
        missing = [f for f in (PREDICTIONS, SCORES, METRICS_FILE) if not (root / f"seed-{seed}" / f).is_file()]
        if missing:
            raise SubmissionRejected(f"seed-{seed}/ lacks {', '.join(missing)}")
    if not isinstance(record.config.get("params"), dict) or not isinstance(record.config.get("method"), str):
        raise SubmissionRejected(f"{CONFIG} must hold the method ('method') and its parameters ('params')")
    absent = [k for k in ENVIRONMENT_KEYS if k not in record.environment]
    if absent:
        raise SubmissionRejected(f"{ENVIRONMENT} lacks {', '.join(absent)}")
    return record


def _unverifiable(claimed: Mapping[str, Any], task: TaskSpec) -> set[str]:
    """Multilabel metrics whose claimed threshold is not the one behind ``predictions.csv``.

    A run chooses a threshold per thresholded metric on the validation split and writes the predictions at the
    threshold of the task's first thresholded metric; ``evaluate`` reproduces the scores at that threshold only
    (:mod:`artbench.results.evaluate`), so the others cannot be checked. The board shows the recomputed values.
    """
    skipped: set[str] = set()
    for name, target in (claimed.get("targets") or {}).items():
        thresholds = target.get("thresholds") if isinstance(target, dict) else None
        if not isinstance(thresholds, dict) or not thresholds:
            continue
        decision = next((thresholds[m] for m in task.metrics if m in thresholds), next(iter(thresholds.values())))
        for metric, value in thresholds.items():
            if value != decision:
                skipped |= {f"{name}.{metric}", f"overall.{metric}"}
    return skipped


def _differs(claimed: Any, recomputed: float | None) -> bool:
    claimed_nan = claimed is None or (isinstance(claimed, float) and np.isnan(claimed))
    recomputed_nan = recomputed is None or np.isnan(recomputed)
    if claimed_nan or recomputed_nan:
        return claimed_nan != recomputed_nan
    if not isinstance(claimed, int | float) or isinstance(claimed, bool):
        return True
    return abs(float(claimed) - recomputed) > TOLERANCE


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)


def claim_differences(
    where: str, claimed: Mapping[str, Any], recomputed: Mapping[str, float], skipped: set[str]
) -> list[str]:
    """``"<where> <key>: claimed x, recomputed y"`` for every claimed score that the recomputation does not give."""
    out = []
    for key, value in claimed.items():
        if key in skipped:
            continue
        if key not in recomputed:
            out.append(f"{where} {key}: claimed {_show(value)}, not a score artbench computes")
        elif _differs(value, recomputed[key]):
            out.append(f"{where} {key}: claimed {_show(value)}, recomputed {_show(recomputed[key])}")
    return out


def verify(root: Path, task: TaskSpec, data: TaskData | None = None) -> Verified:
    """Check a submission folder against ``task`` and recompute its scores; raise :class:`SubmissionRejected`."""
    _check_no_links(root)
    record = read_submission(root)
    info = _submission_info(root, record.method)
    if record.task != task.name:
        raise SubmissionRejected(f"{SUMMARY} is for task {record.task!r}, not {task.name!r}")
    data = data if data is not None else prepare_task(task)
    local, claimed_fp = data.dataset.fingerprint, record.environment.get("dataset_fingerprint")
    if claimed_fp != local:
        raise SubmissionRejected(
            f"dataset fingerprint {claimed_fp!r} differs from this machine's {local!r} for task {task.name!r}: "
            "the predictions were made on other data"
        )
    differences: list[str] = []
    stored: dict[int, dict[str, Any]] = {}
    flats: list[dict[str, float]] = []
    for seed in record.seeds:
        folder = root / f"seed-{seed}"
        try:
            result = evaluate_file(data, folder / PREDICTIONS, split="test", scores=folder / SCORES)
        except ArtbenchError as exc:
            raise SubmissionRejected(f"seed-{seed}: {exc}") from None
        claimed = _read_object(folder / METRICS_FILE, f"seed-{seed}/{METRICS_FILE}")
        if not isinstance(claimed.get("overall"), dict) or not isinstance(claimed.get("targets"), dict):
            raise SubmissionRejected(f"seed-{seed}/{METRICS_FILE} lacks the 'overall' and 'targets' scores")
        flat = flatten_metrics(result["metrics"])
        skipped = _unverifiable(claimed, task)
        try:
            claimed_flat = flatten_metrics({"overall": claimed["overall"], "targets": claimed["targets"]})
        except (TypeError, ValueError, AttributeError):
            raise SubmissionRejected(f"seed-{seed}/{METRICS_FILE}: scores must be numbers or null") from None
        differences += claim_differences(f"seed {seed}", claimed_flat, flat, skipped)
        fit_info = {k: v for k, v in claimed.items() if k not in ("overall", "targets")}
        stored[seed] = {**fit_info, "seed": seed, **result["metrics"]}
        flats.append(flat)
    summary = summarise(flats)
    for key, value in (record.summary.get("metrics") or {}).items():
        values = value.get("values") if isinstance(value, dict) else None
        if key not in summary or values is None:
            continue
        if not isinstance(values, list) or len(values) != len(record.seeds):
            differences.append(f"{SUMMARY} {key}: {values!r} is not one value per seed {record.seeds}")
            continue
        for seed, claimed_value, recomputed in zip(record.seeds, values, summary[key]["values"], strict=True):
            differences += claim_differences(f"{SUMMARY} seed {seed}", {key: claimed_value}, {key: recomputed}, set())
    if differences:
        shown = "; ".join(differences[:SHOWN]) + (" ..." if len(differences) > SHOWN else "")
        raise SubmissionRejected(
            f"{len(differences)} claimed score(s) differ from the ones recomputed from the predictions: {shown}"
        )
    return Verified(root, record, task, info["name"], info, stored, summary)


# ---------------------------------------------------------------------------------------------------------- adding


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def entry_dir(out_dir: Path, task: str, name: str) -> Path:
    return out_dir / SUBMISSIONS / task / name


def add(verified: Verified, out_dir: Path, source: Path) -> Path:
    """Write the verified entry as a run folder under ``<out>/submissions/<task>/<name>/`` (atomically)."""
    final = entry_dir(out_dir, verified.task.name, verified.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{verified.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir()
    try:
        for name in (CONFIG, ENVIRONMENT):
            shutil.copyfile(verified.root / name, tmp / name)
        write_json(tmp / SUBMISSION_FILE, verified.info)
        for seed, metrics in verified.metrics.items():
            (tmp / f"seed-{seed}").mkdir()
            for name in (PREDICTIONS, SCORES):
                shutil.copyfile(verified.root / f"seed-{seed}" / name, tmp / f"seed-{seed}" / name)
            write_json(tmp / f"seed-{seed}" / METRICS_FILE, metrics)
            write_completion_marker(tmp / f"seed-{seed}", seed)
        record = verified.record
        write_json(
            tmp / SUMMARY,
            {
                "format_version": FORMAT_VERSION,
                "task": verified.task.name,
                "method": record.method,
                "run_id": record.summary.get("run_id", ""),
                "status": "complete",
                "seeds_requested": len(record.seeds),
                "seeds_completed": record.seeds,
                "metrics": verified.summary,
                "submission": {
                    **verified.info,
                    "source": source.name,
                    "source_sha256": _sha256(source),
                    "verified_by": f"artbench {artbench.__version__}",
                },
            },
        )
        if final.exists():
            raise SubmissionRejected(f"a submission named {verified.name!r} is already on the board")
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def submit(
    source: Path,
    resolve_task: Callable[[str], TaskSpec],
    out_dir: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_members: int = MAX_MEMBERS,
) -> tuple[Verified, Path]:
    """Validate and recompute the submission at ``source`` (folder or archive) and add it to ``out_dir``.

    ``resolve_task`` maps the task named in the submission's ``summary.json`` to its spec. Nothing is written
    unless every check passes; the caller rebuilds the board.
    """
    source = Path(source)
    if not source.exists():
        raise ArtbenchError(f"submission {str(source)!r} does not exist")
    with tempfile.TemporaryDirectory(prefix="artbench-submission-") as tmp:
        if source.is_dir():
            folder = source
        else:
            folder = extract_archive(source, Path(tmp), max_bytes=max_bytes, max_members=max_members)
        root = submission_root(folder)
        summary = _read_object(root / SUMMARY, SUMMARY)
        task = resolve_task(str(summary.get("task", "")))
        info = _submission_info(root, str(summary.get("method", "")))
        if entry_dir(out_dir, task.name, info["name"]).exists():
            raise SubmissionRejected(
                f"a submission named {info['name']!r} is already on the board of {task.name!r}; "
                f"choose another name in {SUBMISSION_FILE}"
            )
        verified = verify(root, task)
        return verified, add(verified, out_dir, source)
