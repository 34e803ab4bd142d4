"""``artbench evaluate``: score a predictions file against a task's ground truth (issue 11, "evaluate").

The file has the ``predictions.csv`` layout of a run folder (:mod:`artbench.results.store`): ``image`` and one
``<target>.pred`` column per target (``<target>.true`` columns may be present and are ignored: the ground truth
comes from the task). Optional scores follow ``scores.npz``: one array per target, rows as the CSV, columns as
``TargetSpec.class_names`` (regression: the predicted values). Scoring goes through
:func:`~artbench.evaluation.task_evaluation.evaluate_predictions`, the code path of ``artbench run``, so leaderboard
scores are recomputed from predictions, never copied from a submitter's numbers.

Without scores, the metrics that read scores (``Metric.needs_scores``: top-k accuracy, mAP) are reported as
unavailable instead of being computed from hard labels; multiclass predictions become one-hot scores and multilabel
predictions multi-hot scores for the other metrics. With scores, a multilabel target's decision threshold is the
one implied by its predictions (every predicted label scores higher than every unpredicted one); a run that chose
different thresholds per metric on the validation split is therefore reproduced for the metric whose threshold
wrote ``predictions.csv`` (the task's first thresholded metric) and may differ for the others.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError
from artbench.core.predictions import Predictions
from artbench.core.targets import TargetSpec
from artbench.data.task_data import TaskData
from artbench.evaluation.metrics import METRICS, run_level
from artbench.evaluation.task_evaluation import evaluate_predictions

SHOWN = 5
"""Offenders named in an error message."""


def offenders(values: list[Any] | np.ndarray, what: str) -> str:
    """``"3 <what>: 'a', 'b', 'c'"``: the count and the first :data:`SHOWN` values."""
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:SHOWN]) + (" ..." if len(values) > SHOWN else "")
    return f"{len(values)} {what}: {shown}"


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions file as strings (empty cells stay empty strings)."""
    if not Path(path).is_file():
        raise ArtbenchError(f"predictions file {str(path)!r} does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArtbenchError(f"cannot read predictions file {str(path)!r} as CSV ({type(exc).__name__})") from None


def check_columns(table: pd.DataFrame, targets: list[TargetSpec], source: str) -> None:
    """``image`` and ``<target>.pred`` for every target are required; ``<target>.true`` is allowed; nothing else."""
    required = ["image", *(f"{t.name}.pred" for t in targets)]
    allowed = {*required, *(f"{t.name}.true" for t in targets)}
    missing = [c for c in required if c not in table.columns]
    unexpected = [c for c in table.columns if c not in allowed]
    duplicated = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if missing or unexpected or duplicated:
        problems = [
            f"{label} {', '.join(cols)}"
            for label, cols in (("missing", missing), ("unexpected", unexpected), ("repeated", duplicated))
            if cols
        ]
        raise ArtbenchError(
            f"{source}: wrong columns ({'; '.join(problems)}); expected image, "
            f"{', '.join(f'{t.name}.pred' for t in targets)} (and optionally <target>.true)"
        )


def match_images(
    given: pd.Series, split_images: np.ndarray, all_images: np.ndarray, split: str, source: str
) -> np.ndarray:
    """Position in ``split_images`` of every row of ``given``.

    An image matches by its absolute path, or by its path relative to the folder holding all of the dataset's images
    (as the tail of a path written on another machine). Duplicate, unknown and missing images are errors.
    """
    position = {str(p): i for i, p in enumerate(split_images)}
    paths = [str(p) for p in all_images]
    root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    relative = {PurePosixPath(os.path.relpath(str(p), root)).as_posix(): i for i, p in enumerate(split_images)}
    depths = sorted({len(PurePosixPath(k).parts) for k in relative}, reverse=True)

    def lookup(value: str) -> int:
        if value in position:
            return position[value]
        parts = PurePosixPath(value.replace("\\", "/")).parts
        for depth in depths:
            if len(parts) >= depth and (found := relative.get("/".join(parts[-depth:]))) is not None:
                return found
        return -1

    matched = np.array([lookup(v) for v in given], dtype=np.int64)
    repeated = given[pd.Series(matched).duplicated(keep=False).to_numpy() & (matched >= 0)]
    if len(repeated):
        raise ArtbenchError(f"{source}: {offenders(repeated.unique(), 'image(s) listed more than once')}")
    unknown = given[matched < 0]
    if len(unknown):
        raise ArtbenchError(
            f"{source}: {offenders(unknown.tolist(), f'image(s) that are not in the {split} split of the task')}"
        )
    absent = np.setdiff1d(np.arange(len(split_images)), matched)
    if len(absent):
        raise ArtbenchError(
            f"{source}: {offenders(split_images[absent], f'image(s) of the {split} split without a prediction')}"
        )
    return matched


def _encode_predictions(spec: TargetSpec, cells: pd.Series, source: str) -> np.ndarray:
    """Predicted class codes (multiclass), multi-hot rows (multilabel) or values (regression) of one column."""
    column = f"{spec.name}.pred"
    if spec.kind == "regression":
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        bad = cells[~np.isfinite(values)]
        if len(bad):
            raise ArtbenchError(f"{source}: {column}: {offenders(bad.tolist(), 'cell(s) that are not finite numbers')}")
        return values
    if spec.kind == "multilabel":
        lookup = {c: i for i, c in enumerate(spec.classes)}
        rows = [spec.split_cell(cell) for cell in cells]
        unknown = sorted({label for labels in rows for label in labels} - set(lookup))
        if unknown:
            raise ArtbenchError(f"{source}: {column}: {offenders(unknown, 'unknown class name(s)')}")
        hot = np.zeros((len(rows), spec.num_classes), dtype=np.int8)
        for r, labels in enumerate(rows):
            hot[r, [lookup[label] for label in labels]] = 1
        return hot
    lookup = {c: i for i, c in enumerate(spec.class_names)}
    codes = cells.map(lookup)
    unknown = cells[codes.isna()]
    if len(unknown):
        raise ArtbenchError(
            f"{source}: {column}: {offenders(unknown.unique(), 'unknown class name(s)')} "
            f"(classes: {', '.join(spec.class_names)})"
        )
    return codes.to_numpy(dtype=np.int64)


def read_scores(path: Path, targets: list[TargetSpec], num_rows: int) -> dict[str, np.ndarray]:
    """Scores in the ``scores.npz`` layout, checked against the targets and the number of prediction rows."""
    if not Path(path).is_file():
        raise ArtbenchError(f"scores file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            scores = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as exc:
        raise ArtbenchError(f"cannot read scores file {str(path)!r} as .npz ({type(exc).__name__})") from None
    names = [t.name for t in targets]
    if sorted(scores) != sorted(names):
        raise ArtbenchError(
            f"scores file {str(path)!r} holds arrays {sorted(scores)}; expected one per target: {', '.join(names)}"
        )
    for spec in targets:
        array = scores[spec.name]
        shape = (num_rows,) if spec.kind == "regression" else (num_rows, spec.num_outputs)
        if array.shape != shape or not np.issubdtype(array.dtype, np.number):
            raise ArtbenchError(
                f"scores file {str(path)!r}: array {spec.name!r} has shape {array.shape} ({array.dtype}); "
                f"expected numbers of shape {shape} (rows as the predictions, columns {list(spec.class_names)})"
            )
        if not np.isfinite(array).all():
            raise ArtbenchError(f"scores file {str(path)!r}: array {spec.name!r} holds NaN or infinite values")
    return scores


def decided_at_half(scores: np.ndarray, predicted: np.ndarray, name: str) -> np.ndarray:
    """Multilabel scores mapped, strictly increasingly, so that ``>= 0.5`` gives exactly ``predicted``.

    The map goes through the ranks of the distinct score values, so every ordering and every tie (all that the
    ranking metrics read) is kept exactly; evaluation at the default threshold 0.5 then reproduces the predictions.
    Predictions that no single threshold explains (an unpredicted label scoring at least a predicted one) are an error.
    """
    positive, negative = scores[predicted == 1], scores[predicted == 0]
    if len(positive) and len(negative) and negative.max() >= positive.min():
        raise ArtbenchError(
            f"target {name!r}: the predictions are not the scores above one threshold (a label scoring "
            f"{negative.max():.6g} is not predicted while one scoring {positive.min():.6g} is); "
            "pass the scores that produced the predictions"
        )
    values, ranks = np.unique(scores, return_inverse=True)
    ranks = ranks.reshape(scores.shape)
    cut = int(np.searchsorted(values, positive.min())) if len(positive) else len(values)
    return np.where(
        ranks >= cut,
        0.5 + 0.5 * (ranks - cut) / (len(values) - cut + 1),
        0.5 * (ranks + 1) / (cut + 1),
    )


def _scores_for(
    spec: TargetSpec, predicted: np.ndarray, given: np.ndarray | None, cells: pd.Series, source: str
) -> np.ndarray:
    """The scores handed to the evaluation: the given ones (checked against the predictions) or built from them."""
    if spec.kind == "regression":
        if given is not None and not np.allclose(given, predicted, rtol=1e-6, atol=0):
            bad = cells[~np.isclose(given, predicted, rtol=1e-6, atol=0)]
            raise ArtbenchError(
                f"{source}: {spec.name}.pred: {offenders(bad.tolist(), 'value(s) that differ from the scores')}"
            )
        return predicted if given is None else given.astype(float)
    if spec.kind == "multilabel":
        return predicted.astype(np.float32) if given is None else decided_at_half(given, predicted, spec.name)
    if given is None:
        return np.eye(spec.num_outputs, dtype=np.float32)[predicted]
    disagree = given.argmax(axis=1) != predicted
    if disagree.any():
        what = "prediction(s) that are not the argmax of the scores"
        raise ArtbenchError(f"{source}: {spec.name}.pred: {offenders(cells[disagree].tolist(), what)}")
    return given


def _empty(spec: TargetSpec) -> np.ndarray:
    return np.zeros((0,) if spec.kind == "regression" else (0, spec.num_outputs), dtype=np.float32)


def evaluate_file(
    data: TaskData, predictions: Path, *, split: str = "test", scores: Path | None = None
) -> dict[str, Any]:
    """Metrics of a predictions file (and optional scores file) on ``split`` of the task in ``data``.

    Returns ``task``, ``split``, ``num_images``, ``metrics`` (``targets`` and ``overall`` as in a seed's
    ``metrics.json``; undefined values NaN) and ``unavailable`` (the score-based metrics left out for lack of scores).
    """
    if split not in ("train", "val", "test"):
        raise ArtbenchError(f"unknown split {split!r}; valid: train, val, test")
    source = Path(predictions).name
    table = read_predictions(predictions)
    check_columns(table, data.targets, source)
    rows = data.index(split)
    images = data.dataset.table["image"].to_numpy()
    matched = match_images(table["image"], images[rows], images, split, source)
    given = read_scores(scores, data.targets, len(table)) if scores is not None else None
    test_scores = {}
    for spec in data.targets:
        cells = table[f"{spec.name}.pred"]
        predicted = _encode_predictions(spec, cells, source)
        test_scores[spec.name] = _scores_for(
            spec, predicted, None if given is None else given[spec.name], cells, source
        )
    # No validation rows: no threshold is chosen, so evaluation uses 0.5, where the scores above reproduce the
    # given multilabel predictions exactly.
    val = Predictions(np.zeros(0, dtype=np.int64), {t.name: _empty(t) for t in data.targets})
    metrics, _, _ = evaluate_predictions(data, val, Predictions(rows[matched], test_scores))
    unavailable: list[str] = []
    for spec in data.targets:
        result = metrics["targets"][spec.name]
        result.pop("thresholds", None)
        if given is None:
            for name in METRICS.names():
                if name in result and METRICS.get(name).needs_scores:
                    result[name] = float("nan")
                    unavailable.append(f"{spec.name}.{name}")
            if spec.kind == "multilabel":
                for values in result.get("per_class", {}).values():
                    values["ap"] = float("nan")
    metrics["overall"] = run_level(metrics["targets"])
    return {
        "task": data.task.name,
        "split": split,
        "num_images": len(rows),
        "metrics": metrics,
        "unavailable": unavailable,
    }
