"""Class statistics of a target (SilkNet §4): counts, label availability, under-represented classes and the
imbalance ratio of eq. 9. Background labels are counted separately and excluded from class statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from artbench.data.targets import MISSING, TargetSpec


def underrepresented_mask(counts: np.ndarray) -> np.ndarray:
    """Classes whose relative frequency ζ among foreground labels is below 1/K (SilkNet §4, |M_m|)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total == 0:
        return np.zeros(len(counts), dtype=bool)
    return counts / total < 1.0 / len(counts)


def imbalance_ratio(counts: np.ndarray) -> float:
    """Eq. 9: IR = max_i ζ_i / min_j ζ_j over the foreground classes (inf if a class has no sample)."""
    counts = np.asarray(counts, dtype=float)
    if len(counts) == 0 or counts.max() == 0:
        return float("nan")
    return float(counts.max() / counts.min()) if counts.min() > 0 else float("inf")


def class_counts(codes: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """Foreground class counts of encoded labels (background and missing excluded)."""
    fg = codes[(codes != MISSING) & (codes < spec.num_classes)]
    return np.bincount(fg, minlength=spec.num_classes)


def target_statistics(codes: np.ndarray, spec: TargetSpec) -> dict[str, Any]:
    """Statistics of one encoded target, in the layout of ``artbench datasets stats --json``."""
    n = len(codes)
    counts = class_counts(codes, spec)
    labelled = int(counts.sum())
    under = underrepresented_mask(counts)
    ir = imbalance_ratio(counts)
    return {
        "kind": spec.kind,
        "num_classes": spec.num_classes,
        "class_counts": {c: int(k) for c, k in zip(spec.classes, counts, strict=True)},
        "labelled": labelled,
        "labelled_fraction": labelled / n if n else 0.0,
        "background": int((codes == spec.num_classes).sum()) if spec.has_background else 0,
        "missing": int((codes == MISSING).sum()),
        "underrepresented": [c for c, u in zip(spec.classes, under, strict=True) if u],
        "num_underrepresented": int(under.sum()),
        "imbalance_ratio": ir if np.isfinite(ir) else None,
    }


def dataset_statistics(table: pd.DataFrame, specs: list[TargetSpec]) -> dict[str, Any]:
    """Statistics of every target of a sample table (specs must have their classes resolved)."""
    return {
        "num_samples": len(table),
        "targets": {s.name: target_statistics(s.encode(table[s.name]), s) for s in specs},
    }
