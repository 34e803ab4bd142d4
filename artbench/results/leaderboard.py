"""Leaderboards (issue 11, "Leaderboards"): per task, the methods ranked by the task's first metric.

Rows come from the latest complete run of each method under the runs folder and from the verified submissions under
``<leaderboards>/submissions/<task>/<name>/`` (run folders whose scores artbench recomputed, see
:mod:`artbench.results.submission`), all read through :mod:`artbench.results.store`. The numbers papers printed
(``baselines/*.toml``) are added as marked reference rows: never ranked, never tested (a paper gives no per-seed
values). Each measured row is tested against the best ``artbench run`` row (the best baseline) over seeds, with
Holm's correction over the board. :func:`write_board` writes Markdown, CSV and JSON; :mod:`artbench.results.site`
the HTML pages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError
from artbench.core.targets import BACKGROUND_NAME
from artbench.core.task import TaskSpec
from artbench.data.task_data import prepare_task
from artbench.evaluation.metrics import METRICS
from artbench.evaluation.significance import friedman_nemenyi, holm
from artbench.results.baselines import baseline_dirs, load_baseline, reported_values
from artbench.results.compare import seed_comparison
from artbench.results.store import RunRecord, find_runs, jsonable, read_run, write_json

SOURCE_RUN, SOURCE_SUBMISSION = "artbench run", "submission"
SOURCE_REPORTED, SOURCE_OTHER_DATA = "reported", "reference, other data"
REFERENCE_OTHER_DATA = {"silknet": ("silknow", "silknow-synth")}
"""Baseline files without a ``[paper] tasks`` list, shown on the boards of tasks built on these datasets as
"reference, other data": SilkNet's Tables 4-6 were measured on a SILKNOW export that no artbench task reproduces
(``tasks/silknow.toml``)."""
ALPHA = 0.05
SUBMISSIONS = "submissions"


@dataclass
class Entry:
    """One row of a board. ``metrics`` maps ``<target>.<metric>`` (``overall`` = mean over targets) to ``mean``,
    ``std`` and the per-seed ``values``, in artbench's units (scores as fractions, errors such as MAE as they are)."""

    name: str
    source: str
    metrics: dict[str, dict[str, Any]]
    seeds: list[int] = field(default_factory=list)
    run: RunRecord | None = None
    hardware: str | None = None
    wall_seconds: float | None = None
    paper: str | None = None
    paper_seeds: int | None = None
    note: str = ""
    rank: int | None = None
    vs_best: dict[str, Any] | None = None

    @property
    def measured(self) -> bool:
        return self.run is not None

    def mean(self, key: str) -> float | None:
        value = self.metrics.get(key, {}).get("mean")
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    def values(self, key: str) -> np.ndarray:
        """Per-seed values of ``key`` in seed order, NaN where undefined."""
        return np.array([np.nan if v is None else v for v in self.metrics.get(key, {}).get("values") or []], float)


@dataclass
class Board:
    """A task's leaderboard: ranked measured entries first, then the reference rows."""

    task: TaskSpec
    ranking: str
    columns: list[str]
    entries: list[Entry]
    baseline: str | None
    significance: str
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    cd: dict[str, Any] | None = None
    cd_note: str = ""
    """What the critical-difference diagram shows (with the Friedman test), or why there is none."""
    notes: list[str] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool:
        return METRICS.get(self.ranking).higher_is_better

    @property
    def measured(self) -> list[Entry]:
        return [e for e in self.entries if e.measured]

    @property
    def reference(self) -> list[Entry]:
        return [e for e in self.entries if not e.measured]


# ---------------------------------------------------------------------------------------------------- formatting


def metric_of(key: str) -> str:
    return key.rsplit(".", 1)[1]


def column_label(key: str) -> str:
    """``overall.f1_macro`` → ``F1 (macro)``; ``place.f1_macro`` → ``place · F1 (macro)``."""
    target, metric = key.rsplit(".", 1)
    label = METRICS.get(metric).label
    return label if target == "overall" else f"{target} · {label}"


def scale(metric: str) -> float:
    """Display factor: scores in percent, errors (MAE, RMSE) in their own unit."""
    return 100.0 if METRICS.get(metric).higher_is_better else 1.0


def format_value(entry: Entry, key: str) -> str:
    """``mean ± std`` in display units; ``mean`` alone without a std; ``–`` where the entry has no value."""
    mean = entry.mean(key)
    if mean is None:
        return "–"
    factor = scale(metric_of(key))
    std = entry.metrics[key].get("std")
    text = f"{factor * mean:.1f}"
    return text if std is None else f"{text} ± {factor * std:.1f}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_vs_best(entry: Entry, factor: float) -> str:
    """``Δ -1.2, p = 0.031*`` (difference times ``factor``, Holm-adjusted p), ``best baseline``, or ``–``."""
    if entry.vs_best is None:
        return "–"
    if entry.vs_best.get("is_baseline"):
        return "best baseline"
    text = f"Δ {factor * entry.vs_best['diff']:+.1f}"
    p = entry.vs_best["p_holm"]
    if p is None:
        return f"{text} (no test: {entry.vs_best['note']})"
    test = "paired t" if entry.vs_best["test"].startswith("paired") else "Welch"
    return f"{text}, p = {p:.3g}{'*' if entry.vs_best['significant'] else ''} ({test})"


def format_seeds(entry: Entry) -> str:
    if entry.measured:
        return f"{len(entry.seeds)} ({', '.join(map(str, entry.seeds))})"
    return f"{entry.paper_seeds} (paper)" if entry.paper_seeds else "–"


# ------------------------------------------------------------------------------------------------------ entries


def _hardware(run: RunRecord) -> str | None:
    env = run.environment
    name = env.get("device_name")
    device = env.get("device") or run.config.get("run", {}).get("device")
    if device and str(device).startswith("cuda"):
        return f"{name or device} (CUDA {env.get('cuda') or '?'})"
    if name or device:
        threads = env.get("cpu_threads")
        return f"CPU {name or ''}".strip() + (f", {threads} threads" if threads else "")
    return None


def _measured_entry(name: str, source: str, run: RunRecord) -> Entry:
    seconds = []
    for seed in run.seeds:
        try:
            value = run.metrics(seed).get("train_seconds")
        except ArtbenchError:
            value = None
        if isinstance(value, int | float):
            seconds.append(float(value))
    return Entry(
        name=name,
        source=source,
        metrics=dict(run.summary.get("metrics", {})),
        seeds=run.seeds,
        run=run,
        hardware=_hardware(run),
        wall_seconds=sum(seconds) if len(seconds) == len(run.seeds) and seconds else None,
        note=str(run.summary.get("submission", {}).get("description", "")),
    )


def measured_entries(task: TaskSpec, runs_dir: Path, submissions_dir: Path | None) -> list[Entry]:
    """The latest complete run of every method of ``task`` under ``runs_dir``, then every submission."""
    latest: dict[str, RunRecord] = {}
    for run in find_runs(runs_dir, task.name):
        if run.status == "complete" and run.seeds:
            latest[run.method] = run  # find_runs lists oldest first
    entries = [_measured_entry(method, SOURCE_RUN, run) for method, run in sorted(latest.items())]
    taken = set(latest)
    if submissions_dir is not None and (submissions_dir / task.name).is_dir():
        for folder in sorted(p for p in (submissions_dir / task.name).iterdir() if p.is_dir()):
            try:
                run = read_run(folder)
            except ArtbenchError:
                continue
            name = folder.name if folder.name not in taken else f"{folder.name} [submission]"
            entries.append(_measured_entry(name, SOURCE_SUBMISSION, run))
    return entries


def _paper_files(task: TaskSpec) -> list[tuple[str, str]]:
    """``(baseline file stem, source label)`` of the papers whose numbers belong on ``task``'s board."""
    found: dict[str, str] = {}
    for folder in baseline_dirs():
        for path in sorted(folder.glob("*.toml")):
            if path.stem in found:
                continue
            try:
                paper = load_baseline(path.stem).get("paper", {})
            except ArtbenchError:
                continue
            if task.name in paper.get("tasks", []):
                found[path.stem] = SOURCE_REPORTED
            elif task.dataset in REFERENCE_OTHER_DATA.get(path.stem, ()):
                found[path.stem] = SOURCE_OTHER_DATA
    return sorted(found.items())


def reference_entries(task: TaskSpec, columns: Sequence[str]) -> list[Entry]:
    """The papers' numbers for the board's columns, one entry per (paper, method), in artbench's units; on a
    one-target task a number reported for that target is its mean over targets."""
    wanted = set(columns)
    entries: list[Entry] = []
    for stem, source in _paper_files(task):
        paper = load_baseline(stem).get("paper", {})
        by_method: dict[str, dict[str, dict[str, Any]]] = {}
        key_of_paper = stem
        for value in reported_values(stem, set(METRICS.names())):
            key_of_paper = value.paper
            single = len(task.targets) == 1 and value.target == task.targets[0].name
            key = f"{'overall' if single else value.target}.{value.metric}"
            if value.task not in (None, task.name) or key not in wanted:
                continue
            factor = scale(value.metric)
            std = None if value.std is None else value.std / factor
            by_method.setdefault(value.method, {})[key] = {"mean": value.value / factor, "std": std, "values": []}
        for method, metrics in by_method.items():
            entry = Entry(
                name=method,
                source=source,
                metrics=metrics,
                paper=key_of_paper,
                paper_seeds=paper.get("seeds"),
                note=str(paper.get("dataset", "")),
            )
            entries.append(entry)
    return entries


# ------------------------------------------------------------------------------------------------------ ranking


def board_columns(task: TaskSpec) -> list[str]:
    """The ranking metric over targets and per target, then the task's other metrics over targets, with F1 on the
    under-represented classes whenever a target is multiclass (SilkNet Table 6)."""
    kinds = {t.kind for t in task.targets}
    ranking = task.metrics[0]
    others = list(task.metrics[1:])
    if "multiclass" in kinds and "f1_underrepresented" not in task.metrics:
        others.append("f1_underrepresented")
    per_target = [f"{t.name}.{ranking}" for t in task.targets if t.kind in METRICS.get(ranking).kinds]
    if len(task.targets) == 1:
        per_target = []  # the mean over one target is that target
    return [
        f"overall.{ranking}",
        *per_target,
        *(f"overall.{m}" for m in others if METRICS.get(m).kinds & kinds),
    ]


def rank_entries(entries: list[Entry], key: str, higher_is_better: bool) -> list[Entry]:
    """Measured entries by ``key`` (best first, entries without a value last), numbered from 1."""
    scored = sorted(
        (e for e in entries if e.mean(key) is not None),
        key=lambda e: (-e.mean(key) if higher_is_better else e.mean(key), e.name),  # type: ignore[operator]
    )
    unscored = sorted((e for e in entries if e.mean(key) is None), key=lambda e: e.name)
    for i, entry in enumerate(scored, 1):
        entry.rank = i
    return scored + unscored


def test_against_best(ranked: list[Entry], key: str) -> tuple[str | None, str]:
    """Set ``vs_best`` on the ranked measured entries against the best ``artbench run`` entry.

    Over the per-seed values of ``key``: the paired t-test when both ran the same seeds (seed k shares the split
    and seeds the method alike), Welch's t-test otherwise, as ``artbench compare`` computes them
    (:func:`artbench.results.compare.seed_comparison`, which adds ASO's ε_min); Holm's correction over the board's
    comparisons. Returns the baseline's name and a sentence naming the test.
    """
    baseline = next((e for e in ranked if e.source == SOURCE_RUN and e.mean(key) is not None), None)
    if baseline is None:
        return None, "No artbench run on this board, so no row is tested."
    baseline.vs_best = {"is_baseline": True}
    base = baseline.values(key)
    compared: list[Entry] = []
    pvalues: list[float] = []
    for entry in ranked:
        if entry is baseline or entry.mean(key) is None:
            continue
        values = entry.values(key)
        paired = entry.seeds == baseline.seeds and len(values) == len(base) == len(entry.seeds)
        result = seed_comparison(values, base, paired, metric_of(key), alpha=ALPHA, resamples=0, rng=0)
        t_test = result["t_test"]
        entry.vs_best = {
            "is_baseline": False,
            "baseline": baseline.name,
            "test": t_test["test"],
            "diff": result["diff"],
            "ci_low": result["ci_low"],
            "ci_high": result["ci_high"],
            "statistic": t_test["statistic"],
            "p": t_test["p"],
            "note": t_test["note"],
            "aso_epsilon_min": result["aso"],
        }
        compared.append(entry)
        pvalues.append(t_test["p"])
    adjusted = holm(pvalues) if pvalues else np.array([])
    for entry, p in zip(compared, adjusted, strict=True):
        entry.vs_best["p_holm"] = None if np.isnan(p) else float(p)
        entry.vs_best["significant"] = bool(not np.isnan(p) and p < ALPHA)
        if entry.vs_best["p"] != entry.vs_best["p"]:
            entry.vs_best["p"] = None
    label = column_label(key)
    sentence = (
        f"Significance against {baseline.name}, the best artbench run, on the per-seed {label} (mean over targets): "
        f"two-sided paired t-test over seeds where both ran the same seeds, Welch's t-test otherwise; p-values "
        f"Holm-adjusted over the {len(compared)} comparison(s) of this board; * = adjusted p < {ALPHA}. "
        "Reference rows are not tested: papers give no per-seed values."
    )
    return baseline.name, sentence


# ---------------------------------------------------------------------------------------------- plots' numbers


def training_counts(task: TaskSpec) -> dict[str, dict[str, int]]:
    """Labelled training samples per foreground class of every classification target (the task's split)."""
    data = prepare_task(task)
    train = data.split == "train"
    counts: dict[str, dict[str, int]] = {}
    for spec, codes in zip(data.targets, data.labels, strict=True):
        rows = codes[train]
        if spec.kind == "multiclass":
            per_class = np.bincount(rows[rows >= 0], minlength=spec.num_outputs)[: spec.num_classes]
        elif spec.kind == "multilabel":
            per_class = rows[spec.known(rows)].sum(axis=0)
        else:
            continue
        counts[spec.name] = {c: int(n) for c, n in zip(spec.classes, per_class, strict=True)}
    return counts


def per_class_scores(task: TaskSpec, entries: list[Entry], counts: dict[str, dict[str, int]] | None) -> dict:
    """Per classification target: each measured entry's per-class F1 (multiclass) or AP (multilabel), mean over
    seeds, from the seeds' ``metrics.json``, with the class's training count (``counts``) or, where the dataset
    is not available (``counts`` None), its test support."""
    out: dict[str, dict[str, Any]] = {}
    for spec in task.targets:
        if spec.kind == "regression":
            continue
        score = "f1" if spec.kind == "multiclass" else "ap"
        by_entry: dict[str, dict[str, float]] = {}
        support: dict[str, int] = {}
        for entry in entries:
            sums: dict[str, list[float]] = {}
            for seed in entry.seeds:
                try:
                    classes = entry.run.metrics(seed)["targets"][spec.name]["per_class"]  # type: ignore[union-attr]
                except (ArtbenchError, KeyError, TypeError):
                    continue
                for name, values in classes.items():
                    if name == BACKGROUND_NAME or values.get(score) is None:
                        continue
                    sums.setdefault(name, []).append(float(values[score]))
                    support.setdefault(name, int(values.get("support", 0)))
            if sums:
                by_entry[entry.name] = {name: float(np.mean(v)) for name, v in sums.items()}
        if not by_entry:
            continue
        frequency = counts.get(spec.name) if counts is not None else None
        out[spec.name] = {
            "score": "F1" if score == "f1" else "AP",
            "frequency": frequency if frequency is not None else support,
            "frequency_of": "training samples" if frequency is not None else "test samples",
            "entries": by_entry,
        }
    return out


def critical_difference(task: TaskSpec, entries: list[Entry], ranking: str) -> tuple[dict[str, Any] | None, str]:
    """Friedman test and Nemenyi critical difference over the targets (Demšar 2006): rows are the targets, columns
    the measured entries, values their mean ``ranking`` metric; ``None`` with the reason when it does not apply."""
    targets = [t.name for t in task.targets if t.kind in METRICS.get(ranking).kinds]
    usable = [e for e in entries if all(e.mean(f"{t}.{ranking}") is not None for t in targets)]
    if len(usable) < 2 or len(targets) < 2:
        return None, "No critical-difference diagram: it needs at least 2 measured rows and 2 targets."
    scores = pd.DataFrame({e.name: [e.mean(f"{t}.{ranking}") for t in targets] for e in usable}, index=targets)
    result = friedman_nemenyi(scores, higher_is_better=METRICS.get(ranking).higher_is_better, alpha=ALPHA)
    result.pop("pairwise_p")
    result["targets"] = targets
    friedman = (
        f"Friedman χ² = {result['statistic']:.2f}, p = {result['p']:.3g}"
        if result["note"] is None
        else f"Friedman test not applicable ({result['note']})"
    )
    return result, (
        f"Critical-difference diagram over the {len(targets)} targets (Demšar 2006): average ranks of the mean "
        f"{METRICS.get(ranking).label} per target; Nemenyi CD = {result['cd']:.2f} at α = {ALPHA}; {friedman}."
    )


# ------------------------------------------------------------------------------------------------------- board


def build_board(
    task: TaskSpec, runs_dir: Path, submissions_dir: Path | None = None, *, with_training_counts: bool = True
) -> Board:
    """The board of ``task`` from the runs under ``runs_dir`` and the submissions under ``submissions_dir``."""
    measured = measured_entries(task, runs_dir, submissions_dir)
    if not measured:
        raise ArtbenchError(
            f"no complete run of task {task.name!r} in {str(runs_dir)!r}; "
            f"run `artbench run {task.name} METHOD` first or pass --runs"
        )
    ranking = task.metrics[0]
    columns = board_columns(task)
    key = f"overall.{ranking}"
    ranked = rank_entries(measured, key, METRICS.get(ranking).higher_is_better)
    baseline, sentence = test_against_best(ranked, key)
    notes: list[str] = []
    fingerprints = {e.name: e.run.environment.get("dataset_fingerprint") for e in ranked if e.run}
    if len(set(fingerprints.values())) > 1:
        notes.append(
            "Rows were measured on different versions of the dataset (dataset fingerprints "
            + ", ".join(f"{name}: {fp}" for name, fp in fingerprints.items())
            + "): compare them with care."
        )
    counts = None
    if with_training_counts and any(t.kind != "regression" for t in task.targets):
        try:
            counts = training_counts(task)
        except ArtbenchError as exc:
            notes.append(f"Per-class plot against test support: the dataset is not available here ({exc}).")
    cd, cd_sentence = critical_difference(task, ranked, ranking)
    notes.append(cd_sentence)
    reference = reference_entries(task, columns)
    if any(e.source == SOURCE_REPORTED for e in reference):
        notes.append("Rows marked 'reported' are numbers printed in papers, on the paper's test set; not reproduced.")
    if any(e.source == SOURCE_OTHER_DATA for e in reference):
        notes.append(
            "Rows marked 'reference, other data' were measured by a paper on other data "
            "(see their note); they are a reference point, not a result on this task."
        )
    return Board(
        task=task,
        ranking=ranking,
        columns=columns,
        entries=ranked + reference,
        baseline=baseline,
        significance=sentence,
        per_class=per_class_scores(task, ranked, counts),
        cd=cd,
        cd_note=cd_sentence,
        notes=notes,
    )


TABLE_HEADERS = ("#", "method", "source")
TABLE_TAIL = ("seeds", "vs best baseline", "hardware", "train time", "run")


def table_header(board: Board) -> list[str]:
    return [*TABLE_HEADERS, *(column_label(k) for k in board.columns), *TABLE_TAIL]


def table_rows(board: Board) -> list[list[str]]:
    """The board as display strings, in :func:`table_header`'s order."""
    rows = []
    for entry in board.entries:
        source = entry.source if entry.paper is None else f"{entry.source} ({entry.paper})"
        rows.append(
            [
                str(entry.rank) if entry.rank else ("ref" if not entry.measured else "–"),
                entry.name,
                source,
                *(format_value(entry, key) for key in board.columns),
                format_seeds(entry),
                format_vs_best(entry, scale(board.ranking)),
                entry.hardware or "–",
                format_seconds(entry.wall_seconds),
                entry.run.summary.get("run_id", entry.run.run_dir.name) if entry.run else "–",
            ]
        )
    return rows


def board_json(board: Board) -> dict[str, Any]:
    """Everything on the board, in artbench's units (scores as fractions)."""
    return jsonable(
        {
            "task": board.task.name,
            "description": board.task.description,
            "dataset": board.task.dataset,
            "ranking_metric": board.ranking,
            "higher_is_better": board.higher_is_better,
            "columns": board.columns,
            "baseline": board.baseline,
            "significance": board.significance,
            "alpha": ALPHA,
            "entries": [
                {
                    "rank": e.rank,
                    "name": e.name,
                    "source": e.source,
                    "paper": e.paper,
                    "note": e.note,
                    "seeds": e.seeds,
                    "paper_seeds": e.paper_seeds,
                    "metrics": {k: e.metrics[k] for k in board.columns if k in e.metrics},
                    "vs_best": e.vs_best,
                    "hardware": e.hardware,
                    "train_seconds": e.wall_seconds,
                    "run_id": e.run.summary.get("run_id") if e.run else None,
                    "artbench_version": e.run.environment.get("artbench_version") if e.run else None,
                    "git_commit": e.run.environment.get("git_commit") if e.run else None,
                    "dataset_fingerprint": e.run.environment.get("dataset_fingerprint") if e.run else None,
                }
                for e in board.entries
            ],
            "per_class": board.per_class,
            "critical_difference": board.cd,
            "notes": board.notes,
        }
    )


def board_frame(board: Board) -> pd.DataFrame:
    """One row per entry with numeric columns (artbench's units), as the CSV holds it."""
    records = []
    for e in board.entries:
        record: dict[str, Any] = {
            "rank": e.rank,
            "name": e.name,
            "source": e.source,
            "paper": e.paper,
            "seeds": " ".join(map(str, e.seeds)) or None,
        }
        for key in board.columns:
            record[f"{key}.mean"] = e.mean(key)
            record[f"{key}.std"] = e.metrics.get(key, {}).get("std")
        vs = e.vs_best or {}
        record.update(
            {
                "vs_best.diff": vs.get("diff"),
                "vs_best.test": vs.get("test"),
                "vs_best.p": vs.get("p"),
                "vs_best.p_holm": vs.get("p_holm"),
                "vs_best.significant": vs.get("significant"),
                "hardware": e.hardware,
                "train_seconds": e.wall_seconds,
                "run_id": e.run.summary.get("run_id") if e.run else None,
                "git_commit": e.run.environment.get("git_commit") if e.run else None,
            }
        )
        records.append(record)
    return pd.DataFrame.from_records(records)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_notes(board: Board) -> dict[str, str]:
    """Paper key → what its numbers were measured on (``[paper] dataset``), for the reference rows' footnote."""
    return {e.paper: e.note for e in board.reference if e.paper and e.note}


def board_markdown(board: Board) -> str:
    task = board.task
    unit = "scores in %" if board.higher_is_better else "errors in the target's unit"
    lines = [
        f"# Leaderboard: {task.name}",
        "",
        *([task.description, ""] if task.description else []),
        f"Ranked by **{column_label('overall.' + board.ranking)}** (mean over targets), mean ± std over seeds on "
        f"the test split; {unit}. Built by `artbench leaderboard build` from complete runs and verified submissions.",
        "",
        "| " + " | ".join(_md_cell(h) for h in table_header(board)) + " |",
        "|" + "|".join("---:" if i == 0 else "---" for i in range(len(table_header(board)))) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table_rows(board)]
    lines += ["", board.significance, ""]
    lines += [f"- {note}" for note in board.notes]
    papers = reference_notes(board)
    if papers:
        lines += ["", "Reference rows:", ""]
        lines += [f"- {_md_cell(paper)}: {_md_cell(note)}" for paper, note in papers.items()]
    return "\n".join(lines) + "\n"


def write_board(board: Board, out_dir: Path) -> list[Path]:
    """``<out>/<task>.md``, ``.csv`` and ``.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / board.task.name
    paths = [stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".json")]
    paths[0].write_text(board_markdown(board), encoding="utf-8")
    board_frame(board).to_csv(paths[1], index=False)
    write_json(paths[2], board_json(board))
    return paths
