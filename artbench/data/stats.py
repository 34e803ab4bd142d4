"""Statistics of a target by kind (SilkNet §4): counts, label availability, under-represented classes and the
imbalance ratio of eq. 9. Background labels are counted separately and excluded from class statistics.

For a multilabel target a class's frequency ζ is its share of all label occurrences, so ζ < 1/K and eq. 9 read the
same as for multiclass; label cardinality (mean labels per labelled sample) and density (cardinality / K) follow
Tsoumakas & Katakis (2007).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from artbench.core.targets import MISSING, TargetSpec

HISTOGRAM_BINS = 10


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
    """Foreground class counts of encoded labels (background and missing excluded); label occurrences for
    multilabel targets."""
    if spec.kind == "multilabel":
        return codes[spec.known(codes)].sum(axis=0).astype(np.int64)
    fg = codes[(codes != MISSING) & (codes < spec.num_classes)]
    return np.bincount(fg, minlength=spec.num_classes)


def underrepresented_classes(codes: np.ndarray, spec: TargetSpec) -> list[str]:
    """Names of the under-represented foreground classes of these labels (none for regression)."""
    if spec.kind == "regression":
        return []
    mask = underrepresented_mask(class_counts(codes, spec))
    return [c for c, u in zip(spec.classes, mask, strict=True) if u]


def _class_statistics(codes: np.ndarray, spec: TargetSpec) -> dict[str, Any]:
    counts = class_counts(codes, spec)
    under = underrepresented_mask(counts)
    ir = imbalance_ratio(counts)
    return {
        "num_classes": spec.num_classes,
        "class_counts": {c: int(k) for c, k in zip(spec.classes, counts, strict=True)},
        "underrepresented": [c for c, u in zip(spec.classes, under, strict=True) if u],
        "num_underrepresented": int(under.sum()),
        "imbalance_ratio": ir if np.isfinite(ir) else None,
    }


def target_statistics(codes: np.ndarray, spec: TargetSpec) -> dict[str, Any]:
    """Statistics of one encoded target, in the layout of ``artbench datasets stats --json``."""
    n = len(codes)
    known = spec.known(codes)
    if spec.kind == "regression":
        values = codes[known]
        hist, edges = np.histogram(values, bins=HISTOGRAM_BINS) if len(values) else (np.zeros(0), np.zeros(0))
        labelled = len(values)
        return {
            "kind": spec.kind,
            "labelled": labelled,
            "labelled_fraction": labelled / n if n else 0.0,
            "missing": int(n - labelled),
            "count": labelled,
            "min": float(values.min()) if labelled else None,
            "max": float(values.max()) if labelled else None,
            "mean": float(values.mean()) if labelled else None,
            "std": float(values.std(ddof=1)) if labelled > 1 else None,
            "histogram": {"counts": hist.astype(int).tolist(), "edges": edges.tolist()},
        }
    if spec.kind == "multilabel":
        labelled = int(known.sum())
        cardinality = float(codes[known].sum(axis=1).mean()) if labelled else 0.0
        return {
            "kind": spec.kind,
            **_class_statistics(codes, spec),
            "labelled": labelled,
            "labelled_fraction": labelled / n if n else 0.0,
            "missing": int(n - labelled),
            "label_cardinality": cardinality,
            "label_density": cardinality / spec.num_classes if spec.num_classes else 0.0,
        }
    stats = _class_statistics(codes, spec)
    labelled = int(sum(stats["class_counts"].values()))
    return {
        "kind": spec.kind,
        **stats,
        "labelled": labelled,
        "labelled_fraction": labelled / n if n else 0.0,
        "background": int((codes == spec.num_classes).sum()) if spec.has_background else 0,
        "missing": int((codes == MISSING).sum()),
    }


def dataset_statistics(table: pd.DataFrame, specs: list[TargetSpec]) -> dict[str, Any]:
    """Statistics of every target of a sample table (specs must have their classes resolved); with the sample
    count per split where the table has an official ``split`` column."""
    stats: dict[str, Any] = {"num_samples": len(table)}
    if "split" in table.columns:
        stats["splits"] = {str(k): int(v) for k, v in table["split"].value_counts().sort_index().items()}
    stats["targets"] = {s.name: target_statistics(s.encode(table[s.name]), s) for s in specs}
    return stats
