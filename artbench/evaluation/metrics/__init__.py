"""Metrics per target kind, in a registry (:data:`METRICS`), and the evaluation of a target with all of them.

Importing this package registers the built-in metrics: multiclass (:mod:`.classification`), multilabel
(:mod:`.multilabel`) and regression (:mod:`.regression`).
"""

from __future__ import annotations

from artbench.evaluation.metrics import classification, multilabel, regression
from artbench.evaluation.metrics.evaluate import THRESHOLD_GRID, choose_thresholds, evaluate_target, run_level
from artbench.evaluation.metrics.registry import METRICS, Metric, TargetEvaluation, metric_label, register_metric

__all__ = [
    "METRICS",
    "THRESHOLD_GRID",
    "Metric",
    "TargetEvaluation",
    "choose_thresholds",
    "classification",
    "evaluate_target",
    "metric_label",
    "multilabel",
    "register_metric",
    "regression",
    "run_level",
]
