"""Aggregation over seeds: mean and sample standard deviation (ddof = 1) of every scalar metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{"overall": {...}, "targets": {t: {...}}}`` → ``{"overall.f1_macro": ..., "place.f1_macro": ...}``
    (scalar values only; an undefined value, stored as ``None``, becomes NaN)."""
    flat = {f"overall.{k}": float("nan") if v is None else float(v) for k, v in metrics["overall"].items()}
    for target, values in metrics["targets"].items():
        for key, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                flat[f"{target}.{key}"] = float(value)
    return flat


def every_metric_undefined(summary: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when a :func:`summarise` result has no defined metric in any seed: every ``overall.*`` mean (the mean
    over targets of each metric) is undefined, so every metric of every target is (e.g. no test sample has a known
    label)."""
    overall = [v for k, v in summary.items() if k.startswith("overall.")]
    return bool(overall) and all(v["mean"] is None for v in overall)


def summarise(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean, std (ddof=1; ``None`` below two seeds, where it is undefined), the per-seed values of every metric and
    the number of seeds where it was undefined (NaN), which the mean and std leave out."""
    keys = list(per_seed[0]) if per_seed else []
    summary = {}
    for key in keys:
        values = np.array([m.get(key, np.nan) for m in per_seed], dtype=float)
        finite = values[~np.isnan(values)]
        summary[key] = {
            "mean": float(finite.mean()) if len(finite) else None,
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else None,
            "values": [None if np.isnan(v) else float(v) for v in values],
            "undefined_seeds": int(np.isnan(values).sum()),
        }
    return summary
