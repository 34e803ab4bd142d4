"""Regression metrics (e.g. the creation year of an object)."""

from __future__ import annotations

import numpy as np

from artbench.evaluation.metrics.registry import Metric, TargetEvaluation, register_metric

_KINDS = frozenset({"regression"})


def _errors(ev: TargetEvaluation) -> np.ndarray:
    return np.abs(ev.y_pred - ev.y_true)


def mae(ev: TargetEvaluation) -> float:
    """Mean absolute error (``sklearn.metrics.mean_absolute_error``)."""
    return float(np.mean(_errors(ev))) if len(ev.y_true) else float("nan")


def rmse(ev: TargetEvaluation) -> float:
    """Root mean squared error (``sklearn.metrics.root_mean_squared_error``)."""
    return float(np.sqrt(np.mean(_errors(ev) ** 2))) if len(ev.y_true) else float("nan")


def within_50(ev: TargetEvaluation) -> float:
    """Accuracy within ±50 years: the share of predictions with ``|pred − true| ≤ 50``."""
    return float(np.mean(_errors(ev) <= 50)) if len(ev.y_true) else float("nan")


for _metric in (
    Metric("mae", "MAE", _KINDS, False, mae, higher_is_better=False),
    Metric("rmse", "RMSE", _KINDS, False, rmse, higher_is_better=False),
    Metric("within_50", "acc. ±50 y", _KINDS, False, within_50),
):
    register_metric(_metric)
