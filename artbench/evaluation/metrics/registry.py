"""The metric registry: what a metric is and what it receives.

A metric is a function of one target's evaluation (:class:`TargetEvaluation`, the test rows with a known label)
to one float, NaN where undefined. Metrics register by name in :data:`METRICS`; a task names the ones it reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from artbench.core.registry import Registry
from artbench.core.targets import TargetSpec


@dataclass(frozen=True, eq=False)
class TargetEvaluation:
    """The known rows of one target, as a metric function receives them.

    Compared by identity (``eq=False``) so that per-evaluation intermediate results can be cached by metric
    modules (e.g. the per-class precision-recall curves shared by the multilabel AP metrics).

    Attributes:
        spec: the target.
        y_true: multiclass int64 ``[n]`` codes (background = K); multilabel int8 ``{0, 1}`` ``[n, K]``;
            regression float ``[n]``.
        scores: multiclass float ``[n, K_out]`` probabilities; multilabel float ``[n, K]`` probabilities;
            regression float ``[n]`` predicted values.
        y_pred: multiclass argmax codes ``[n]``; multilabel int8 ``{0, 1}`` ``[n, K]`` with ``scores >= threshold``;
            regression the scores.
        underrepresented: foreground class names deemed under-represented (multiclass).
        threshold: the multilabel decision threshold behind ``y_pred`` (0.5 when none was chosen).
    """

    spec: TargetSpec
    y_true: np.ndarray
    scores: np.ndarray
    y_pred: np.ndarray
    underrepresented: tuple[str, ...] = ()
    threshold: float = 0.5


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    Attributes:
        name: registry key, used in result files and task definitions.
        label: short column header for tables.
        kinds: the target kinds it applies to.
        needs_scores: reads :attr:`TargetEvaluation.scores` (rankings, probabilities), not only ``y_pred``.
        fn: the metric itself, NaN where undefined.
        higher_is_better: False for errors (MAE, RMSE).
        thresholded: multilabel metric of ``y_pred`` that depends on the decision threshold; the evaluation
            may choose its threshold on the validation split (:func:`~.evaluate.choose_thresholds`).
    """

    name: str
    label: str
    kinds: frozenset[str]
    needs_scores: bool
    fn: Callable[[TargetEvaluation], float]
    higher_is_better: bool = True
    thresholded: bool = False


METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` under its name (a taken name raises)."""
    return METRICS.register(metric.name, metric)


def metric_label(name: str) -> str:
    """The table header of a registered metric (an unknown name raises, listing the valid ones)."""
    return METRICS.get(name).label
