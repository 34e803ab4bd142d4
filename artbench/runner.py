"""``artbench run``: one method on one task over N seeds. The runner orchestrates; the method trains.

The split is fixed by the task (same for every seed); seed k seeds the method. For each seed the method fits, its
predictor scores the validation rows (multilabel decision thresholds are chosen there) and the test rows, and the
test rows are evaluated with every metric that applies to each target's kind. Each finished seed is written
atomically through the results store (its completion marker last) and logged to MLflow before the next starts, so
an interruption loses at most the seed in progress; ``summary.json`` then says ``incomplete``.

Resume (issue 14): ``resume`` continues the latest run of the same task, method and resolved config (params, split,
targets, amp): finished seeds are kept as they are, unfinished ones are trained (a torch method continues from the
per-epoch checkpoint in ``seed-<k>.tmp/checkpoints``), the summary is rebuilt from the finished seed folders and the
MLflow parent run (``tracking.json``) is reused. Several processes may train seeds of one run at once (sweep jobs):
each holds a lock on its seed, publishes its seed folder, and rebuilds ``summary.json`` and the parent run's status
under the run's lock, so whoever finishes last leaves the run complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from artbench import preflight
from artbench.core.device import configure_determinism, seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.params import to_plain
from artbench.core.progress import console
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData
from artbench.evaluation.aggregate import every_metric_undefined, flatten_metrics, summarise
from artbench.evaluation.metrics import METRICS
from artbench.evaluation.plots import plot_confusion
from artbench.evaluation.task_evaluation import evaluate_predictions
from artbench.methods import Method, MethodEntry, RunContext
from artbench.results.environment import device_name, environment_record
from artbench.results.store import (
    CHECKPOINTS,
    COMPLETE,
    ENVIRONMENT,
    FINISHED,
    RESUMABLE_FORMAT,
    RunRecord,
    RunWriter,
    clear_failure,
    completed_seeds,
    find_runs,
    jsonable,
    read_run,
    read_tracking,
    record_failure,
    run_lock,
    seed_busy,
    seed_complete,
    seed_lock,
    write_tracking,
)
from artbench.tracking.mlflow import MlflowTracker, check_local_store, probe_tracking_uri

COMPARED = ("params", "split", "targets", "run.amp")
"""The parts of config.json that must be equal for a run to be resumed (compared as JSON values)."""


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
    seeds_trained: list[int] = field(default_factory=list)
    """The seeds this call trained (empty when a resumed run had nothing left to do)."""
    seeds_busy: list[int] = field(default_factory=list)
    """Seeds skipped because another process was training them."""
    tracking_lost: str | None = None
    """Why MLflow logging stopped part-way (None: it did not, or tracking was off)."""


def _check_out_dir(out_dir: Path) -> None:
    """``--out`` must be a folder, or creatable in the nearest existing folder above it, and writable."""
    existing = next(p for p in (out_dir, *out_dir.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ArtbenchError(f"--out {str(out_dir)!r}: {str(existing)!r} is a file; pass a folder for the runs")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ArtbenchError(f"--out {str(out_dir)!r}: {str(existing)!r} is not writable; pass a writable folder")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training: the finished seeds are saved in ``run_dir``, the run is marked incomplete
    and the seed in progress keeps its checkpoint for ``--resume``."""

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


# --- configs and the run to resume ------------------------------------------------------------------------------


def run_config(
    task: TaskSpec,
    entry: MethodEntry,
    method: Method,
    seeds: int,
    device: torch.device | str,
    amp: bool,
    *,
    compile: bool = False,
    deterministic: bool = False,
) -> dict[str, Any]:
    """config.json of a run: what it trains, on what, with which resolved parameters and execution settings (amp,
    compile and deterministic; only amp must match for ``--resume``)."""
    return {
        "task": task.name,
        "method": entry.name,
        "family": type(method).__name__,
        "seeds": seeds,
        "split": vars(task.split),
        "targets": [dataclasses.asdict(t) for t in task.targets],
        "params": to_plain(method),
        "run": {"device": str(device), "amp": amp, "compile": compile, "deterministic": deterministic},
        "task_file": task.source,
    }


def _flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """The compared parts of a config as dotted keys with JSON-normalised values (tuples as lists, NaN as null)."""
    plain = json.loads(json.dumps(jsonable(dict(config)), default=str))
    flat: dict[str, Any] = {}
    for part in COMPARED:
        section, _, key = part.partition(".")
        value = plain.get(section)
        if key:
            value = value.get(key) if isinstance(value, dict) else None
            flat[part] = value
        elif isinstance(value, dict):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat[section] = value
    return flat


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The compared keys (see :data:`COMPARED`) whose values differ, e.g. ``["params.lr", "split.seed"]``."""
    a, b = _flat(old), _flat(new)
    missing = object()
    return sorted(k for k in a.keys() | b.keys() if a.get(k, missing) != b.get(k, missing))


def _describe_differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: list[str]) -> str:
    a, b = _flat(old), _flat(new)

    def short(value: Any) -> str:
        text = json.dumps(value)
        return text if len(text) <= 30 else text[:27] + "..."

    shown = [f"{k} ({short(a.get(k))} → {short(b.get(k))})" for k in keys[:6]]
    return ", ".join(shown) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")


def find_matching_run(out_dir: Path, config: Mapping[str, Any]) -> RunRecord | None:
    """The latest resumable run in ``out_dir`` of the config's task and method whose config matches (finished or
    not), or None."""
    for record in reversed(find_runs(out_dir, config["task"], config["method"])):
        if record.format_version >= RESUMABLE_FORMAT and not config_differences(record.config, config):
            return record
    return None


def find_run_to_resume(out_dir: Path, config: Mapping[str, Any], run_dir: Path | None = None) -> RunRecord | None:
    """The run that ``--resume`` continues: ``run_dir`` when given (its config must match), else the latest run of
    the same task and method whose config matches (finished or not: a finished one may get more seeds). None when
    there is none and no unfinished run of that task and method either; an unfinished run with another config (the
    latest one) is a one-line error naming the differing keys."""
    task, method = config["task"], config["method"]
    if run_dir is None:
        found = find_matching_run(out_dir, config)
        if found is not None:
            return found
        unfinished = [r for r in find_runs(out_dir, task, method) if r.status not in FINISHED]
        if not unfinished or unfinished[-1].format_version < RESUMABLE_FORMAT:
            return None
        record = unfinished[-1]
    else:
        record = read_run(run_dir)
        if (record.task, record.method) != (task, method):
            raise ArtbenchError(
                f"--resume {str(run_dir)!r} is a run of {record.method!r} on {record.task!r}, not of {method!r} on "
                f"{task!r}; pass that task and method, or another run folder"
            )
        if record.format_version < RESUMABLE_FORMAT:
            raise ArtbenchError(
                f"--resume {str(run_dir)!r}: the run has format {record.format_version}, written before runs could "
                "be resumed; start a new run without --resume"
            )
    differing = config_differences(record.config, config)
    if differing:
        raise ArtbenchError(
            f"--resume: run {str(record.run_dir)!r} was made with other settings: "
            f"{_describe_differences(record.config, config, differing)}; pass the run's settings, "
            "or leave out --resume to start a new run"
        )
    return record


# --- cost and summary ---------------------------------------------------------------------------------------------


def seed_cost(ctx: RunContext, wall_seconds: float, fit_seconds: float, peak_memory: int | None) -> dict[str, Any]:
    """What one seed cost: wall time (this attempt's fit, prediction and evaluation, plus the training time restored
    from checkpoints), training time, epochs, training images per second, peak GPU memory (None on the CPU), device,
    and whether the model was compiled or run deterministically. A method without epochs reports its fit time."""
    cost = ctx.cost
    trained = cost.epochs > 0
    return {
        "wall_seconds": wall_seconds + cost.resumed_seconds,
        "train_seconds": cost.seconds if trained else fit_seconds,
        "epochs": cost.epochs if trained else None,
        "resumed_epochs": cost.resumed_epochs,
        "train_images": cost.images if trained else None,
        "images_per_second": cost.images / cost.seconds if trained and cost.seconds > 0 else None,
        "peak_gpu_memory_bytes": peak_memory,
        "device": str(ctx.device),
        "device_name": device_name(ctx.device),
        "compiled": cost.compiled,
        "compile_error": cost.compile_error,
        "deterministic": cost.deterministic,
    }


def total_cost(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over seeds: summed times, epochs and images, overall images per second, the largest peak memory."""

    def total(key: str) -> Any:
        values = [c[key] for c in per_seed if c.get(key) is not None]
        return sum(values) if values else None

    images, seconds = total("train_images"), sum(c["train_seconds"] for c in per_seed if c.get("train_images"))
    peaks = [c["peak_gpu_memory_bytes"] for c in per_seed if c.get("peak_gpu_memory_bytes") is not None]
    return {
        "wall_seconds": total("wall_seconds"),
        "train_seconds": total("train_seconds"),
        "epochs": total("epochs"),
        "train_images": images,
        "images_per_second": images / seconds if images and seconds > 0 else None,
        "peak_gpu_memory_bytes": max(peaks) if peaks else None,
        "device_names": sorted({c["device_name"] for c in per_seed if c.get("device_name")}),
    }


def _undefined_as_nan(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.json stores an undefined (NaN) metric as null; read it back as NaN so that the summary counts it."""
    targets = {
        name: {k: float("nan") if v is None else v for k, v in values.items()}
        for name, values in metrics["targets"].items()
    }
    return {**metrics, "targets": targets}


def rebuild_summary(writer: RunWriter, seeds_requested: int) -> dict[str, Any]:
    """Write summary.json from the finished seed folders 1..``seeds_requested`` (hold :func:`run_lock`)."""
    done = [k for k in completed_seeds(writer.run_dir) if k <= seeds_requested]
    metrics = [json.loads((writer.run_dir / f"seed-{k}" / "metrics.json").read_text(encoding="utf-8")) for k in done]
    summary = summarise([flatten_metrics(_undefined_as_nan(m)) for m in metrics])
    costs = [{"seed": k, **m["cost"]} for k, m in zip(done, metrics, strict=True) if isinstance(m.get("cost"), dict)]
    status = "complete" if set(range(1, seeds_requested + 1)) <= set(done) else "incomplete"
    if status == "complete" and every_metric_undefined(summary):
        status = "undefined"
    cost = {"seeds": costs, "total": total_cost(costs)}
    writer.write_summary(status, seeds_requested, done, metrics=summary, cost=cost)
    return {"status": status, "seeds_completed": done, "metrics": summary, "cost": cost}


def refresh_summary(run_dir: Path) -> dict[str, Any]:
    """Rebuild a run's summary.json from its finished seed folders (e.g. after a job was killed between publishing
    its seed and writing the summary); returns the new summary."""
    record = read_run(run_dir)
    if record.format_version < RESUMABLE_FORMAT:
        return record.summary
    with run_lock(run_dir):
        return rebuild_summary(RunWriter.reopen(run_dir, record.task, record.method), record.summary["seeds_requested"])


def _cost_metrics(prefix: str, cost: Mapping[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}.{k}": float(v)
        for k, v in cost.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v is not None
    }


# --- the run ------------------------------------------------------------------------------------------------------


def _open_parent_run(tracker: MlflowTracker, writer: RunWriter, config: Mapping[str, Any]) -> None:
    """Reuse the run's MLflow parent run (tracking.json) when it is in this store, else start one and record it."""
    known = read_tracking(writer.run_dir)
    if known and known.get("tracking_uri") == tracker.tracking_uri and tracker.reopen_run(known["parent_run_id"]):
        tracker.kill_stale_seed_runs(lambda seed: seed_busy(writer.run_dir, seed))
        return
    params = {"task": config["task"], "method": config["method"], "seeds": config["seeds"], **config["params"]}
    tags = {"artbench.run_id": writer.run_id, "artbench.task": config["task"], "artbench.method": config["method"]}
    tracker.start_run(config["method"], params, tags)
    if tracker.parent_id is not None and tracker.lost is None:
        write_tracking(
            writer.run_dir,
            {
                "tracking_uri": tracker.tracking_uri,
                "experiment_id": tracker.experiment_id,
                "parent_run_id": tracker.parent_id,
            },
        )


def create_run(out_dir: Path, config: Mapping[str, Any], tracking_uri: str | None) -> Path:
    """A new run folder with config.json, an empty summary and (with tracking) its MLflow parent run; sweeps make
    their runs here before their seed jobs start, so that the jobs only resume."""
    _check_out_dir(out_dir)
    writer = RunWriter(out_dir, config["task"], config["method"])
    with run_lock(writer.run_dir):
        rebuild_summary(writer, config["seeds"])
        writer.write_config(config)
        if tracking_uri:
            tracker = MlflowTracker(tracking_uri, config["task"], out_dir / "mlartifacts")
            _open_parent_run(tracker, writer, config)
            tracker.set_run_status("SCHEDULED", "incomplete")
    return writer.run_dir


def _close_parent_run(
    tracker: MlflowTracker, writer: RunWriter, state: Mapping[str, Any], ended: str | None, seeds: int
) -> None:
    """Set the parent run's status from the rebuilt summary: FINISHED when complete (or undefined); RUNNING while
    another process trains a seed; else KILLED/FAILED after an interruption or error here, SCHEDULED when seeds remain
    to train."""
    status = state["status"]
    others_busy = any(seed_busy(writer.run_dir, k) for k in range(1, seeds + 1) if k not in state["seeds_completed"])
    if status not in FINISHED and (others_busy or ended is None):
        tracker.set_run_status("RUNNING" if others_busy else "SCHEDULED", status)
        return
    means = {f"{k}.mean": v["mean"] for k, v in state["metrics"].items() if v["mean"] is not None}
    means.update(_cost_metrics("cost.total", state["cost"]["total"]))
    files = [p for p in (writer.run_dir / "config.json", writer.run_dir / ENVIRONMENT) if p.is_file()]
    tracker.end_run(
        means, [*files, writer.run_dir / "summary.json"], "FINISHED" if status in FINISHED else ended, status
    )


def _train_seed(
    seed: int,
    data: TaskData,
    task: TaskSpec,
    entry: MethodEntry,
    method: Method,
    writer: RunWriter,
    tracker: MlflowTracker | None,
    device: torch.device,
    amp: bool,
    warned: set[str],
    *,
    compile: bool = False,
    deterministic: bool = False,
) -> None:
    """Fit, evaluate and publish one seed (continuing from its checkpoints when there are any)."""
    tmp = writer.reset_seed_tmp(seed)
    if tracker:
        tracker.start_seed(seed, {"artbench.run_id": writer.run_id})
    ctx = RunContext(
        device,
        amp,
        tmp,
        tracker.log_epoch if tracker else None,
        description=f"seed {seed}",
        checkpoint_dir=tmp / CHECKPOINTS,
        compile=compile,
        deterministic=deterministic,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    seed_everything(seed)
    predictor = method.fit(data, seed, ctx)
    fit_seconds = time.perf_counter() - started
    metrics, predictions, scores = evaluate_predictions(
        data, predictor.predict(data, data.index("val")), predictor.predict(data, data.index("test"))
    )
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    cost = seed_cost(ctx, time.perf_counter() - started, fit_seconds, peak)
    metrics = {"seed": seed, **predictor.info, **metrics, "cost": cost}
    _warn_untested_classes(metrics, warned)
    title = f"{task.name} · {entry.name} · seed {seed}"
    seed_dir = writer.write_seed(seed, metrics, predictions, scores, _plot_seed(metrics, title))
    if tracker:
        flat = flatten_metrics(metrics)
        per_class = {
            f"{t}.class.{c}.{k}": v
            for t, m in metrics["targets"].items()
            for c, vals in m.get("per_class", {}).items()
            for k, v in vals.items()
            if k != "support" and isinstance(v, int | float)
        }
        labels = {f"cost.{k}": cost[k] for k in ("device", "device_name", "compiled", "deterministic")}
        if cost["compile_error"]:
            labels["cost.compile_error"] = cost["compile_error"]
        files = sorted(p for p in seed_dir.iterdir() if p.name != COMPLETE)
        tracker.end_seed({**flat, **per_class, **_cost_metrics("cost", cost)}, files, labels)


def _check_fingerprint(run_dir: Path, environment: Mapping[str, Any], data: TaskData) -> None:
    recorded = environment.get("dataset_fingerprint")
    if recorded and recorded != data.dataset.fingerprint:
        raise ArtbenchError(
            f"--resume: the data of run {str(run_dir)!r} changed since it started (dataset fingerprint "
            f"{recorded} → {data.dataset.fingerprint}); leave out --resume to start a new run"
        )


def run(
    task: TaskSpec,
    entry: MethodEntry,
    method: Method,
    *,
    seeds: int | None = None,
    out_dir: Path,
    device: torch.device,
    tracking_uri: str | None,
    amp: bool = True,
    compile: bool = False,
    deterministic: bool = False,
    resume: bool | Path = False,
    only_seeds: Sequence[int] | None = None,
    data: TaskData | None = None,
) -> RunOutcome:
    """Train and evaluate ``method`` on ``task`` for seeds 1..``seeds`` (default 1, or the resumed run's number);
    see the module docstring. ``resume`` is True (the latest matching run in ``out_dir``) or a run folder;
    ``only_seeds`` restricts the seeds trained by this call (a sweep job trains one); ``data`` reuses a prepared
    task. ``compile`` and ``deterministic`` are execution settings (:class:`~artbench.methods.RunContext`);
    ``deterministic`` sets process-wide switches (:func:`~artbench.core.device.configure_determinism`)."""
    configure_determinism(deterministic)
    _check_out_dir(out_dir)
    check_kinds(task, entry, method)
    if tracking_uri:
        check_local_store(tracking_uri)  # before the data is prepared
    ready = preflight.check([(task, method)], {preflight.task_key(task): data} if data else None)
    if tracking_uri:
        probe_tracking_uri(tracking_uri)
    previous = None
    settings = {"compile": compile, "deterministic": deterministic}
    if resume:
        config = run_config(task, entry, method, seeds or 1, device, amp, **settings)
        previous = find_run_to_resume(out_dir, config, None if resume is True else Path(resume))
        if previous is None:
            console.print(f"no run of {entry.name!r} on {task.name!r} to resume in {str(out_dir)!r}; starting one")
    if previous is not None:
        requested = previous.summary["seeds_requested"]
        if seeds is not None and seeds < requested:
            raise ArtbenchError(
                f"--resume: run {str(previous.run_dir)!r} asks for {requested} seeds; pass --seeds {requested} or more "
                "(or leave --seeds out)"
            )
        seeds = max(seeds or requested, requested)
    seeds = seeds or 1
    config = run_config(task, entry, method, seeds, device, amp, **settings)
    wanted = sorted(set(only_seeds)) if only_seeds is not None else list(range(1, seeds + 1))
    if not set(wanted) <= set(range(1, seeds + 1)):
        raise ArtbenchError(f"seeds {wanted} are not all within the run's seeds 1..{seeds}")
    target_names = [t.name for t in task.targets]
    if previous is not None:
        done = completed_seeds(previous.run_dir)
        if set(wanted) <= set(done) and seeds == previous.summary["seeds_requested"]:
            summary = refresh_summary(previous.run_dir)
            return RunOutcome(previous.run_dir, summary["status"], done, summary["metrics"], target_names)
    ready.fetch()
    data = ready.data_for(task)
    if previous is not None:
        _check_fingerprint(previous.run_dir, previous.environment, data)
    tracker = MlflowTracker(tracking_uri, task.name, out_dir / "mlartifacts") if tracking_uri else None
    if previous is not None:
        writer = RunWriter.reopen(previous.run_dir, task.name, entry.name)
    else:
        writer = RunWriter(out_dir, task.name, entry.name)
    run_dir = writer.run_dir
    trained: list[int] = []
    busy: list[int] = []
    ended: str | None = None
    warned: set[str] = set()
    state: dict[str, Any] = {"status": "incomplete", "seeds_completed": [], "metrics": {}}

    # From here on the run folder exists: whatever stops the run, it ends with a rebuilt summary.
    try:
        with run_lock(run_dir):
            state = rebuild_summary(writer, seeds)
            if previous is None or previous.config.get("seeds") != seeds:
                writer.write_config(config)
            if (run_dir / ENVIRONMENT).is_file():  # written meanwhile by another job of the run
                _check_fingerprint(run_dir, read_run(run_dir).environment, data)
            else:
                writer.write_environment(environment_record(device, data.dataset.fingerprint))
            if tracker:
                _open_parent_run(tracker, writer, config)
        for seed in wanted:
            lock = seed_lock(run_dir, seed)
            if not lock.acquire(blocking=False):
                busy.append(seed)
                console.print(f"seed {seed} of {str(run_dir)!r} is being trained by another process; skipped")
                continue
            try:
                if seed_complete(run_dir / f"seed-{seed}"):
                    continue
                aside = writer.set_aside_incomplete_seed(seed)
                if aside is not None:
                    console.print(f"[yellow]warning:[/] seed-{seed} was incomplete; moved to {aside.name}, training it")
                try:
                    _train_seed(seed, data, task, entry, method, writer, tracker, device, amp, warned, **settings)
                except BaseException as exc:
                    interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
                    ended = "KILLED" if interrupted else "FAILED"
                    writer.end_seed_attempt(seed)
                    if tracker:
                        tracker.fail_seed(ended)
                    if not interrupted:
                        record_failure(run_dir, seed, f"{type(exc).__name__}: {exc}")
                    raise
                clear_failure(run_dir, seed)
                trained.append(seed)
                with run_lock(run_dir):
                    state = rebuild_summary(writer, seeds)
            finally:
                lock.release()
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir, list(state["seeds_completed"])) from None
    finally:
        try:
            with run_lock(run_dir):
                state = rebuild_summary(writer, seeds)
                if tracker:
                    _close_parent_run(tracker, writer, state, ended, seeds)
        except KeyboardInterrupt:  # a second Ctrl-C while the summary or MLflow closes: the seeds are on disk
            raise RunInterrupted(run_dir, list(state["seeds_completed"])) from None
    lost = tracker.lost if tracker is not None else None
    return RunOutcome(
        run_dir, state["status"], state["seeds_completed"], state["metrics"], target_names, trained, busy, lost
    )


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
