"""Multiclass metrics (SilkNet §5.1, Tables 4-6; Rijksmuseum Challenge 2014).

Computed on the rows with a known label (foreground or background). Per class: precision, recall and F1 from the
confusion matrix (0 where undefined). Macro averages are unweighted means over the foreground classes present in
the test labels; the background class is never averaged ("background class not considered", SilkNet Table 6),
but its samples count in the overall accuracy (OA) and as errors of the foreground classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from artbench.evaluation.metrics.registry import Metric, TargetEvaluation, register_metric

_KINDS = frozenset({"multiclass"})


def confusion(ev: TargetEvaluation) -> np.ndarray:
    """Confusion matrix over all outputs (background last): ``C[i, j]`` = samples of true class i predicted as j."""
    k = ev.spec.num_outputs
    return np.bincount(ev.y_true * k + ev.y_pred, minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num), dtype=float), where=den > 0)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def per_class(ev: TargetEvaluation) -> dict[str, np.ndarray]:
    """Per output class (background last): ``precision``, ``recall``, ``f1`` (0 where undefined), ``support``."""
    cm = confusion(ev)
    tp = np.diag(cm).astype(float)
    precision, recall = _ratio(tp, cm.sum(axis=0)), _ratio(tp, cm.sum(axis=1))
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "support": cm.sum(axis=1),
    }


def _present(support: np.ndarray, num_classes: int) -> np.ndarray:
    """Indices of the foreground classes with test support."""
    return np.flatnonzero(support[:num_classes] > 0)


def accuracy(ev: TargetEvaluation) -> float:
    """Overall accuracy (OA, SilkNet §5.1): share of known rows, background included, predicted correctly."""
    return float(np.mean(ev.y_true == ev.y_pred)) if len(ev.y_true) else float("nan")


def _macro(statistic: str) -> Callable[[TargetEvaluation], float]:
    def fn(ev: TargetEvaluation) -> float:
        stats = per_class(ev)
        return _mean(stats[statistic][_present(stats["support"], ev.spec.num_classes)])

    fn.__doc__ = f"Macro {statistic} over the foreground classes with test support (SilkNet §5.1)."
    return fn


def f1_underrepresented(ev: TargetEvaluation) -> float:
    """F1 averaged over the under-represented foreground classes with test support (SilkNet §4, §5.1).

    Which classes are under-represented (relative training frequency below 1/K in SilkNet) is decided by the
    caller and passed in :attr:`TargetEvaluation.underrepresented`.
    """
    stats = per_class(ev)
    under = set(ev.underrepresented)
    keep = [i for i in _present(stats["support"], ev.spec.num_classes) if ev.spec.classes[i] in under]
    return _mean(stats["f1"][keep])


def mean_class_accuracy(ev: TargetEvaluation) -> float:
    """Mean class accuracy (MCA, Mensink & van Gemert, The Rijksmuseum Challenge, ICMR 2014).

    The mean over the foreground classes with test support of the share of their samples predicted correctly:
    scikit-learn's ``balanced_accuracy_score`` restricted to the foreground. By definition it equals
    ``recall_macro``; it is registered under its own name because papers report it as such.
    """
    stats = per_class(ev)
    return _mean(stats["recall"][_present(stats["support"], ev.spec.num_classes)])


def _top_k(k: int) -> Callable[[TargetEvaluation], float]:
    def fn(ev: TargetEvaluation) -> float:
        n, outputs = ev.scores.shape
        if n == 0:
            return float("nan")
        true_score = ev.scores[np.arange(n), ev.y_true][:, None]
        lower_index = np.arange(outputs)[None, :] < ev.y_true[:, None]
        rank = (ev.scores > true_score).sum(axis=1) + ((ev.scores == true_score) & lower_index).sum(axis=1)
        return float(np.mean(rank < k))

    fn.__doc__ = (
        f"Top-{k} accuracy (as scikit-learn's ``top_k_accuracy_score``): share of rows whose true class is among "
        f"the {k} highest-scoring outputs, background column included. Ties go to the lower column index, as "
        f"``argmax`` does; with {k} outputs or fewer every row is a hit (1.0)."
    )
    return fn


for _metric in (
    Metric("accuracy", "OA", _KINDS, False, accuracy),
    Metric("precision_macro", "precision (macro)", _KINDS, False, _macro("precision")),
    Metric("recall_macro", "recall (macro)", _KINDS, False, _macro("recall")),
    Metric("f1_macro", "F1 (macro)", _KINDS, False, _macro("f1")),
    Metric("f1_underrepresented", "F1 under-repr.", _KINDS, False, f1_underrepresented),
    Metric("mean_class_accuracy", "MCA", _KINDS, False, mean_class_accuracy),
    Metric("top3_accuracy", "top-3 acc.", _KINDS, True, _top_k(3)),
    Metric("top5_accuracy", "top-5 acc.", _KINDS, True, _top_k(5)),
):
    register_metric(_metric)


def details(ev: TargetEvaluation) -> dict[str, Any]:
    """Per-class statistics, confusion matrix and the foreground classes without test samples."""
    stats = per_class(ev)
    names = ev.spec.class_names
    return {
        "underrepresented": list(ev.underrepresented),
        "per_class": {
            name: {
                "precision": float(stats["precision"][i]),
                "recall": float(stats["recall"][i]),
                "f1": float(stats["f1"][i]),
                "support": int(stats["support"][i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": {"labels": list(names), "matrix": confusion(ev).tolist()},
        "classes_without_test_samples": [
            c for c, s in zip(ev.spec.classes, stats["support"][: ev.spec.num_classes], strict=True) if s == 0
        ],
    }
