"""MLflow tracking: one experiment per task, one parent run per ``artbench run``, one nested run per seed.

Uses :class:`mlflow.MlflowClient` (no global fluent state). Metric keys are slugified to MLflow's allowed
characters and batches are chunked to its limits (1000 metrics, 100 params per call).

The store is checked once, when the tracker is made (an unreachable store is a user mistake). After that,
MLflow is a secondary copy of results that are always written to disk: the first failing call prints one
warning and stops all further logging, so a tracking server that goes away mid-run neither stops training
nor stalls it in MLflow's HTTP retries (lowered to :data:`HTTP_DEFAULTS` unless set in the environment).
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from artbench.core.errors import ArtbenchError
from artbench.core.progress import console

_KEY_CHARS = re.compile(r"[^\w.\- /]")
MAX_METRICS, MAX_PARAMS, MAX_PARAM_LENGTH = 1000, 100, 6000
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
"""Used for a tracking server unless set: MLflow's defaults (7 retries, 120 s) stall a run for minutes."""
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
"""Set on the experiments artbench creates: they hold model training, not GenAI traces (MLflow 3's UI kinds)."""
KIND_TAG = "artbench.kind"
"""Tag of the runs that are no training run: ``leaderboard`` (``artbench leaderboard build``), ``comparison``."""


def metric_key(*parts: str) -> str:
    """Join key parts with dots, replacing characters MLflow rejects (e.g. parentheses) by ``_``."""
    return ".".join(_KEY_CHARS.sub("_", p) for p in parts)[:250]


def unique_metric_keys(names: list[str]) -> dict[str, str]:
    """:func:`metric_key` of each name, with ``-2``, ``-3``, ... added where two names would share a key
    (classes ``日本 (Kyoto)`` and ``日本 [Kyoto]`` both become ``日本 _Kyoto_``)."""
    keys: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        key, n = metric_key(name), 1
        while key in used:
            n += 1
            key = f"{metric_key(name)[:240]}-{n}"
        keys[name] = key
        used.add(key)
    return keys


def default_tracking_uri(out_dir: Path) -> str:
    """SQLite store inside the output folder (MLflow 3's file store is deprecated)."""
    return f"sqlite:///{(out_dir / 'mlflow.db').resolve()}"


def probe_tracking_uri(uri: str, timeout: float = 10.0) -> None:
    """Fail fast when nothing answers at an HTTP tracking URI (MLflow itself would retry for minutes).

    Any HTTP answer, even an error status from a proxy, counts as reachable; MLflow's own check follows when the
    tracker is made. A plain path (MLflow 3's deprecated file store) is refused with the URI to use instead;
    other URIs (local databases) are not touched. Call it before slow work; :class:`MlflowTracker` does not.
    """
    if "://" not in uri and not uri.startswith("databricks"):
        store = Path(uri).absolute() / "mlflow.db"
        raise ArtbenchError(
            f"tracking URI {uri!r} is a plain path; MLflow 3 wants a database such as sqlite:///{store} "
            "or a server URL such as http://127.0.0.1:5000"
        )
    if not uri.startswith(("http:", "https:")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ArtbenchError(
            f"no MLflow server answers at {uri!r} ({reason}); start it, fix --tracking-uri / MLFLOW_TRACKING_URI, "
            "or pass --tracking-uri none"
        ) from None


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MlflowTracker:
    """Logs an artbench run to an MLflow tracking server or store."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None) -> None:
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "creating tables" chatter on stderr
        from mlflow.entities import Metric, Param

        self._Metric, self._Param = Metric, Param
        self.tracking_uri = tracking_uri
        server = tracking_uri.startswith(("http:", "https:"))
        if server:
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
        try:
            self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                # A local store keeps artifacts beside it; a server decides where its artifacts go.
                local = not (server or tracking_uri.startswith("databricks"))
                location = (artifact_root / experiment).resolve().as_uri() if artifact_root and local else None
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=location, tags=EXPERIMENT_TAGS
                )
            else:
                self.experiment_id = found.experiment_id
        except Exception as exc:
            raise ArtbenchError(
                f"cannot reach MLflow tracking at {tracking_uri!r} ({type(exc).__name__}: {str(exc)[:200]}); "
                "check --tracking-uri / MLFLOW_TRACKING_URI"
            ) from None
        self.parent_id: str | None = None
        self.seed_id: str | None = None
        self.lost: str | None = None  # why logging stopped, once a call has failed

    def _attempt(self, what: str, action: Callable[[], None]) -> None:
        """Run MLflow calls unless logging has stopped; on the first failure warn once and stop."""
        if self.lost is not None:
            return
        try:
            action()
        except Exception as exc:
            self.lost = f"{type(exc).__name__}: {str(exc)[:200]}"
            console.print(
                f"[yellow]warning:[/] MLflow logging stopped: could not {what} ({self.lost}); "
                "results are still written to disk",
                soft_wrap=True,
            )

    def start_run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        def create() -> None:
            self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags)).info.run_id
            self._log_params(self.parent_id, params)

        self._attempt("start the run", create)

    def reopen_run(self, run_id: str) -> bool:
        """Continue the parent run ``run_id`` of a resumed run (status back to RUNNING); False when the store has no
        such run in this experiment, so that the caller starts a new one."""
        try:
            run = self.client.get_run(run_id)
        except Exception:
            return False
        if run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            return False
        self.parent_id = run_id
        self._attempt("reopen the run", lambda: self.client.update_run(run_id, status="RUNNING"))
        return self.lost is None

    def kill_stale_seed_runs(self, in_progress: Callable[[int], bool]) -> None:
        """Mark the parent's nested seed runs left RUNNING by a killed process as KILLED; ``in_progress(seed)``
        spares the seeds that another process is training now."""

        def mark() -> None:
            stale = self.client.search_runs(
                [self.experiment_id],
                f"tags.`mlflow.parentRunId` = '{self.parent_id}' and attributes.status = 'RUNNING'",
            )
            for run in stale:
                seed = run.data.tags.get("artbench.seed", "")
                if not (seed.isdigit() and in_progress(int(seed))):
                    self.client.set_terminated(run.info.run_id, "KILLED")

        self._attempt("mark the seed runs of a killed process", mark)

    def set_run_status(self, status: str, outcome: str) -> None:
        """Set the parent run's MLflow ``status`` (RUNNING, SCHEDULED: seeds still to come) without closing it."""

        def update() -> None:
            self.client.set_tag(self.parent_id, "artbench.status", outcome)
            self.client.update_run(self.parent_id, status=status)

        self._attempt("update the run's status", update)

    def start_seed(self, seed: int, tags: Mapping[str, str]) -> None:
        def create() -> None:
            tags_ = {"mlflow.parentRunId": self.parent_id, "artbench.seed": str(seed), **tags}
            self.seed_id = self.client.create_run(self.experiment_id, run_name=f"seed-{seed}", tags=tags_).info.run_id

        self._attempt(f"start seed {seed}", create)

    def log_epoch(self, epoch: int, record: Mapping[str, float]) -> None:
        metrics = {k: v for k, v in record.items() if k != "epoch"}
        self._attempt(f"log epoch {epoch}", lambda: self._log_metrics(self.seed_id, metrics, step=epoch))

    def end_seed(
        self, metrics: Mapping[str, float], files: Iterable[Path], params: Mapping[str, Any] | None = None
    ) -> None:
        def finish() -> None:
            if params:
                self._log_params(self.seed_id, params)
            self._finish(self.seed_id, metrics, files, "FINISHED")

        self._attempt("log the seed's results", finish)
        self.seed_id = None

    def fail_seed(self, status: str) -> None:
        if self.seed_id is not None:
            self._attempt("mark the seed run as ended", lambda: self.client.set_terminated(self.seed_id, status))
        self.seed_id = None

    def end_run(self, summary: Mapping[str, float], files: Iterable[Path], status: str, outcome: str) -> None:
        """Close the parent run with MLflow ``status`` and tag ``artbench.status`` = ``outcome`` (summary.json's)."""

        def close() -> None:
            self.client.set_tag(self.parent_id, "artbench.status", outcome)
            self._finish(self.parent_id, summary, files, status)

        self._attempt("close the MLflow run", close)

    def log_finished_run(
        self,
        name: str,
        kind: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        files: Iterable[Path],
    ) -> str | None:
        """Log a whole run at once, tagged ``artbench.kind`` = ``kind``, beside the training runs of the experiment
        (leaderboards and comparisons are read from disk, so they have no seeds or epochs); its run id, or ``None``
        when logging stopped."""
        created: list[str] = []

        def log() -> None:
            run_id = self.client.create_run(
                self.experiment_id, run_name=name, tags={KIND_TAG: kind, **tags}
            ).info.run_id
            created.append(run_id)
            self._log_params(run_id, params)
            self._finish(run_id, metrics, files, "FINISHED")

        self._attempt(f"log the {kind} run", log)
        return created[0] if created and self.lost is None else None

    def _finish(self, run_id: str | None, metrics: Mapping[str, float], files: Iterable[Path], status: str) -> None:
        self._log_metrics(run_id, metrics)
        for path in files:
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status)

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [self._Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for chunk in _chunks(items, MAX_PARAMS):
            self.client.log_batch(run_id, params=chunk)

    def _log_metrics(self, run_id: str | None, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        keys = unique_metric_keys(list(metrics))
        items = [self._Metric(keys[k], float(v), now, step) for k, v in metrics.items() if v == v]
        for chunk in _chunks(items, MAX_METRICS):
            self.client.log_batch(run_id, metrics=chunk)


def experiment_ids(tracking_uri: str) -> dict[str, str]:
    """Name → id of the active experiments in a tracking store."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    return {e.name: e.experiment_id for e in client.search_experiments()}


def runs_page_url(base_url: str, experiment_id: str) -> str:
    """The MLflow UI page listing an experiment's runs (training runs with their nested seeds, leaderboards and
    comparisons); MLflow 3 otherwise lands on its GenAI overview, empty for training runs."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
