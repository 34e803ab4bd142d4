"""Scoring a method's predictions on a task: every applicable metric of every target, the predictions table and
the scores (WILDS' "the dataset owns its evaluation")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.predictions import Predictions
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData
from artbench.evaluation.metrics import choose_thresholds, evaluate_target, run_level


def _decision_threshold(task: TaskSpec, thresholds: Mapping[str, float]) -> float:
    """The threshold behind a multilabel target's predictions.csv: that of the task's first thresholded metric."""
    for name in task.metrics:
        if name in thresholds:
            return thresholds[name]
    return next(iter(thresholds.values()), 0.5)


def evaluate_predictions(
    data: TaskData, val: Predictions, test: Predictions
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, np.ndarray]]:
    """Metrics per target and overall, the predictions table and the scores, on the test rows.

    Multilabel decision thresholds are chosen on the validation rows (``val``); ``artbench run`` and ``artbench
    evaluate`` both score through this function, so a submitted predictions file gets exactly the run's metrics.
    """
    per_target: dict[str, Any] = {}
    columns: dict[str, Any] = {"image": data.dataset.table["image"].to_numpy()[test.index]}
    for spec, codes in zip(data.targets, data.labels, strict=True):
        scores = test.scores[spec.name]
        thresholds = choose_thresholds(spec, codes[val.index], val.scores[spec.name])
        result = evaluate_target(
            spec, codes[test.index], scores, underrepresented=data.underrepresented[spec.name], thresholds=thresholds
        )
        per_target[spec.name] = {"kind": spec.kind, "classes": list(spec.class_names), **result}
        if spec.kind == "multiclass":
            predicted = scores.argmax(axis=1)
        elif spec.kind == "multilabel":
            predicted = (scores >= _decision_threshold(data.task, thresholds)).astype(np.int8)
        else:
            predicted = scores
        columns[f"{spec.name}.true"] = spec.decode(codes[test.index])
        columns[f"{spec.name}.pred"] = spec.decode(predicted)
    metrics = {"targets": per_target, "overall": run_level(per_target)}
    return metrics, pd.DataFrame(columns), {name: test.scores[name] for name in test.scores}
