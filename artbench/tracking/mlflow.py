"""MLflow tracking: one experiment per task, one parent run per ``artbench run``, one nested run per seed.

Uses :class:`mlflow.MlflowClient` (no global fluent state). Metric keys are slugified to MLflow's allowed
characters and batches are chunked to its limits (1000 metrics, 100 params per call).

The store is checked once, when the tracker is made (an unreachable store is a user mistake). After that,
MLflow is a secondary copy of results that are always written to disk: the first failing call prints one
warning and stops all further logging, so a tracking server that goes away mid-run neither stops training
nor stalls it in MLflow's HTTP retries (lowered to :data:`HTTP_DEFAULTS` unless set in the environment).

A local SQLite store (issue 14, "Hardening") is checked for writability before any slow work
(:func:`probe_tracking_uri`), instead of MLflow's ~100 s of connection retries; one process at a time creates or
migrates it (:func:`store_lock`); a store copied or moved with its ``--out`` folder gets its artifact locations
rewritten into the new folder; runs left ``RUNNING`` by a process of this host that no longer exists are marked
``KILLED`` (:func:`close_dead_runs`). MLflow's, alembic's and SQLAlchemy's log output is silenced around every call
(:func:`quiet_mlflow`): artbench reports a failure in one line.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first runs into one fresh store may race
    fcntl = None  # type: ignore[assignment]

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
HOST_TAG, PID_TAG = "artbench.host", "artbench.pid"
"""Tags of the process that runs (or last reopened) a training run, so that a later process can tell a dead one."""
QUIET_LOGGERS = ("mlflow", "alembic", "sqlalchemy")
TELEMETRY_DEFAULTS = {"MLFLOW_DISABLE_TELEMETRY": "true"}
"""Set unless the environment sets them: MLflow 3 would otherwise write ``~/.config/mlflow/telemetry.json`` and send
usage events from every run (and from ``artbench ui``'s server, which inherits the environment)."""


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


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's, alembic's and SQLAlchemy's loggers within the block (a failing SQLite store otherwise prints
    about a hundred lines of retries and tracebacks before artbench's one-line message)."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _mlflow() -> Any:
    """The ``mlflow`` module, imported with :data:`TELEMETRY_DEFAULTS` in the environment (read at import)."""
    for name, value in TELEMETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import mlflow

    return mlflow


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` tracking URI (absolute), or ``None`` (another store, or in memory)."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).absolute()


def _unwritable(db: Path) -> str | None:
    """Why MLflow could not write the SQLite store ``db``, with the fix where there is one (None: it can). A missing
    file is created, with its folders, by MLflow; an existing one needs write access to itself and to its folder
    (SQLite's journal), and is tried with a write that is rolled back."""
    if db.is_symlink() and not db.exists():
        return f"{db} is a broken symbolic link (to {os.readlink(db)})"
    if not db.exists():
        existing = next(p for p in db.parents if p.exists())
        if not existing.is_dir():
            return f"{existing} is a file, not a folder"
        writable = os.access(existing, os.W_OK | os.X_OK)
        return None if writable else f"the folder {existing} is not writable (make it writable)"
    if not db.is_file():
        return f"{db} is not a file"
    if not os.access(db, os.R_OK | os.W_OK):
        return f"the file {db} is read-only (make it writable)"
    if not os.access(db.parent, os.W_OK | os.X_OK):
        return f"the folder {db.parent} is not writable (SQLite writes its journal there; make it writable)"
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=rw", uri=True, timeout=30, isolation_level=None)) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("CREATE TABLE artbench_write_probe (x)")
            finally:
                con.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):  # another process writes now: writable
            return None
        return f"{db}: {exc}"
    except sqlite3.DatabaseError as exc:
        return f"{db} is not an SQLite database ({exc})"
    return None


def check_local_store(uri: str) -> None:
    """A SQLite store that MLflow could not write is an error naming the path and the way out (milliseconds, where
    MLflow retries for about 100 s or fails at its first write); other URIs are not touched."""
    db = sqlite_file(uri)
    reason = _unwritable(db) if db is not None else None
    if reason:
        raise ArtbenchError(
            f"cannot write the MLflow store {str(db)!r}: {reason}; choose another --out or --tracking-uri, "
            "or pass --tracking-uri none"
        )


def probe_tracking_uri(uri: str, timeout: float = 10.0) -> None:
    """Fail fast when nothing answers at an HTTP tracking URI (MLflow itself would retry for minutes) or when a
    SQLite store cannot be written (MLflow would retry for about 100 s, or fail at the first write).

    Any HTTP answer, even an error status from a proxy, counts as reachable; MLflow's own check follows when the
    tracker is made. A plain path (MLflow 3's deprecated file store) is refused with the URI to use instead;
    other URIs (server databases) are not touched. Call it before slow work; :class:`MlflowTracker` does not.
    """
    if "://" not in uri and not uri.startswith("databricks"):
        store = Path(uri).absolute() / "mlflow.db"
        raise ArtbenchError(
            f"tracking URI {uri!r} is a plain path; MLflow 3 wants a database such as sqlite:///{store} "
            "or a server URL such as http://127.0.0.1:5000"
        )
    check_local_store(uri)
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


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock (``<store>.lock`` beside a SQLite store; nothing for other stores) while a process
    creates, migrates or sets up the store: two runs started together into a fresh ``--out`` otherwise race in
    MLflow's schema migration ("duplicate column name: step", "table alembic_version already exists")."""
    db, handle = sqlite_file(uri), None
    if db is not None and fcntl is not None:
        with suppress(OSError):  # a folder this process cannot write: nothing to create or migrate there
            db.parent.mkdir(parents=True, exist_ok=True)
            handle = open(db.with_name(f"{db.name}.lock"), "a")  # noqa: SIM115 (closed below)
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _file_path(uri: str) -> Path | None:
    parsed = urllib.parse.urlparse(uri)
    return Path(urllib.request.url2pathname(parsed.path)) if parsed.scheme == "file" else None


def _relocate(db: Path, experiment_id: str, old: str, new: str) -> None:
    """Point an experiment of the SQLite store ``db`` and its runs at artifact location ``new`` instead of ``old``
    (MLflow has no API for it: the rows are updated, in one transaction)."""
    with closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, int(experiment_id))
            )
            con.execute(
                "UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                (new, len(old) + 1, int(experiment_id), len(old) + 1, f"{old}/"),
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _process_dead(run: Any, host: str) -> bool:
    """Whether ``run`` was left by an artbench process of this host that no longer exists (a run of another host,
    or without the tags, cannot be judged: not dead)."""
    tags = run.data.tags
    pid = tags.get(PID_TAG, "")
    return tags.get(HOST_TAG) == host and pid.isdigit() and not _pid_alive(int(pid))


def _close_dead_runs(client: Any, experiment_ids: list[str]) -> int:
    """Mark KILLED the runs left RUNNING by an artbench process of this host that no longer exists (``kill -9``, a
    crash); runs of other hosts and of living processes are left alone. A parent run carries the pid of the last
    process that opened it, but the workers of a sweep train its seeds in several processes: it stays RUNNING while
    one of its seed runs is not dead. Returns how many were marked."""
    if not experiment_ids:
        return 0
    host = socket.gethostname()
    running = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=50000)
    dead = {r.info.run_id for r in running if _process_dead(r, host)}
    live_parents = {
        r.data.tags["mlflow.parentRunId"]
        for r in running
        if r.info.run_id not in dead and "mlflow.parentRunId" in r.data.tags
    }
    killed = dead - live_parents
    for run_id in killed:
        client.set_terminated(run_id, "KILLED")
    return len(killed)


def close_dead_runs(tracking_uri: str) -> int:
    """:func:`_close_dead_runs` over every experiment of a store (``artbench ui`` calls it before serving); a store
    this process cannot write (someone else's results, read-only) is left as it is: 0."""
    db = sqlite_file(tracking_uri)
    if db is not None and _unwritable(db):
        return 0
    with quiet_mlflow(), store_lock(tracking_uri):
        client = _mlflow().MlflowClient(tracking_uri=tracking_uri)
        return _close_dead_runs(client, [e.experiment_id for e in client.search_experiments()])


_NOISE = ("(Background on this error", "[SQL", "[parameters", "(raised as a result of Query-invoked autoflush")


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, without SQLAlchemy's SQL, parameters and help links, at most ~200 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith(_NOISE)]
    return f"{type(exc).__name__}: {' '.join(lines)[:200]}"


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class MlflowTracker:
    """Logs an artbench run to an MLflow tracking server or store."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None) -> None:
        mlflow = _mlflow()
        from mlflow.entities import Metric, Param

        self._Metric, self._Param = Metric, Param
        self.tracking_uri = tracking_uri
        server = tracking_uri.startswith(("http:", "https:"))
        if server:
            for name, value in HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
        # A local store keeps artifacts beside it; a server decides where its artifacts go.
        local = not (server or tracking_uri.startswith("databricks"))
        location = (artifact_root / experiment).resolve().as_uri() if artifact_root and local else None
        self.parent_id: str | None = None
        self.seed_id: str | None = None
        self.lost: str | None = None  # why logging stopped, once a call has failed
        with quiet_mlflow(), store_lock(tracking_uri):
            try:
                self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
                found = self.client.get_experiment_by_name(experiment)
                if found is None:
                    self.experiment_id = self.client.create_experiment(
                        experiment, artifact_location=location, tags=EXPERIMENT_TAGS
                    )
                else:
                    self.experiment_id = found.experiment_id
                    if location is not None:
                        self._follow_copied_store(found.artifact_location, location)
            except Exception as exc:
                raise ArtbenchError(
                    f"cannot reach MLflow tracking at {tracking_uri!r} ({_one_line(exc)}); "
                    "check --tracking-uri / MLFLOW_TRACKING_URI"
                ) from None
            self._attempt(
                "mark the runs of dead processes as KILLED", lambda: _close_dead_runs(self.client, [self.experiment_id])
            )

    def _follow_copied_store(self, current: str, wanted: str) -> None:
        """Move the experiment's artifact location to ``wanted`` when the store is the one beside the artifact root
        and was copied or moved there with its folder (MLflow keeps absolute locations, so a copied ``--out`` would
        otherwise send new artifacts to the original folder); a shared store elsewhere is left as it is."""
        db, old, new = sqlite_file(self.tracking_uri), _file_path(current), _file_path(wanted)
        if db is None or old is None or new is None or current == wanted:
            return
        if db.resolve().parent != new.parent.parent or (old.name, old.parent.name) != (new.name, new.parent.name):
            return
        _relocate(db, self.experiment_id, current.rstrip("/"), wanted)
        console.print(
            f"notice: the MLflow store {str(db)!r} was copied or moved from {str(old.parent.parent)!r}; experiment "
            f"{new.name!r} and its runs now keep their artifacts under {str(new)!r}",
            soft_wrap=True,
        )

    def _attempt(self, what: str, action: Callable[[], None]) -> None:
        """Run MLflow calls unless logging has stopped; on the first failure warn once and stop."""
        if self.lost is not None:
            return
        try:
            with quiet_mlflow():
                action()
        except Exception as exc:
            self.lost = _one_line(exc)
            console.print(
                f"[yellow]warning:[/] MLflow logging stopped: could not {what} ({self.lost}); "
                "results are still written to disk",
                soft_wrap=True,
            )

    def start_run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        def create() -> None:
            tags_ = {**tags, **_process_tags()}
            self.parent_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags_).info.run_id
            self._log_params(self.parent_id, params)

        self._attempt("start the run", create)

    def reopen_run(self, run_id: str) -> bool:
        """Continue the parent run ``run_id`` of a resumed run (status back to RUNNING); False when the store has no
        such run in this experiment, so that the caller starts a new one."""
        try:
            with quiet_mlflow():
                run = self.client.get_run(run_id)
        except Exception:
            return False
        if run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            return False
        self.parent_id = run_id

        def reopen() -> None:
            for key, value in _process_tags().items():
                self.client.set_tag(run_id, key, value)
            self.client.update_run(run_id, status="RUNNING")

        self._attempt("reopen the run", reopen)
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
            tags_ = {"mlflow.parentRunId": self.parent_id, "artbench.seed": str(seed), **tags, **_process_tags()}
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
    with quiet_mlflow(), store_lock(tracking_uri):
        client = _mlflow().MlflowClient(tracking_uri=tracking_uri)
        return {e.name: e.experiment_id for e in client.search_experiments()}


def runs_page_url(base_url: str, experiment_id: str) -> str:
    """The MLflow UI page listing an experiment's runs (training runs with their nested seeds, leaderboards and
    comparisons); MLflow 3 otherwise lands on its GenAI overview, empty for training runs."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
