"""``artbench run``: one method on one task over N seeds.

The split is fixed by the task (same for every seed); seed k seeds the model initialisation, batch order and
augmentation. Each finished seed is written atomically to ``seed-<k>/`` and logged to MLflow before the next
starts, so an interruption loses at most the seed in progress; ``summary.json`` then says ``incomplete``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from artbench.config import RunConfig
from artbench.data.task_data import PreparedTask, prepare_task
from artbench.environment import environment_record
from artbench.errors import ArtbenchError
from artbench.evaluation.aggregate import flatten_metrics, summarise
from artbench.evaluation.metrics import run_level, target_metrics
from artbench.evaluation.plots import plot_confusion
from artbench.methods.registry import MethodSpec
from artbench.models.backbones import build_backbone
from artbench.models.silknet import SilkNet
from artbench.tasks import TaskSpec
from artbench.tracking.mlflow_tracker import MlflowTracker, probe_tracking_uri
from artbench.training.device import seed_everything
from artbench.training.loop import fit, predict


def new_run_id() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def build_model(cfg: RunConfig, num_outputs: Sequence[int], device: torch.device) -> SilkNet:
    backbone = build_backbone(cfg.backbone, cfg.weights, cfg.finetune_blocks)
    model = SilkNet(backbone, num_outputs, cfg.joint_layers, cfg.target_layers, cfg.dropout).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train_and_predict(
    data: PreparedTask,
    method: MethodSpec,
    cfg: RunConfig,
    device: torch.device,
    seed: int,
    on_epoch: Any = None,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Train one seed with the method's strategy; return test-set class scores per target and fit info."""
    train, val, test = data.index("train"), data.index("val"), data.index("test")
    objective = method.objective(cfg)
    groups = (
        [list(range(len(data.targets)))] if method.strategy == "multitask" else [[m] for m in range(len(data.targets))]
    )
    scores: list[np.ndarray] = [np.empty(0)] * len(data.targets)
    info: dict[str, Any] = {"best_epoch": {}, "epochs": {}, "train_seconds": 0.0}
    for members in groups:
        seed_everything(seed)
        labels = data.labels[:, members]
        known = (labels >= 0).any(axis=1)
        name = "+".join(data.targets[m].name for m in members) if len(members) == 1 else "all"
        prefix = "" if method.strategy == "multitask" else f"{name}."
        model = build_model(cfg, [data.targets[m].num_outputs for m in members], device)
        result = fit(
            model,
            objective,
            data.cache,
            labels,
            train[known[train]],
            val[known[val]],
            cfg,
            device,
            seed=seed,
            description=f"seed {seed} · {name}",
            on_epoch=(lambda e, r, p=prefix: on_epoch(e, {p + k: v for k, v in r.items()})) if on_epoch else None,
        )
        for m, s in zip(members, predict(model, data.cache, test, cfg, device), strict=True):
            scores[m] = s
        info["best_epoch"][name], info["epochs"][name] = result.best_epoch, result.epochs_run
        info["train_seconds"] += result.seconds
    return scores, info


def evaluate_seed(data: PreparedTask, scores: list[np.ndarray]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics per target and overall, plus the predictions table, on the test split."""
    test = data.index("test")
    per_target, columns = {}, {"image": data.dataset.table["image"].to_numpy()[test]}
    for m, spec in enumerate(data.targets):
        y_true, y_pred = data.labels[test, m], scores[m].argmax(axis=1)
        per_target[spec.name] = target_metrics(y_true, y_pred, spec, data.underrepresented[spec.name])
        columns[f"{spec.name}.true"] = spec.decode(y_true)
        columns[f"{spec.name}.pred"] = spec.decode(y_pred)
    return {"targets": per_target, "overall": run_level(per_target)}, pd.DataFrame(columns)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False, default=str))
    os.replace(tmp, path)


def _jsonable(obj: Any) -> Any:
    """Replace NaN (undefined metrics) by None so that the JSON files stay standard."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


@dataclass
class RunOutcome:
    run_dir: Path
    status: str
    seeds_completed: list[int]
    summary: dict[str, dict[str, Any]]
    targets: list[str]


def safe_file_name(name: str) -> str:
    """``name`` with every character other than letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``."""
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") or "_"


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


def run(
    task: TaskSpec,
    method: MethodSpec,
    cfg: RunConfig,
    *,
    seeds: int,
    out_dir: Path,
    device: torch.device,
    tracking_uri: str | None,
) -> RunOutcome:
    """Train and evaluate ``method`` on ``task`` for seeds 1..``seeds``; see the module docstring."""
    _check_out_dir(out_dir)
    objective = method.objective(cfg)
    build_backbone(cfg.backbone, cfg.weights, cfg.finetune_blocks)  # bad backbone or weights fail before any work
    if tracking_uri:
        probe_tracking_uri(tracking_uri)
    data = prepare_task(task, cfg.image_size, cfg.colour_grid if objective.needs_colour else None)
    tracker = MlflowTracker(tracking_uri, task.name, out_dir / "mlartifacts") if tracking_uri else None
    run_id = new_run_id()
    run_dir = out_dir / task.name / method.name / run_id
    try:
        run_dir.mkdir(parents=True)
    except OSError as exc:
        raise ArtbenchError(f"cannot create the run folder {str(run_dir)!r} ({exc}); pass a writable --out") from None
    completed: list[int] = []
    flat_per_seed: list[dict[str, float]] = []
    status, ended = "incomplete", "KILLED"

    def write_summary() -> dict[str, dict[str, Any]]:
        summary = summarise(flat_per_seed)
        _write_json(
            run_dir / "summary.json",
            _jsonable(
                {
                    "task": task.name,
                    "method": method.name,
                    "run_id": run_id,
                    "status": status,
                    "seeds_requested": seeds,
                    "seeds_completed": completed,
                    "metrics": summary,
                }
            ),
        )
        return summary

    # From here on the run folder exists: whatever stops the run, it ends with a summary marked incomplete.
    try:
        write_summary()
        resolved = {
            "task": task.name,
            "method": method.name,
            "strategy": method.strategy,
            "seeds": seeds,
            "split": vars(task.split),
            "config": cfg.to_dict(),
            "task_file": task.source,
        }
        _write_json(run_dir / "config.json", resolved)
        _write_json(run_dir / "environment.json", environment_record(device, data.dataset.fingerprint))
        if tracker:
            tracker.start_run(
                method.name,
                {
                    "task": task.name,
                    "method": method.name,
                    "seeds": seeds,
                    "strategy": method.strategy,
                    **cfg.to_dict(),
                },
                {"artbench.run_id": run_id, "artbench.task": task.name, "artbench.method": method.name},
            )
        for seed in range(1, seeds + 1):
            if tracker:
                tracker.start_seed(seed, {"artbench.run_id": run_id})
            scores, info = train_and_predict(
                data, method, cfg, device, seed, on_epoch=tracker.log_epoch if tracker else None
            )
            metrics, predictions = evaluate_seed(data, scores)
            metrics = {"seed": seed, **info, **metrics}
            tmp_dir, seed_dir = run_dir / f"seed-{seed}.tmp", run_dir / f"seed-{seed}"
            tmp_dir.mkdir()
            _write_json(tmp_dir / "metrics.json", _jsonable(metrics))
            predictions.to_csv(tmp_dir / "predictions.csv", index=False)
            for name, m in metrics["targets"].items():
                plot_confusion(
                    m["confusion_matrix"]["matrix"],
                    m["confusion_matrix"]["labels"],
                    f"{task.name} · {method.name} · seed {seed} · {name}",
                    tmp_dir / f"confusion-{safe_file_name(name)}.png",
                )
            os.replace(tmp_dir, seed_dir)
            flat = flatten_metrics(metrics)
            if tracker:
                per_class = {
                    f"{t}.class.{c}.{k}": v
                    for t, m in metrics["targets"].items()
                    for c, vals in m["per_class"].items()
                    for k, v in vals.items()
                    if k != "support"
                }
                tracker.end_seed({**flat, **per_class}, sorted(seed_dir.iterdir()))
            completed.append(seed)
            flat_per_seed.append(flat)
            write_summary()
        status = "complete"
    except BaseException as exc:
        shutil.rmtree(run_dir / f"seed-{len(completed) + 1}.tmp", ignore_errors=True)
        ended = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        if tracker:
            tracker.fail_seed(ended)
        if isinstance(exc, KeyboardInterrupt):
            raise RunInterrupted(run_dir, list(completed)) from None
        raise
    finally:
        summary = write_summary()
        if tracker:
            means = {f"{k}.mean": v["mean"] for k, v in summary.items() if v["mean"] is not None}
            files = [p for p in (run_dir / "config.json", run_dir / "environment.json") if p.is_file()]
            try:
                tracker.end_run(
                    means, [*files, run_dir / "summary.json"], "FINISHED" if status == "complete" else ended, status
                )
            except KeyboardInterrupt:  # a second Ctrl-C while MLflow closes the run: the disk is complete
                raise RunInterrupted(run_dir, list(completed)) from None
    return RunOutcome(run_dir, status, completed, summary, [t.name for t in data.targets])


def summary_rows(
    summary: Mapping[str, Mapping[str, Any]], targets: Sequence[str], metrics: Sequence[str]
) -> list[list[str]]:
    """Rows ``[target, <metric>...]`` as ``mean ± std`` percentages (``mean`` for one seed), ``overall`` last."""

    def cell(key: str) -> str:
        entry = summary.get(key)
        if not entry or entry["mean"] is None:
            return "–"
        mean = f"{100 * entry['mean']:.1f}"
        return mean if entry["std"] is None else f"{mean} ± {100 * entry['std']:.1f}"

    return [[n, *(cell(f"{n}.{m}") for m in metrics)] for n in [*targets, "overall"]]
