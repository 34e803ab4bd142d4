"""Evaluating one target with every registered metric of its kind, choosing thresholds, averaging targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import artbench.evaluation.metrics.classification as classification
import artbench.evaluation.metrics.multilabel as multilabel
from artbench.core.targets import TargetSpec
from artbench.evaluation.metrics.registry import METRICS, Metric, TargetEvaluation

DEFAULT_THRESHOLD = 0.5
# Candidate multilabel decision thresholds: 0.05, 0.10, ..., 0.95 (np.linspace(0.05, 0.95, 19), rounded).
THRESHOLD_GRID: np.ndarray = np.round(np.linspace(0.05, 0.95, 19), 2)
_DETAILS: dict[str, Callable[[TargetEvaluation], dict[str, Any]]] = {
    "multiclass": classification.details,
    "multilabel": multilabel.details,
}


def _metrics(kind: str) -> list[Metric]:
    return [m for m in map(METRICS.get, METRICS.names()) if kind in m.kinds]


def _predict(spec: TargetSpec, scores: np.ndarray, threshold: float) -> np.ndarray:
    if spec.kind == "multiclass":
        return scores.argmax(axis=1)
    if spec.kind == "multilabel":
        return (scores >= threshold).astype(np.int8)
    return scores


def _evaluation(
    spec: TargetSpec, y_true: np.ndarray, scores: np.ndarray, underrepresented: Sequence[str] = ()
) -> TargetEvaluation:
    """The evaluation of the rows with a known label, at the default threshold."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    known = spec.known(y_true)
    if not known.all():
        y_true, scores = y_true[known], scores[known]
    return TargetEvaluation(
        spec, y_true, scores, _predict(spec, scores, DEFAULT_THRESHOLD), tuple(underrepresented), DEFAULT_THRESHOLD
    )


def _at(ev: TargetEvaluation, threshold: float) -> TargetEvaluation:
    if threshold == ev.threshold:
        return ev
    return replace(ev, y_pred=_predict(ev.spec, ev.scores, threshold), threshold=threshold)


def choose_thresholds(spec: TargetSpec, y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Per thresholded metric, the threshold of :data:`THRESHOLD_GRID` maximising it on these (validation) rows.

    Multilabel targets only (else ``{}``). Rows with a missing label are ignored; ties go to the lowest threshold.
    A metric undefined at every threshold (no known rows) is left out, so that evaluation uses 0.5.
    """
    if spec.kind != "multilabel":
        return {}
    metrics = [m for m in _metrics(spec.kind) if m.thresholded]
    base = _evaluation(spec, y_true, scores)
    values = np.array([[m.fn(_at(base, float(t))) for m in metrics] for t in THRESHOLD_GRID])
    return {
        m.name: float(THRESHOLD_GRID[np.nanargmax(values[:, j])])
        for j, m in enumerate(metrics)
        if not np.isnan(values[:, j]).all()
    }


def evaluate_target(
    spec: TargetSpec,
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    underrepresented: Sequence[str] = (),
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Every registered metric of the target's kind, with details, on the rows whose label is known.

    Args:
        spec: the target.
        y_true: encoded labels of all evaluated rows (see :mod:`artbench.core.targets`), missing ones included.
        scores: the matching outputs: ``[N, K_out]`` probabilities (classification) or ``[N]`` values (regression).
        underrepresented: multiclass: the foreground class names deemed under-represented.
        thresholds: multilabel: decision threshold per thresholded metric (from :func:`choose_thresholds`);
            0.5 for a metric not given.

    Returns:
        ``num_samples`` (known rows), one float per metric (NaN where undefined) and, for multiclass targets,
        ``underrepresented``, ``per_class``, ``confusion_matrix``, ``classes_without_test_samples``; for
        multilabel targets ``thresholds``, ``per_class`` and ``classes_without_test_samples``.
    """
    thresholds = dict(thresholds or {})
    unknown = set(thresholds) - {m.name for m in map(METRICS.get, METRICS.names()) if m.thresholded}
    if unknown:
        raise ValueError(f"thresholds given for metrics that are not thresholded: {sorted(unknown)}")
    base = _evaluation(spec, y_true, scores, underrepresented)
    out: dict[str, Any] = {"num_samples": len(base.y_true)}
    used: dict[str, float] = {}
    for metric in _metrics(spec.kind):
        ev = base
        if metric.thresholded:
            used[metric.name] = float(thresholds.get(metric.name, DEFAULT_THRESHOLD))
            ev = _at(base, used[metric.name])
        out[metric.name] = float(metric.fn(ev))
    if spec.kind == "multilabel":
        out["thresholds"] = used
    if spec.kind in _DETAILS:
        out.update(_DETAILS[spec.kind](base))
    return out


def run_level(per_target: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Mean over targets (SilkNet Table 4 style) of every registered metric at least one target has.

    Undefined (NaN) values are ignored; a metric undefined for every target is NaN.
    """
    out = {}
    for name in METRICS.names():
        values = np.array([m[name] for m in per_target.values() if name in m], dtype=float)
        if len(values):
            values = values[~np.isnan(values)]
            out[name] = float(values.mean()) if len(values) else float("nan")
    return out
