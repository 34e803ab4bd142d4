"""``artbench compare``: finished runs of one task against a baseline, with the tests named (issue 11, "compare").

Everything here returns plain data (dicts, lists, floats; NaN where undefined); :mod:`artbench.cli.compare` renders
it. Run folders are read through :mod:`artbench.results.store` only. For every method against the baseline, per
target and for the mean over targets (``overall``, as ``run_level``), per metric:

* over seeds (:func:`~artbench.evaluation.significance.seed_tests`): mean ± std, the difference of the means with a
  95 % bootstrap CI over seeds, the paired t-test and Wilcoxon signed-rank test when both runs have the same seeds
  (Welch's t-test and Mann-Whitney U otherwise), each with the smallest p it can reach with that many seeds;
  almost stochastic order ε_min (Dror et al. 2019) of the method over the baseline;
* over test images (:func:`image_bootstrap`): a paired bootstrap of the difference of the seed-mean metric, one
  resample-count matrix shared by every method, seed, target and metric; McNemar's test per multiclass target and
  seed pair (:func:`mcnemar_tests`);
* Holm's correction over every p-value of those tests (:func:`apply_holm`).

Beside them: reported numbers of a paper (``baselines/*.toml``), the correlation of per-target gains with a target
property (SilkNet §5.2) and the Friedman test with Nemenyi post-hoc over targets (Demšar 2006).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError
from artbench.core.targets import MISSING, TargetSpec
from artbench.core.task import TaskSpec, parse_task
from artbench.data.stats import target_statistics
from artbench.data.task_data import TaskData
from artbench.evaluation import significance
from artbench.evaluation.aggregate import flatten_metrics, summarise
from artbench.evaluation.cd_diagram import plot_critical_difference
from artbench.evaluation.metrics import METRICS, evaluate_target, run_level
from artbench.methods import METHODS
from artbench.results.baselines import ReportedValue, baseline_dirs, reported_values
from artbench.results.store import SUMMARY, RunRecord, RunWriter, find_runs, read_run, write_json

OVERALL = "overall"
PROPERTIES = ("labelled_fraction", "num_classes", "imbalance_ratio", "underrepresented_share")
"""Target properties for ``--correlate`` (SilkNet §4, Table 2), computed from the task's whole sample table."""
ASO_MIN_SEEDS = 2
SEED_RESAMPLES = 10_000
"""Bootstrap resamples of the seed-level CI when ``--resamples 0`` turns the bootstrap over images off."""
CHUNK_BYTES = 64 * 2**20
"""Size of one block of the resample-count matrix (resamples are drawn and summed block by block)."""
BOOTSTRAPPED = {
    "multiclass": (
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "f1_underrepresented",
        "mean_class_accuracy",
        "top3_accuracy",
        "top5_accuracy",
    ),
    "multilabel": ("f1_samples", "f2_samples", "f1_micro"),
    "regression": ("mae", "rmse", "within_50"),
}
"""Metrics with a per-image formulation that :func:`image_bootstrap` resamples. Left out: the class-wise ranking
metrics (``map_macro``, ``ap11_macro``) and ``map_samples``, whose resampled values need a ranking per resample."""


# ---------------------------------------------------------------------------------------------------------- runs
def resolve_runs(task: TaskSpec, specs: Sequence[str], out_dir: Path) -> dict[str, RunRecord]:
    """Each METHOD_OR_RUN as a run record, labelled by its method (``method@run-id`` where a method repeats).

    A folder holding ``summary.json`` (or any path with a ``/``) is a run folder; anything else is a method name,
    whose latest complete run of ``task`` in ``out_dir`` is taken. Runs of another task, incomplete runs and a run
    given twice are errors.
    """
    records: list[RunRecord] = []
    for spec in specs:
        path = Path(spec)
        if (path / SUMMARY).is_file() or "/" in spec or path.is_dir():
            record = read_run(path)
            if record.task != task.name:
                raise ArtbenchError(f"run {spec!r} is a run of task {record.task!r}, not of {task.name!r}")
            if record.status == "undefined":
                raise ArtbenchError(
                    f"run {spec!r} has no defined metric in any seed (status undefined, e.g. no test sample with a "
                    "known label); there is nothing to compare"
                )
            if record.status != "complete":
                requested = record.summary.get("seeds_requested")
                raise ArtbenchError(
                    f"run {spec!r} is {record.status} (seeds {record.seeds} of {requested}); pass a complete run"
                )
        else:
            runs = find_runs(out_dir, task.name, spec)
            complete = [r for r in runs if r.status == "complete"]
            if not complete and not runs and spec not in METHODS:
                found = sorted({r.method for r in find_runs(out_dir, task.name)})
                raise ArtbenchError(
                    f"{spec!r} is neither a method nor a run folder; methods with runs of {task.name!r} in "
                    f"{str(out_dir)!r}: {', '.join(found) or 'none'}"
                )
            if not complete:
                statuses = [r.status for r in runs]
                what = ", ".join(f"{statuses.count(s)} {s} run(s)" for s in sorted(set(statuses))) or "no run"
                raise ArtbenchError(
                    f"no complete run of {spec!r} on {task.name!r} in {str(out_dir)!r} ({what}); "
                    f"run `artbench run {task.name} {spec}` first, pass --out, or pass a run folder"
                )
            record = complete[-1]
        if any(r.run_dir.resolve() == record.run_dir.resolve() for r in records):
            raise ArtbenchError(f"run {str(record.run_dir)!r} is given twice")
        records.append(record)
    methods = [r.method for r in records]
    return {(r.method if methods.count(r.method) == 1 else f"{r.method}@{r.run_dir.name}"): r for r in records}


def _baseline_matches(runs: Mapping[str, RunRecord], baseline: str) -> list[str]:
    if baseline in runs:
        return [baseline]
    return [
        label
        for label, r in runs.items()
        if r.method == baseline or (Path(baseline).is_dir() and r.run_dir.resolve() == Path(baseline).resolve())
    ]


def pick_baseline(runs: Mapping[str, RunRecord], baseline: str | None) -> str:
    """The label of the baseline: ``baseline`` as a label, a method name or a run folder; the first run if None."""
    if baseline is None:
        return next(iter(runs))
    matches = _baseline_matches(runs, baseline)
    if len(matches) != 1:
        how = "matches several runs" if matches else "is none of the compared runs"
        raise ArtbenchError(f"--baseline {baseline!r} {how}; pick one of: {', '.join(runs)}")
    return matches[0]


def resolve_comparison(
    task: TaskSpec, specs: Sequence[str], baseline: str | None, out_dir: Path
) -> tuple[dict[str, RunRecord], str]:
    """The runs of ``specs`` and the baseline's label; a baseline that is none of them is resolved and put first."""
    runs = resolve_runs(task, specs, out_dir)
    if baseline is not None and not _baseline_matches(runs, baseline):
        runs = resolve_runs(task, [baseline, *specs], out_dir)
    return runs, pick_baseline(runs, baseline)


def _seed_values(record: RunRecord, key: str) -> np.ndarray:
    """Per-seed values of ``key`` (``<target>.<metric>``) from summary.json, NaN where undefined or absent."""
    entry = record.summary.get("metrics", {}).get(key)
    values = entry["values"] if entry else [None] * len(record.seeds)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def applicable(task: TaskSpec, row: str, metric: str) -> bool:
    """Whether ``metric`` applies to target ``row`` (to some target, for ``overall``)."""
    kinds = METRICS.get(metric).kinds
    targets = task.targets if row == OVERALL else [task.target(row)]
    return any(t.kind in kinds for t in targets)


def check_metrics(task: TaskSpec, metrics: Sequence[str]) -> list[str]:
    """Registered metrics that apply to at least one target of ``task`` (unknown or inapplicable: an error)."""
    for name in metrics:
        METRICS.get(name)
        if not applicable(task, OVERALL, name):
            kinds = ", ".join(sorted({t.kind for t in task.targets}))
            raise ArtbenchError(f"metric {name!r} applies to no target of task {task.name!r} (kinds: {kinds})")
    if not metrics:
        raise ArtbenchError("name at least one metric (see `artbench metrics list`)")
    return list(dict.fromkeys(metrics))


# ------------------------------------------------------------------------------------------------------ seeds
def _oriented(metric: str, values: np.ndarray) -> np.ndarray:
    """Values where larger is better (errors such as MAE negated), as almost stochastic order expects."""
    return values if METRICS.get(metric).higher_is_better else -values


def seed_comparison(
    a: np.ndarray, b: np.ndarray, paired: bool, metric: str, *, alpha: float, resamples: int, rng: int
) -> dict[str, Any]:
    """Seed-level statistics of method values ``a`` against baseline values ``b`` (NaN = undefined seed).

    Paired: the seeds where both are defined. ``aso``: ε_min of the method over the baseline (small favours the
    method), NaN below :data:`ASO_MIN_SEEDS` seeds per side.
    """
    if paired:
        both = ~np.isnan(a) & ~np.isnan(b)
        a, b = a[both], b[both]
    else:
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    tests = significance.seed_tests(a, b, paired, alpha=alpha, resamples=resamples or SEED_RESAMPLES, rng=rng)
    eps = float("nan")
    if min(len(a), len(b)) >= ASO_MIN_SEEDS:
        eps = significance.aso(_oriented(metric, a), _oriented(metric, b), rng=rng)
    return {**tests, "aso": eps}


# ----------------------------------------------------------------------------------------------------- images
@dataclass
class _Sums:
    """Resampled sums of one target's design columns over a block of resamples (first axis: the resamples)."""

    exact: np.ndarray
    real: np.ndarray
    grouped: np.ndarray | None


@dataclass
class _Design:
    """One target's per-image columns: its bootstrapped metrics are functions of their sums Σ_i W[r, i] x_i.

    Only the target's known rows take part (``rows``, gathered once per block of resamples). ``exact`` columns are
    0/1 indicators summed in float32 (exact integer counts below 2**24); ``real`` columns (per-image F-scores,
    errors) are summed in float64. ``grouped`` [len(rows), S] is summed within the contiguous ``segments`` of
    ``rows`` (the images of one true class): every class's true positives for one pass over the images.
    """

    rows: np.ndarray
    segments: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    exact_columns: list[np.ndarray] = field(default_factory=list)
    real_columns: list[np.ndarray] = field(default_factory=list)
    grouped: np.ndarray | None = None

    @staticmethod
    def _add(columns: list[np.ndarray], block: np.ndarray) -> slice:
        block = block.reshape(len(block), -1)
        start = sum(c.shape[1] for c in columns)
        columns.append(block)
        return slice(start, start + block.shape[1])

    def exact(self, block: np.ndarray) -> slice:
        return self._add(self.exact_columns, block)

    def real(self, block: np.ndarray) -> slice:
        return self._add(self.real_columns, block)

    def prepare(self) -> Callable[[np.ndarray], _Sums]:
        """The map from a block of resample counts ``W`` [resamples, n] to its sums; all-zero columns are skipped."""

        def stack(columns: list[np.ndarray], dtype: type) -> tuple[np.ndarray, np.ndarray]:
            used = np.concatenate([c.any(axis=0) for c in columns]) if columns else np.zeros(0, dtype=bool)
            kept = [c[:, c.any(axis=0)] for c in columns]
            matrix = np.concatenate(kept, axis=1).astype(dtype) if kept else np.zeros((len(self.rows), 0), dtype)
            return np.ascontiguousarray(matrix), used

        exact, exact_used = stack(self.exact_columns, np.float32)
        real, real_used = stack(self.real_columns, np.float64)
        bounds = list(zip(self.segments[:-1], self.segments[1:], strict=True))
        grouped_values = None if self.grouped is None else self.grouped.astype(np.float32)

        def sums(weights: np.ndarray) -> _Sums:
            w = weights[:, self.rows]
            out_exact = np.zeros((len(w), len(exact_used)))
            out_exact[:, exact_used] = w @ exact
            out_real = np.zeros((len(w), len(real_used)))
            if real.shape[1]:
                out_real[:, real_used] = w.astype(np.float64) @ real
            grouped = None
            if grouped_values is not None:
                grouped = np.zeros((len(w), len(bounds), grouped_values.shape[1]))
                for g, (a, b) in enumerate(bounds):
                    if b > a:
                        grouped[:, g] = w[:, a:b] @ grouped_values[a:b]
            return _Sums(out_exact, out_real, grouped)

        return sums


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, empty), where=den > 0)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


TargetStatistics = Callable[[_Sums], dict[str, np.ndarray]]
"""From one target's sums over a block of resamples to its metrics' values ``[systems, resamples]``."""
CLASS_METRICS = ("precision_macro", "recall_macro", "mean_class_accuracy", "f1_macro", "f1_underrepresented")


@dataclass
class TargetPredictions:
    """One target's test labels and every system's predictions (systems = (run, seed) pairs), rows aligned."""

    spec: TargetSpec
    y_true: np.ndarray
    y_pred: Any
    """multiclass [S, n] codes; multilabel {metric: [S, n, K] multi-hot at its threshold}; regression [S, n]."""
    scores: list[np.ndarray] | None
    underrepresented: tuple[str, ...] = ()


def _multiclass_statistics(target: TargetPredictions, metrics: Sequence[str]) -> tuple[_Design, TargetStatistics]:
    """Accuracy, top-k accuracy and the macro metrics of ``classification.py`` from resampled counts.

    Per foreground class k present in the test labels: T_k = Σ W [y = k], P_k = Σ W [ŷ = k] (known rows),
    TP_k = Σ W [y = ŷ = k]; precision TP/P, recall TP/T, F1 2 TP / (T + P), each 0 where undefined, averaged over
    those classes in every resample (the under-represented ones among them for ``f1_underrepresented``).
    """
    spec, y, pred = target.spec, target.y_true, target.y_pred
    known = y != MISSING
    present = np.unique(y[known & (y < spec.num_classes)])
    group = np.full(len(y), len(present))
    in_present = np.isin(y, present)
    group[in_present] = np.searchsorted(present, y[in_present])
    rows = np.flatnonzero(known)
    rows = rows[np.argsort(group[rows], kind="stable")]
    design = _Design(rows, np.searchsorted(group[rows], np.arange(len(present) + 1)))
    y_rows, pred_rows = y[rows], pred[:, rows]
    correct = pred_rows == y_rows
    num_systems, num_present = len(pred), len(present)
    den = design.exact(np.ones(len(rows), dtype=bool))
    columns = {}
    if "accuracy" in metrics:
        columns["accuracy"] = design.exact(correct.T)
    for k in (3, 5):
        if f"top{k}_accuracy" in metrics and target.scores is not None:
            hits = np.stack([_top_k_hits(scores[rows], y_rows, k) for scores in target.scores])
            columns[f"top{k}_accuracy"] = design.exact(hits.T)
    wanted = [m for m in CLASS_METRICS if m in metrics]
    if wanted:
        truth = design.exact(y_rows[:, None] == present)
        predicted = design.exact((pred_rows[:, :, None] == present).transpose(1, 0, 2))
        design.grouped = correct.T
    under = np.isin(np.asarray(spec.classes)[present], target.underrepresented)

    def statistics(s: _Sums) -> dict[str, np.ndarray]:
        total = s.exact[:, den].T
        out = {name: _ratio(s.exact[:, col].T, total, np.nan) for name, col in columns.items()}
        if not wanted:
            return out
        tp = s.grouped.transpose(2, 0, 1)  # [S, R, K]
        t = s.exact[:, truth][None]
        p = s.exact[:, predicted].reshape(len(s.exact), num_systems, num_present).transpose(1, 0, 2)
        per_class = {}
        if {"recall_macro", "mean_class_accuracy"} & set(wanted):
            per_class["recall_macro"] = per_class["mean_class_accuracy"] = _ratio(tp, t)
        if "precision_macro" in wanted:
            per_class["precision_macro"] = _ratio(tp, p)
        if {"f1_macro", "f1_underrepresented"} & set(wanted):
            per_class["f1_macro"] = _ratio(2 * tp, t + p)
            per_class["f1_underrepresented"] = per_class["f1_macro"][:, :, under]
        for name in wanted:
            values = per_class[name]
            out[name] = values.mean(axis=2) if values.shape[2] else np.full(values.shape[:2], np.nan)
        return out

    return design, statistics


def _top_k_hits(scores: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Whether the true class is among the k best outputs, ties to the lower index (as ``classification._top_k``)."""
    true_score = scores[np.arange(len(y)), y][:, None]
    lower = np.arange(scores.shape[1])[None, :] < y[:, None]
    rank = (scores > true_score).sum(axis=1) + ((scores == true_score) & lower).sum(axis=1)
    return rank < k


def _multilabel_statistics(target: TargetPredictions, metrics: Sequence[str]) -> tuple[_Design, TargetStatistics]:
    """Sample-averaged F-scores (a per-image mean) and micro F1 (a ratio of per-image sums) of ``multilabel.py``."""
    y = target.y_true
    rows = np.flatnonzero(y[:, 0] != MISSING) if y.shape[1] else np.zeros(0, dtype=np.int64)
    design = _Design(rows)
    truth = y[rows].astype(bool)
    den = design.exact(np.ones(len(rows), dtype=bool))
    columns: dict[str, tuple[slice, slice | None]] = {}
    for name in metrics:
        pred = target.y_pred[name][:, rows].astype(bool)  # [S, n, K]
        tp = (pred & truth[None]).sum(axis=2)
        if name == "f1_micro":
            columns[name] = (design.real((2 * tp).T), design.real((truth.sum(axis=1)[None] + pred.sum(axis=2)).T))
        else:
            beta2 = 1.0 if name == "f1_samples" else 4.0
            weighted = beta2 * truth.sum(axis=1)[None] + pred.sum(axis=2)
            columns[name] = (design.real(_ratio((1 + beta2) * tp, weighted).T), None)

    def statistics(s: _Sums) -> dict[str, np.ndarray]:
        out = {}
        for name, (num, total) in columns.items():
            if total is None:
                out[name] = _ratio(s.real[:, num].T, s.exact[:, den].T, np.nan)
            else:
                out[name] = _ratio(s.real[:, num].T, s.real[:, total].T)
        return out

    return design, statistics


def _regression_statistics(target: TargetPredictions, metrics: Sequence[str]) -> tuple[_Design, TargetStatistics]:
    """MAE, RMSE and accuracy within ±50 of ``regression.py`` as per-image means over the known rows."""
    rows = np.flatnonzero(~np.isnan(target.y_true))
    design = _Design(rows)
    errors = np.abs(target.y_pred[:, rows] - target.y_true[rows][None])  # [S, n]
    den = design.exact(np.ones(len(rows), dtype=bool))
    columns = {
        name: (design.exact if name == "within_50" else design.real)(block.T)
        for name, block in (("mae", errors), ("rmse", errors**2), ("within_50", errors <= 50))
        if name in metrics
    }

    def statistics(s: _Sums) -> dict[str, np.ndarray]:
        out = {}
        for name, col in columns.items():
            sums = (s.exact if name == "within_50" else s.real)[:, col].T
            out[name] = _ratio(sums, s.exact[:, den].T, np.nan)
        if "rmse" in out:
            out["rmse"] = np.sqrt(out["rmse"])
        return out

    return design, statistics


_STATISTICS = {
    "multiclass": _multiclass_statistics,
    "multilabel": _multilabel_statistics,
    "regression": _regression_statistics,
}


@dataclass
class Systems:
    """Every (run, seed) of a comparison with its test predictions, rows aligned across systems."""

    labels: list[str]
    seeds: list[int]
    images: np.ndarray
    targets: dict[str, TargetPredictions]

    def of(self, label: str) -> np.ndarray:
        return np.array([i for i, name in enumerate(self.labels) if name == label], dtype=np.int64)


def _codes(cells: pd.Series, names: Sequence[str], where: str) -> np.ndarray:
    """Class codes of prediction-file cells (an empty cell is a missing label)."""
    codes = pd.Index(list(names)).get_indexer(cells.to_numpy(dtype=object))
    unknown = (codes < 0) & (cells.to_numpy(dtype=object) != "")
    if unknown.any():
        bad = ", ".join(map(repr, cells[unknown].unique()[:5]))
        raise ArtbenchError(f"{where}: class names {bad} are not among its classes; the run folder is damaged")
    return np.where(codes < 0, MISSING, codes).astype(np.int64)


def _multi_hot(cells: pd.Series, spec: TargetSpec, names: Sequence[str], where: str, truth: bool) -> np.ndarray:
    """Multi-hot rows of multilabel cells. An empty cell is a missing label (a row of ``MISSING``) in the ``truth``
    column and no predicted label in a prediction column."""
    lookup = {name: i for i, name in enumerate(names)}
    hot = np.zeros((len(cells), len(names)), dtype=np.int8)
    for r, cell in enumerate(cells):
        labels = spec.split_cell(cell)
        if truth and not labels:
            hot[r] = MISSING
        elif any(label not in lookup for label in labels):
            raise ArtbenchError(f"{where}: labels of {cell!r} are not among its classes; the run folder is damaged")
        else:
            hot[r, [lookup[label] for label in labels]] = 1
    return hot


def _score_based(task: TaskSpec, metrics: Sequence[str]) -> list[str]:
    """The metrics among ``metrics`` that are resampled from scores.npz (top-k accuracy) on some target of ``task``."""
    resampled = {m for names in BOOTSTRAPPED.values() for m in names}
    return [m for m in metrics if m in resampled and METRICS.get(m).needs_scores and applicable(task, OVERALL, m)]


def _thresholded(task: TaskSpec, metrics: Sequence[str]) -> list[str]:
    """The resampled multilabel metrics, which read each metric's decision threshold (scores.npz where there is one)."""
    return [m for m in metrics if m in BOOTSTRAPPED["multilabel"] and applicable(task, OVERALL, m)]


def load_systems(task: TaskSpec, runs: Mapping[str, RunRecord], metrics: Sequence[str], resampling: bool) -> Systems:
    """Test labels and predictions of every seed of every run; runs on different test images are an error.

    Multilabel predictions of a thresholded metric are the scores at that metric's threshold in metrics.json (the
    predictions.csv column where a run of format 1 has no scores). When ``resampling``, top-k accuracy needs scores:
    a run of format 1 is then an error.
    """
    score_based = _score_based(task, metrics) if resampling else []
    old = [label for label, r in runs.items() if r.format_version < 2]
    if score_based and old:
        raise ArtbenchError(
            f"run(s) {', '.join(old)} have format 1 (no scores.npz), so {', '.join(score_based)} cannot be "
            "resampled over images; run them again, leave those metrics out of --metric, or pass --resamples 0"
        )
    read_scores = bool(score_based or _thresholded(task, metrics))
    labels, seeds, frames, infos, scores = [], [], [], [], []
    for label, record in runs.items():
        for seed in record.seeds:
            labels.append(label)
            seeds.append(seed)
            frames.append(record.predictions(seed))
            infos.append(record.metrics(seed)["targets"])
            scores.append(record.scores(seed) if read_scores and record.format_version >= 2 else None)
    reference = frames[0]
    for label, seed, frame in zip(labels, seeds, frames, strict=True):
        truth = [c for c in reference.columns if c == "image" or c.endswith(".true")]
        if list(frame.columns) != list(reference.columns) or not frame[truth].equals(reference[truth]):
            raise ArtbenchError(
                f"{label} seed {seed} was evaluated on other test images or labels than {labels[0]} seed {seeds[0]}; "
                "compare runs of the same task, dataset version and split"
            )
    targets = {}
    for spec in task.targets:
        names = infos[0][spec.name].get("classes", [])
        if any(info[spec.name].get("classes", []) != names for info in infos):
            raise ArtbenchError(f"target {spec.name!r}: the runs were trained on different classes")
        if spec.kind != "regression":  # the task file may leave the classes to the data: take the runs' classes
            foreground = names[:-1] if spec.has_background else names
            spec = TargetSpec(spec.name, spec.kind, tuple(foreground), spec.background, spec.separator)
        where = f"target {spec.name!r}"
        true_cells = reference[f"{spec.name}.true"]
        if spec.kind == "multiclass":
            y_true = _codes(true_cells, names, where)
            y_pred = np.stack([_codes(f[f"{spec.name}.pred"], names, where) for f in frames])
        elif spec.kind == "multilabel":
            y_true = _multi_hot(true_cells, spec, names, where, truth=True)
            y_pred = {
                metric: np.stack(
                    [
                        _multi_hot(f[f"{spec.name}.pred"], spec, names, where, truth=False)
                        if s is None
                        else s[spec.name] >= info[spec.name].get("thresholds", {}).get(metric, 0.5)
                        for f, s, info in zip(frames, scores, infos, strict=True)
                    ]
                )
                for metric in _thresholded(task, metrics)
            }
        else:
            y_true = pd.to_numeric(true_cells.replace("", np.nan)).to_numpy(dtype=float)
            y_pred = np.stack([pd.to_numeric(f[f"{spec.name}.pred"]).to_numpy(dtype=float) for f in frames])
        target_scores = [s[spec.name] for s in scores] if all(s is not None for s in scores) else None
        under = tuple(infos[0][spec.name].get("underrepresented", ()))
        targets[spec.name] = TargetPredictions(spec, y_true, y_pred, target_scores, under)
    return Systems(labels, seeds, reference["image"].to_numpy(), targets)


def image_bootstrap(
    task: TaskSpec, systems: Systems, metrics: Sequence[str], resamples: int, rng: int = 0
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Per (row, metric) with a per-image formulation: ``observed`` [S] and ``resampled`` [S, R] values per system.

    One resample-count matrix W [R, n] (:func:`~artbench.evaluation.significance.bootstrap_counts`, drawn block by
    block from one generator) is shared by every system, target and metric: a resample draws test images with all
    their labels, so the ``overall`` row (mean over targets, undefined ones left out as in ``run_level``) is
    resampled consistently. Observed values (W = 1) equal the runs' metrics.json values.
    """
    n = len(systems.images)
    prepared = {}
    for name, target in systems.targets.items():
        kind_metrics = [m for m in metrics if m in BOOTSTRAPPED[target.spec.kind]]
        if kind_metrics:
            design, statistics = _STATISTICS[target.spec.kind](target, kind_metrics)
            prepared[name] = (design.prepare(), statistics)
    ones = np.ones((1, n), dtype=np.float32)
    observed = {
        (name, metric): values[:, 0]
        for name, (sums, statistics) in prepared.items()
        for metric, values in statistics(sums(ones)).items()
    }
    resampled = {key: np.empty((len(systems.labels), resamples)) for key in observed}
    gen = np.random.default_rng(rng)
    block = max(1, CHUNK_BYTES // (4 * max(n, 1)))
    for start in range(0, resamples, block):
        weights = significance.bootstrap_counts(n, min(block, resamples - start), gen)
        for name, (sums, statistics) in prepared.items():
            for metric, values in statistics(sums(weights)).items():
                resampled[(name, metric)][:, start : start + len(weights)] = values
    out = {key: {"observed": observed[key], "resampled": resampled[key]} for key in observed}
    for metric in metrics:
        having = [t.name for t in task.targets if applicable(task, t.name, metric)]
        if having and all((t, metric) in out for t in having):
            out[(OVERALL, metric)] = {
                part: _nanmean(np.stack([out[(t, metric)][part] for t in having]), axis=0)
                for part in ("observed", "resampled")
            }
    return out


def _seed_mean(values: np.ndarray, systems: np.ndarray) -> np.ndarray:
    return _nanmean(values[systems], axis=0)


def bootstrap_comparison(
    boot: Mapping[str, np.ndarray], systems: Systems, label: str, baseline: str
) -> dict[str, float]:
    """Paired bootstrap over images of the seed-mean metric of ``label`` minus that of ``baseline``."""
    a, b = systems.of(label), systems.of(baseline)
    observed = float(_seed_mean(boot["observed"], a) - _seed_mean(boot["observed"], b))
    result = significance.paired_bootstrap_diff(
        observed, _seed_mean(boot["resampled"], a), _seed_mean(boot["resampled"], b)
    )
    return {**result, "resamples": boot["resampled"].shape[1], "images": len(systems.images)}


def seed_pairs(a: Sequence[int], b: Sequence[int]) -> list[tuple[int, int]]:
    """Seed k of the method with seed k of the baseline when the seeds match, else the i-th with the i-th."""
    if list(a) == list(b):
        return [(s, s) for s in a]
    return list(zip(sorted(a), sorted(b), strict=False))


def mcnemar_tests(systems: Systems, label: str, baseline: str) -> list[dict[str, Any]]:
    """McNemar's test per multiclass target and seed pair on the test images with a known label.

    The row's ``p`` is the largest p over the seed pairs and ``direction`` says who has more images only it gets
    right, in every pair (``mixed`` otherwise): an intersection-union test (Berger 1982) of "the method and the
    baseline differ in every seed pair", valid at level α without assuming independent seeds.
    """
    out = []
    index = {(name, seed): i for i, (name, seed) in enumerate(zip(systems.labels, systems.seeds, strict=True))}
    seeds_a = [s for name, s in zip(systems.labels, systems.seeds, strict=True) if name == label]
    seeds_b = [s for name, s in zip(systems.labels, systems.seeds, strict=True) if name == baseline]
    for name, target in systems.targets.items():
        if target.spec.kind != "multiclass":
            continue
        known = target.y_true != MISSING
        pairs = []
        for seed_a, seed_b in seed_pairs(seeds_a, seeds_b):
            correct = (
                target.y_pred[[index[(label, seed_a)], index[(baseline, seed_b)]]][:, known] == target.y_true[known]
            )
            pairs.append({"seed": seed_a, "baseline_seed": seed_b, **significance.mcnemar(correct[0], correct[1])})
        signs = {int(np.sign(p["a_only"] - p["b_only"])) for p in pairs}
        direction = {1: "method", -1: "baseline", 0: "tie"}[signs.pop()] if len(signs) == 1 else "mixed"
        out.append(
            {
                "method": label,
                "baseline": baseline,
                "target": name,
                "pairs": pairs,
                "p": max(p["p"] for p in pairs) if pairs else float("nan"),
                "direction": direction,
            }
        )
    return out


def apply_holm(result: dict[str, Any]) -> int:
    """Holm-adjust every p-value of the per-comparison tests in place (``p_holm``); returns how many there are."""
    slots: list[dict[str, Any]] = []
    for row in result["rows"]:
        slots += [row["t_test"], row["rank_test"]] + ([row["bootstrap"]] if row["bootstrap"] else [])
    slots += result["mcnemar"]
    adjusted = significance.holm([s["p"] for s in slots])
    for slot, p in zip(slots, adjusted, strict=True):
        slot["p_holm"] = float(p)
    return int(np.sum(~np.isnan([s["p"] for s in slots])))


# ------------------------------------------------------------------------------------------- reported, properties
def load_reported(source: str | None) -> list[ReportedValue]:
    """The reported numbers of ``baselines/<name>.toml``, given by name or by the path of such a file."""
    if source is None:
        return []
    path = Path(source)
    if path.suffix == ".toml":
        inside = path.is_file() and any(
            (d / path.name).is_file() and (d / path.name).samefile(path) for d in baseline_dirs()
        )
        if not inside:
            folders = ", ".join(map(str, baseline_dirs()))
            raise ArtbenchError(
                f"--reported {source!r}: not a file of the baselines folders ({folders}); put it there or pass its name"
            )
        source = path.stem
    return reported_values(source, set(METRICS.names()))


def _unit(metric: str) -> float:
    """Papers print scores in percent and errors (MAE, RMSE) in their own unit (``baselines/*.toml``)."""
    return 100.0 if METRICS.get(metric).higher_is_better else 1.0


def _for_task(task: TaskSpec, values: Sequence[ReportedValue]) -> list[ReportedValue]:
    """The reported numbers of ``task``'s targets (and overall), for no task in particular or for this one."""
    rows = {*task.target_names, OVERALL}
    return [v for v in values if v.task in (None, task.name) and v.target in rows]


def reported_rows(
    task: TaskSpec,
    runs: Mapping[str, RunRecord],
    metrics: Sequence[str],
    reported: Sequence[ReportedValue],
) -> list[dict[str, Any]]:
    """The papers' numbers beside the reproduced ones of the runs of the same method, as fractions like every score
    here (errors in their unit), with the difference. No test: a paper gives no per-seed values."""
    rows = []
    for label, record in runs.items():
        for v in _for_task(task, reported):
            if v.method != record.method or v.metric not in metrics:
                continue
            values = _seed_values(record, f"{v.target}.{v.metric}")
            values = values[~np.isnan(values)]
            mean = float(values.mean()) if len(values) else float("nan")
            unit = _unit(v.metric)
            rows.append(
                {
                    "method": label,
                    "paper": v.paper,
                    "target": v.target,
                    "metric": v.metric,
                    "reported": v.value / unit,
                    "reported_std": None if v.std is None else v.std / unit,
                    "mean": mean,
                    "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "diff": mean - v.value / unit,
                    "source": v.source,
                }
            )
    return rows


def target_properties(data: TaskData) -> dict[str, dict[str, float]]:
    """Per target, over the whole sample table: :data:`PROPERTIES` (SilkNet §4: share of images with a foreground
    label; K; imbalance ratio of eq. 9, NaN when infinite; share of the classes with ζ < 1/K)."""
    out = {}
    for spec, codes in zip(data.targets, data.labels, strict=True):
        stats = target_statistics(codes, spec)
        num_classes = stats.get("num_classes", 0)
        ratio = stats.get("imbalance_ratio")
        out[spec.name] = {
            "labelled_fraction": float(stats["labelled_fraction"]),
            "num_classes": float(num_classes),
            "imbalance_ratio": float("nan") if ratio is None else float(ratio),
            "underrepresented_share": stats["num_underrepresented"] / num_classes if num_classes else float("nan"),
        }
    return out


def correlate_gains(gains: Mapping[str, float], prop: Mapping[str, float]) -> dict[str, Any]:
    """Pearson and Spearman correlation (with p-values) of per-target gains and a target property (SilkNet §5.2).

    Targets where either is undefined are left out; below three targets the result holds only a ``note``.
    """
    targets = [t for t in gains if t in prop and np.isfinite(gains[t]) and np.isfinite(prop[t])]
    base = {"targets": targets, "gains": [gains[t] for t in targets], "property": [prop[t] for t in targets]}
    if len(targets) < 3:
        return {**base, "note": f"needs >= 3 targets with a defined gain and property, got {len(targets)}"}
    return {**base, **significance.correlate([prop[t] for t in targets], [gains[t] for t in targets]), "note": None}


def correlations(
    task: TaskSpec,
    result: Mapping[str, Any],
    prop: Mapping[str, float],
    metric: str,
    reported: Sequence[ReportedValue],
) -> list[dict[str, Any]]:
    """Per method, the correlation of its per-target gain in ``metric`` over the baseline with the property; where a
    paper reports ``metric`` per target for the same two methods, the same for the paper's gains (``reported``)."""
    out = []
    targets = [r for r in result["rows"] if r["metric"] == metric and r["target"] != OVERALL]
    for label in [m for m in result["runs"] if m != result["baseline"]]:
        gains = {r["target"]: r["diff"] for r in targets if r["method"] == label}
        out.append({"method": label, "source": "reproduced", **correlate_gains(gains, prop)})
    per_target = {
        (v.method, v.target): v.value / _unit(metric)
        for v in _for_task(task, reported)
        if v.metric == metric and v.target != OVERALL
    }
    base = result["runs"][result["baseline"]]["method"]
    for label, run in result["runs"].items():
        paper = {t: v for (m, t), v in per_target.items() if m == run["method"]}
        if label == result["baseline"] or not paper:
            continue
        gains = {t: v - per_target[(base, t)] for t, v in paper.items() if (base, t) in per_target}
        if gains:
            out.append({"method": label, "source": "reported", **correlate_gains(gains, prop)})
    return out


def friedman(result: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    """Friedman test with Nemenyi post-hoc over the targets (rows) and the compared runs (columns), on the
    seed-mean of ``metric`` (Demšar 2006); targets where a run's value is undefined are left out."""
    means = {
        label: {
            t: result["summary"][label][t][metric]["mean"]
            for t in result["targets"]
            if metric in result["summary"][label][t]
        }
        for label in result["runs"]
    }
    table = pd.DataFrame(means).dropna()
    if len(table.columns) < 2 or len(table) < 2:
        return None
    out = significance.friedman_nemenyi(table, METRICS.get(metric).higher_is_better)
    out["pairwise_p"] = out["pairwise_p"].to_dict()
    out["metric"] = metric
    out["targets"] = list(table.index)
    return out


# ------------------------------------------------------------------------------------------------------ compare
def compare_runs(
    task: TaskSpec,
    runs: Mapping[str, RunRecord],
    *,
    baseline: str,
    metrics: Sequence[str],
    resamples: int = 10_000,
    reported: Sequence[ReportedValue] = (),
    properties: Mapping[str, Mapping[str, float]] | None = None,
    correlate_property: str | None = None,
    alpha: float = 0.05,
    rng: int = 0,
) -> dict[str, Any]:
    """The comparison as plain data (see the module docstring); ``runs`` maps labels to records, ``baseline`` is
    one label. ``properties`` (from :func:`target_properties`) and ``correlate_property`` ask for ``correlations``;
    the first metric is the one correlated and ranked by Friedman's test.
    """
    rows_of = [*task.target_names, OVERALL]
    summary = {
        label: {
            row: {
                metric: _describe(_seed_values(record, f"{row}.{metric}"))
                for metric in metrics
                if applicable(task, row, metric)
            }
            for row in rows_of
        }
        for label, record in runs.items()
    }
    result: dict[str, Any] = {
        "task": task.name,
        "baseline": baseline,
        "metrics": list(metrics),
        "targets": task.target_names,
        "alpha": alpha,
        "resamples": resamples,
        "runs": {
            label: {
                "method": r.method,
                "run_dir": str(r.run_dir),
                "seeds": r.seeds,
                "format_version": r.format_version,
                "fingerprint": r.environment.get("dataset_fingerprint"),
            }
            for label, r in runs.items()
        },
        "summary": summary,
    }
    systems = load_systems(task, runs, metrics, resampling=resamples > 0) if len(runs) > 1 else None
    boot = image_bootstrap(task, systems, metrics, resamples, rng) if systems is not None and resamples > 0 else {}
    rows, mcnemar = [], []
    for label, record in runs.items():
        if label == baseline:
            continue
        paired = record.seeds == runs[baseline].seeds
        for row in rows_of:
            for metric in metrics:
                if not applicable(task, row, metric):
                    continue
                key = f"{row}.{metric}"
                seeds = seed_comparison(
                    _seed_values(record, key),
                    _seed_values(runs[baseline], key),
                    paired,
                    metric,
                    alpha=alpha,
                    resamples=resamples,
                    rng=rng,
                )
                image = (
                    bootstrap_comparison(boot[(row, metric)], systems, label, baseline)
                    if (row, metric) in boot
                    else None
                )
                rows.append(
                    {
                        "method": label,
                        "baseline": baseline,
                        "target": row,
                        "metric": metric,
                        "higher_is_better": METRICS.get(metric).higher_is_better,
                        **seeds,
                        "bootstrap": image,
                    }
                )
        if systems is not None:
            mcnemar += mcnemar_tests(systems, label, baseline)
    result["rows"], result["mcnemar"] = rows, mcnemar
    result["num_tests"] = apply_holm(result)
    result["reported"] = reported_rows(task, runs, metrics, reported)
    if correlate_property is not None and properties is not None:
        prop = {t: values[correlate_property] for t, values in properties.items()}
        result["correlation"] = {
            "property": correlate_property,
            "metric": metrics[0],
            "values": prop,
            "results": correlations(task, result, prop, metrics[0], reported),
        }
    result["friedman"] = friedman(result, metrics[0]) if len(task.targets) > 1 else None
    return result


def _describe(values: np.ndarray) -> dict[str, Any]:
    finite = values[~np.isnan(values)]
    return {
        "mean": float(finite.mean()) if len(finite) else float("nan"),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
        "n": len(finite),
        "values": values.tolist(),
    }


def flat_rows(result: Mapping[str, Any]) -> pd.DataFrame:
    """One line per method, target and metric: the table as CSV."""
    lines = []
    for row in result["rows"]:
        base = result["summary"][row["baseline"]][row["target"]][row["metric"]]
        own = result["summary"][row["method"]][row["target"]][row["metric"]]
        boot = row["bootstrap"] or {}
        lines.append(
            {
                "method": row["method"],
                "baseline": row["baseline"],
                "target": row["target"],
                "metric": row["metric"],
                "mean": own["mean"],
                "std": own["std"],
                "baseline_mean": base["mean"],
                "baseline_std": base["std"],
                "diff": row["diff"],
                "seed_ci_low": row["ci_low"],
                "seed_ci_high": row["ci_high"],
                "t_test": row["t_test"]["test"],
                "t_p": row["t_test"]["p"],
                "t_p_holm": row["t_test"]["p_holm"],
                "rank_test": row["rank_test"]["test"],
                "rank_p": row["rank_test"]["p"],
                "rank_p_holm": row["rank_test"]["p_holm"],
                "rank_min_p": row["rank_test"]["min_p"],
                "bootstrap_ci_low": boot.get("ci_low"),
                "bootstrap_ci_high": boot.get("ci_high"),
                "bootstrap_p": boot.get("p"),
                "bootstrap_p_holm": boot.get("p_holm"),
                "aso_eps_min": row["aso"],
            }
        )
    return pd.DataFrame(lines)


def write_comparison(result: dict[str, Any], folder: Path) -> list[Path]:
    """``comparison.json``, ``comparison.csv`` and the critical-difference diagram (when there is one) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "comparison.json", folder / "comparison.csv"]
    write_json(files[0], result)
    flat_rows(result).to_csv(files[1], index=False)
    if result.get("friedman"):
        f = result["friedman"]
        title = f"{result['task']} · {f['metric']} · {f['n_datasets']} targets"
        files.append(plot_critical_difference(f["avg_ranks"], f["cd"], folder / "cd-diagram.png", title))
    return files


# -------------------------------------------------------------------------------------------------------- bench
def bench_compare(
    num_methods: int = 6, num_seeds: int = 5, num_images: int = 7_000, resamples: int = 10_000, rng: int = 0
) -> dict[str, float]:
    """Wall-clock and CPU seconds (all threads) of :func:`compare_runs` of ``num_methods`` synthetic runs ×
    ``num_seeds`` seeds on a SilkNet-shaped test split (issue 11's goal: 6 × 5 on 7,000 images with 10,000 resamples
    under 10 s on a 2-core CPU). On a busy machine the CPU seconds bound the wall-clock time of a quiet one.

    Five multiclass targets with the classes of SilkNet Table 1 (K = 29, 3, 7, 9, 8), labels known for the §4
    shares of the images, background labels, predictions 60 % correct and otherwise uniform guesses; run folders
    written through :class:`RunWriter` in a temporary folder (not timed) and read back through the store (timed).
    """
    from artbench.datasets.silknow_reference import BACKGROUND_LABELS, CLASS_COUNTS, LABELLED_PERCENT

    gen = np.random.default_rng(rng)
    targets = [{"name": t, "background": [BACKGROUND_LABELS[t]] if t != "material" else []} for t in CLASS_COUNTS]
    task = parse_task({"name": "bench", "dataset": "silknow-synth", "targets": targets}, "bench_compare")
    specs = [TargetSpec(t.name, classes=tuple(CLASS_COUNTS[t.name]), background=t.background) for t in task.targets]
    truth = []
    for spec in specs:
        counts = np.array(list(CLASS_COUNTS[spec.name].values()), dtype=float)
        y = gen.choice(spec.num_classes, size=num_images, p=counts / counts.sum())
        if spec.has_background:
            y[gen.random(num_images) < 0.02] = spec.num_classes
        y[gen.random(num_images) > LABELLED_PERCENT[spec.name] / 100] = MISSING
        truth.append(y)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for m in range(num_methods):
            writer = RunWriter(Path(tmp), task.name, f"method{m}")
            per_seed = []
            for seed in range(1, num_seeds + 1):
                columns: dict[str, Any] = {"image": [f"img/{i:06d}.png" for i in range(num_images)]}
                scores, metrics = {}, {}
                for spec, y in zip(specs, truth, strict=True):
                    guess = gen.integers(0, spec.num_outputs, size=num_images)
                    pred = np.where((gen.random(num_images) < 0.6) & (y != MISSING), y, guess)
                    scores[spec.name] = np.eye(spec.num_outputs, dtype=np.float32)[pred]
                    metrics[spec.name] = {
                        "kind": spec.kind,
                        "classes": list(spec.class_names),
                        **evaluate_target(spec, y, scores[spec.name]),
                    }
                    columns[f"{spec.name}.true"], columns[f"{spec.name}.pred"] = spec.decode(y), spec.decode(pred)
                record = {"seed": seed, "targets": metrics, "overall": run_level(metrics)}
                writer.write_seed(seed, record, pd.DataFrame(columns), scores)
                per_seed.append(flatten_metrics(record))
            writer.write_summary("complete", num_seeds, list(range(1, num_seeds + 1)), metrics=summarise(per_seed))
            runs[f"method{m}"] = writer.run_dir
        start, cpu = time.perf_counter(), time.process_time()
        records = {label: read_run(path) for label, path in runs.items()}
        compare_runs(task, records, baseline="method0", metrics=list(task.metrics), resamples=resamples, rng=rng)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "methods": num_methods,
        "seeds": num_seeds,
        "images": num_images,
        "resamples": resamples,
    }
