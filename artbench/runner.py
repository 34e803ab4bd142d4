"""``artbench run``: one method on one task over N seeds. The runner orchestrates; the method trains.

The split is fixed by the task (same for every seed); seed k seeds the method. For each seed the method fits, its
predictor scores the validation rows (multilabel decision thresholds are chosen there) and the test rows, and the
test rows are evaluated with every metric that applies to each target's kind. Each finished seed is written
atomically through the results store and logged to MLflow before the next starts, so an interruption loses at
most the seed in progress; ``summary.json`` then says ``incomplete``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artbench.core.device import seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.params import to_plain
from artbench.core.progress import console
from artbench.core.task import TaskSpec
from artbench.data.task_data import prepare_task
from artbench.evaluation.aggregate import flatten_metrics, summarise
from artbench.evaluation.metrics import METRICS
from artbench.evaluation.plots import plot_confusion
from artbench.evaluation.task_evaluation import evaluate_predictions
from artbench.methods import Method, MethodEntry, RunContext
from artbench.results.environment import environment_record
from artbench.results.store import RunWriter
from artbench.tracking.mlflow import MlflowTracker, probe_tracking_uri


def resolve_method(
    entry: MethodEntry,
    task: TaskSpec,
    config_layer: Mapping[str, Any] | None = None,
    set_layer: Mapping[str, Any] | None = None,
    config_source: str = "--config",
) -> Method:
    """The method's parameters, later layers winning: its family's defaults < the task's ``[defaults]`` (the keys
    the family has) < the recipe's fixed values < ``--config`` < ``--set``."""
    names = entry.parameter_names()
    task_layer = entry.coerce({k: v for k, v in task.defaults.items() if k in names}, f"{task.source}: [defaults]")
    return entry.build(
        task_layer,
        entry.fixed,
        entry.coerce(config_layer or {}, config_source),
        entry.coerce(set_layer or {}, "--set"),
    )


def check_kinds(task: TaskSpec, entry: MethodEntry, method: Method) -> None:
    """A method asked to learn a kind it does not support is an error before any work."""
    unsupported = [f"{t.name} ({t.kind})" for t in task.targets if t.kind not in method.supports]
    if unsupported:
        raise ArtbenchError(
            f"method {entry.name!r} cannot learn target(s) {', '.join(unsupported)}; it supports "
            f"{', '.join(sorted(method.supports))}: pick another method or drop those targets"
        )


def safe_file_name(name: str) -> str:
    """``name`` with every character other than letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "_"


@dataclass
class RunOutcome:
    run_dir: Path
    status: str
    seeds_completed: list[int]
    summary: dict[str, dict[str, Any]]
    targets: list[str]


def _check_out_dir(out_dir: Path) -> None:
    """``--out`` must be a folder, or creatable in the nearest existing folder above it, and writable."""
    existing = next(p for p in (out_dir, *out_dir.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ArtbenchError(f"--out {str(out_dir)!r}: {str(existing)!r} is a file; pass a folder for the runs")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ArtbenchError(f"--out {str(out_dir)!r}: {str(existing)!r} is not writable; pass a writable folder")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the finished seeds are saved in ``run_dir`` and the run is marked incomplete."""

    def __init__(self, run_dir: Path, seeds_completed: list[int]) -> None:
        super().__init__(run_dir, seeds_completed)
        self.run_dir, self.seeds_completed = run_dir, seeds_completed


def _warn_untested_classes(metrics: Mapping[str, Any], warned: set[str]) -> None:
    """Warn once per target about classes that the macro averages leave out for lack of test samples."""
    for name, m in metrics["targets"].items():
        absent = m.get("classes_without_test_samples") or []
        if absent and name not in warned:
            warned.add(name)
            shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
            console.print(
                f"[yellow]warning:[/] target {name!r}: {len(absent)} class(es) have no test sample and are left out "
                f"of its macro averages ({shown}); metrics.json lists them",
                soft_wrap=True,
            )


def _plot_seed(metrics: Mapping[str, Any], title: str) -> Any:
    def write(folder: Path) -> None:
        for name, m in metrics["targets"].items():
            if "confusion_matrix" in m:
                cm = m["confusion_matrix"]
                plot_confusion(
                    cm["matrix"], cm["labels"], f"{title} · {name}", folder / f"confusion-{safe_file_name(name)}.png"
                )

    return write


def run(
    task: TaskSpec,
    entry: MethodEntry,
    method: Method,
    *,
    seeds: int,
    out_dir: Path,
    device: torch.device,
    tracking_uri: str | None,
    amp: bool = True,
) -> RunOutcome:
    """Train and evaluate ``method`` on ``task`` for seeds 1..``seeds``; see the module docstring."""
    _check_out_dir(out_dir)
    check_kinds(task, entry, method)
    method.check(task.targets)
    if tracking_uri:
        probe_tracking_uri(tracking_uri)
    data = prepare_task(task)
    tracker = MlflowTracker(tracking_uri, task.name, out_dir / "mlartifacts") if tracking_uri else None
    writer = RunWriter(out_dir, task.name, entry.name)
    params = to_plain(method)
    completed: list[int] = []
    flat_per_seed: list[dict[str, float]] = []
    status, ended = "incomplete", "KILLED"
    warned: set[str] = set()

    def write_summary() -> dict[str, dict[str, Any]]:
        summary = summarise(flat_per_seed)
        writer.write_summary(status, seeds, completed, metrics=summary)
        return summary

    # From here on the run folder exists: whatever stops the run, it ends with a summary marked incomplete.
    try:
        write_summary()
        writer.write_config(
            {
                "task": task.name,
                "method": entry.name,
                "family": type(method).__name__,
                "seeds": seeds,
                "split": vars(task.split),
                "params": params,
                "run": {"device": str(device), "amp": amp},
                "task_file": task.source,
            }
        )
        writer.write_environment(environment_record(device, data.dataset.fingerprint))
        if tracker:
            tracker.start_run(
                entry.name,
                {"task": task.name, "method": entry.name, "seeds": seeds, **params},
                {"artbench.run_id": writer.run_id, "artbench.task": task.name, "artbench.method": entry.name},
            )
        val_index, test_index = data.index("val"), data.index("test")
        for seed in range(1, seeds + 1):
            if tracker:
                tracker.start_seed(seed, {"artbench.run_id": writer.run_id})
            writer.seed_tmp(seed).mkdir()
            ctx = RunContext(
                device,
                amp,
                writer.seed_tmp(seed),
                tracker.log_epoch if tracker else None,
                description=f"seed {seed}",
            )
            seed_everything(seed)
            predictor = method.fit(data, seed, ctx)
            metrics, predictions, scores = evaluate_predictions(
                data, predictor.predict(data, val_index), predictor.predict(data, test_index)
            )
            metrics = {"seed": seed, **predictor.info, **metrics}
            _warn_untested_classes(metrics, warned)
            title = f"{task.name} · {entry.name} · seed {seed}"
            seed_dir = writer.write_seed(seed, metrics, predictions, scores, _plot_seed(metrics, title))
            flat = flatten_metrics(metrics)
            if tracker:
                per_class = {
                    f"{t}.class.{c}.{k}": v
                    for t, m in metrics["targets"].items()
                    for c, vals in m.get("per_class", {}).items()
                    for k, v in vals.items()
                    if k != "support" and isinstance(v, int | float)
                }
                tracker.end_seed({**flat, **per_class}, sorted(seed_dir.iterdir()))
            completed.append(seed)
            flat_per_seed.append(flat)
            write_summary()
        status = "complete"
    except BaseException as exc:
        writer.discard_seed(len(completed) + 1)
        ended = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        if tracker:
            tracker.fail_seed(ended)
        if isinstance(exc, KeyboardInterrupt):
            raise RunInterrupted(writer.run_dir, list(completed)) from None
        raise
    finally:
        summary = write_summary()
        if tracker:
            means = {f"{k}.mean": v["mean"] for k, v in summary.items() if v["mean"] is not None}
            run_dir = writer.run_dir
            files = [p for p in (run_dir / "config.json", run_dir / "environment.json") if p.is_file()]
            try:
                tracker.end_run(
                    means, [*files, run_dir / "summary.json"], "FINISHED" if status == "complete" else ended, status
                )
            except KeyboardInterrupt:  # a second Ctrl-C while MLflow closes the run: the disk is complete
                raise RunInterrupted(run_dir, list(completed)) from None
    return RunOutcome(writer.run_dir, status, completed, summary, [t.name for t in data.targets])


def summary_rows(
    summary: Mapping[str, Mapping[str, Any]], targets: Sequence[str], metrics: Sequence[str]
) -> list[list[str]]:
    """Rows ``[target, <metric>...]`` as ``mean ± std`` (percent for scores, plain for errors such as MAE),
    ``mean`` for one seed, ``–`` where a metric does not apply; ``overall`` last."""

    def cell(key: str, metric: str) -> str:
        entry = summary.get(key)
        if not entry or entry["mean"] is None:
            return "–"
        scale = 100 if METRICS.get(metric).higher_is_better else 1
        mean = f"{scale * entry['mean']:.1f}"
        return mean if entry["std"] is None else f"{mean} ± {scale * entry['std']:.1f}"

    return [[n, *(cell(f"{n}.{m}", m) for m in metrics)] for n in [*targets, "overall"]]
