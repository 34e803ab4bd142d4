"""Per-target classification metrics (SilkNet §5.1, Tables 4-6).

Computed on the test samples with a known label (foreground or background). Per class: precision, recall and F1
from the confusion matrix (0 where undefined). Macro averages are unweighted means over the foreground classes
present in the test labels; the background class is never averaged ("background class not considered",
Table 6), but its samples count in the overall accuracy (OA) and as errors of the foreground classes.
``f1_underrepresented`` averages F1 over the foreground classes whose relative frequency in the training split
is below 1/K (§4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from artbench.data.targets import MISSING, TargetSpec

METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_underrepresented",
)
METRIC_LABELS: dict[str, str] = {
    "accuracy": "OA",
    "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)",
    "f1_macro": "F1 (macro)",
    "f1_underrepresented": "F1 under-repr.",
}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix ``C[i, j]`` = samples of true class i predicted as j."""
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num), dtype=float), where=den > 0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def target_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, spec: TargetSpec, underrepresented: Sequence[str]
) -> dict[str, Any]:
    """Metrics of one target. ``y_true`` may hold ``-1`` (missing); ``y_pred`` holds class codes."""
    known = np.asarray(y_true) != MISSING
    yt, yp = np.asarray(y_true)[known], np.asarray(y_pred)[known]
    cm = confusion(yt, yp, spec.num_outputs)
    tp = np.diag(cm).astype(float)
    precision = _ratio(tp, cm.sum(axis=0))
    recall = _ratio(tp, cm.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    support = cm.sum(axis=1)
    fg = np.arange(spec.num_classes)
    present = fg[support[fg] > 0]
    under = np.array([i for i, c in enumerate(spec.classes) if c in set(underrepresented) and support[i] > 0], int)
    return {
        "num_samples": int(known.sum()),
        "accuracy": float(tp.sum() / cm.sum()) if cm.sum() else float("nan"),
        "precision_macro": _mean(precision[present]),
        "recall_macro": _mean(recall[present]),
        "f1_macro": _mean(f1[present]),
        "f1_underrepresented": _mean(f1[under]),
        "underrepresented": list(underrepresented),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(spec.class_names)
        },
        "confusion_matrix": {"labels": list(spec.class_names), "matrix": cm.tolist()},
    }


def run_level(per_target: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Mean over targets (Table 4 style) of every metric the targets share, ignoring undefined values."""
    out = {}
    for name in (n for n in METRIC_NAMES if all(n in m for m in per_target.values())):
        values = np.array([m[name] for m in per_target.values()], dtype=float)
        values = values[~np.isnan(values)]
        out[name] = float(values.mean()) if len(values) else float("nan")
    return out
