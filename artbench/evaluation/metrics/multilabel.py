"""Multilabel metrics: ranking metrics of the scores and F-scores of the thresholded predictions.

Average precision (AP) of a ranking follows scikit-learn's ``average_precision_score``: the points of the
precision-recall curve are the distinct score thresholds (tied items enter the ranking together) and
AP = Σ (R_k − R_{k−1}) P_k. The F-scores follow scikit-learn's ``fbeta_score`` with ``zero_division=0``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from artbench.evaluation.metrics.registry import Metric, TargetEvaluation, register_metric

_KINDS = frozenset({"multilabel"})
_CLASS_AP: weakref.WeakKeyDictionary[TargetEvaluation, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()


def _count_below(sorted_rows: np.ndarray, row: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per query, the number of entries of ``sorted_rows[row]`` (ascending) below ``value`` (a binary search)."""
    n = sorted_rows.shape[1]
    lo, hi = np.zeros(len(row), dtype=np.int64), np.full(len(row), n, dtype=np.int64)
    for _ in range(n.bit_length()):
        mid = (lo + hi) // 2
        below = sorted_rows[row, np.minimum(mid, n - 1)] < value
        lo, hi = np.where(below & (lo < hi), mid + 1, lo), np.where(below, hi, mid)
    return lo


def _ranking_ap(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AP and 11-point interpolated AP of every row, ranking its items by ``s`` with relevant items ``y == 1``.

    Returns two float arrays ``[rows]``, NaN for rows without a relevant item. Beyond one sort of ``s`` only the
    relevant items are visited: a curve point without a new relevant item has a lower precision than the point
    before it, so the maxima of the 11-point AP lie at relevant items.
    """
    rows, n = s.shape
    ap, ap11 = np.full(rows, np.nan), np.full(rows, np.nan)
    row, col = np.nonzero(y == 1)
    value = s[row, col]
    order = np.lexsort((-value, row))  # relevant items row by row, by decreasing score
    row, value = row[order], value[order]
    positives = np.bincount(row, minlength=rows)
    start = np.cumsum(positives) - positives
    # the curve point of a relevant item counts the items (and the relevant items) scoring at least as high
    ranked = n - _count_below(np.sort(s, axis=1), row, value)
    tie_end = np.ones(len(row), dtype=bool)
    tie_end[:-1] = (row[1:] != row[:-1]) | (value[1:] != value[:-1])
    last_tied = np.minimum.accumulate(np.where(tie_end, np.arange(len(row)), len(row))[::-1])[::-1]
    precision = (last_tied - start[row] + 1) / ranked
    defined = positives > 0
    ap[defined] = np.bincount(row, weights=precision, minlength=rows)[defined] / positives[defined]
    # 11-point: recall j/10 takes m = ceil(j·P/10) relevant items (integer arithmetic: exact at the levels); the
    # interpolated precision is the max over the points from the m-th relevant item on (from the first if m = 0)
    needed = (np.arange(11) * positives[defined, None] + 9) // 10
    begin = start[defined, None] + np.maximum(needed - 1, 0)
    end = np.broadcast_to((start + positives)[defined, None], begin.shape)
    maxima = np.maximum.reduceat(np.append(precision, 0.0), np.stack([begin, end], axis=-1).ravel())[::2]
    ap11[defined] = maxima.reshape(-1, 11).mean(axis=1)
    return ap, ap11


def class_average_precision(ev: TargetEvaluation) -> tuple[np.ndarray, np.ndarray]:
    """Per-class AP and 11-point AP ``[K]`` (NaN for classes without positives), computed once per evaluation."""
    if ev not in _CLASS_AP:
        _CLASS_AP[ev] = _ranking_ap(ev.y_true.T, ev.scores.T)
    return _CLASS_AP[ev]


def _mean_defined(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def map_macro(ev: TargetEvaluation) -> float:
    """Mean over the classes with at least one positive of the per-class AP (``average_precision_score``)."""
    return _mean_defined(class_average_precision(ev)[0])


def ap11_macro(ev: TargetEvaluation) -> float:
    """Mean over the classes with a positive of the 11-point interpolated AP.

    PASCAL VOC 2007 (Everingham et al., IJCV 2010), as used by the Rijksmuseum Challenge 2014 (Mensink &
    van Gemert, ICMR 2014): the mean over the recall levels r = 0, 0.1, ..., 1 of the maximum precision of the
    curve points with recall ≥ r. The levels are compared exactly, without the rounding error of
    ``np.arange(0, 1.1, 0.1)`` in the VOC devkit.
    """
    return _mean_defined(class_average_precision(ev)[1])


def map_samples(ev: TargetEvaluation) -> float:
    """Mean per-image AP over the images with a positive label.

    Equal to scikit-learn's ``label_ranking_average_precision_score`` on those images (Tsoumakas et al., Mining
    Multi-label Data, 2010).
    """
    return _mean_defined(_ranking_ap(ev.y_true, ev.scores)[0])


def _f_beta_samples(beta: float) -> Callable[[TargetEvaluation], float]:
    def fn(ev: TargetEvaluation) -> float:
        if not len(ev.y_true):
            return float("nan")
        tp = (ev.y_true & ev.y_pred).sum(axis=1)
        den = beta**2 * ev.y_true.sum(axis=1) + ev.y_pred.sum(axis=1)
        return float(np.mean(np.divide((1 + beta**2) * tp, den, out=np.zeros(len(den)), where=den > 0)))

    fn.__doc__ = (
        f"Sample-averaged F{beta:g} of the thresholded predictions (``fbeta_score(average='samples')``). "
        "Sample-averaged F2 is the metric of the iMet Collection 2019 Kaggle challenge."
    )
    return fn


def f1_micro(ev: TargetEvaluation) -> float:
    """Micro-averaged F1 of the thresholded predictions (``f1_score(average='micro')``): the iMet 2020 metric."""
    if not len(ev.y_true):
        return float("nan")
    den = int(ev.y_true.sum()) + int(ev.y_pred.sum())
    return 2 * int((ev.y_true & ev.y_pred).sum()) / den if den else 0.0


for _metric in (
    Metric("map_macro", "mAP", _KINDS, True, map_macro),
    Metric("ap11_macro", "mAP (11-pt)", _KINDS, True, ap11_macro),
    Metric("map_samples", "mAP (per image)", _KINDS, True, map_samples),
    Metric("f1_samples", "F1 (samples)", _KINDS, False, _f_beta_samples(1), thresholded=True),
    Metric("f2_samples", "F2 (samples)", _KINDS, False, _f_beta_samples(2), thresholded=True),
    Metric("f1_micro", "F1 (micro)", _KINDS, False, f1_micro, thresholded=True),
):
    register_metric(_metric)


def details(ev: TargetEvaluation) -> dict[str, Any]:
    """Per-class AP and support, and the classes without positive test samples."""
    ap = class_average_precision(ev)[0]
    support = ev.y_true.sum(axis=0)
    return {
        "per_class": {name: {"ap": float(ap[i]), "support": int(support[i])} for i, name in enumerate(ev.spec.classes)},
        "classes_without_test_samples": [c for c, s in zip(ev.spec.classes, support, strict=True) if s == 0],
    }
