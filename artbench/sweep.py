"""Sweeps (issue 14): a grid of tasks × methods × seeds, planned, shown, and trained where it is not finished.

One run folder per (task, method, resolved config), found again by the resume rules of :mod:`artbench.runner`
(the latest run with the same config), so the same sweep command continues where the last one stopped and does
nothing once every seed is finished. The planner creates missing run folders (config, summary, MLflow parent run)
before any job starts; each job then trains one seed of one run with ``runner.run(resume=run_dir,
only_seeds=[seed])``: it locks its seed, continues from the seed's checkpoint when there is one, publishes the seed
folder and rebuilds ``summary.json`` under the run's lock, so jobs of one run may train at once.

Executors: ``local`` runs one worker process per GPU (``--gpus 0,1``: ``CUDA_VISIBLE_DEVICES`` per worker), or one
at a time without GPUs; a failed seed is reported (``logs/seed-<k>.failed``) and the others go on. ``slurm`` submits
one job per seed through submitit, a job array per run, logs in ``<run>/logs/``; a job that SLURM pre-empts or that
reaches its time limit is requeued (submitit's checkpointing protocol) and continues from its last epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artbench import preflight
from artbench.core.device import configure_determinism, resolve_device
from artbench.core.errors import ArtbenchError
from artbench.core.params import load_config_file, parse_set_option, read_toml
from artbench.core.progress import console
from artbench.core.registry import load_plugin
from artbench.core.task import TaskSpec
from artbench.methods import Method
from artbench.results.store import (
    LOGS,
    checkpoint_epoch,
    completed_seeds,
    failures,
    find_runs,
    read_run,
    record_failure,
    seed_busy,
    write_json,
)
from artbench.runner import (
    check_kinds,
    create_run,
    find_matching_run,
    refresh_summary,
    resolve_method,
    run_config,
)

SWEEPS = "sweeps"
"""Folder of ``--out`` holding one ``<sweep-id>.json`` per distinct sweep command."""
SLURM_SIGNAL_DELAY_S = 120
"""SLURM sends the pre-emption/time-limit signal this long before the end, so that the job can requeue itself."""


def parse_seed_range(text: str, max_seeds: int) -> tuple[int, ...]:
    """``N`` → seeds 1..N; ``A-B`` (or ``A..B``) → seeds A..B. An empty range or one beyond ``max_seeds`` is a
    one-line error."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:(?:-|\.\.)\s*(\d+)\s*)?", text)
    if not match:
        raise ArtbenchError(f"--seeds {text!r}: expected N (seeds 1..N) or A-B (seeds A..B), e.g. --seeds 5")
    first, last = (1, int(match.group(1))) if match.group(2) is None else (int(match.group(1)), int(match.group(2)))
    if first < 1 or last < first:
        raise ArtbenchError(f"--seeds {text!r} is an empty seed range; seeds start at 1, e.g. --seeds 5 or 2-4")
    if last > max_seeds:
        raise ArtbenchError(f"--seeds {text!r}: at most {max_seeds} seeds")
    return tuple(range(first, last + 1))


@dataclass(frozen=True)
class SweepRequest:
    """What ``artbench sweep run`` was asked; paths are absolute so that jobs run anywhere."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    out_dir: Path
    set_options: tuple[str, ...] = ()
    config: str | None = None
    device: str = "auto"
    amp: bool = True
    tracking_uri: str | None = None
    plugins: tuple[str, ...] = ()
    compile: bool = False
    deterministic: bool = False

    @property
    def sweep_id(self) -> str:
        """Equal for equal commands (what the grid is, not how it is executed: compile and deterministic are not
        part of it)."""
        key = [self.tasks, self.methods, self.seeds, self.set_options, self.config, self.device, self.amp]
        return hashlib.sha1(json.dumps(key).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class SeedJob:
    """One seed of one run: what a worker process or a SLURM job executes (picklable)."""

    task: str
    method: str
    seed: int
    seeds: int
    run_dir: str
    out_dir: str
    set_options: tuple[str, ...]
    config: str | None
    device: str
    amp: bool
    tracking_uri: str | None
    plugins: tuple[str, ...]
    compile: bool = False
    deterministic: bool = False

    @property
    def label(self) -> str:
        return f"{Path(self.task).stem} · {self.method} · seed {self.seed}"

    @property
    def log_path(self) -> Path:
        return Path(self.run_dir) / LOGS / f"seed-{self.seed}.log"

    def __call__(self) -> str:
        """Run the seed (the submitit entry point); 'done', or 'busy' when another process trains it."""
        return run_seed_job(self)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's checkpointing protocol: on pre-emption or time-out, requeue the same seed; it continues from
        the checkpoint of its last finished epoch."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


_PREPARED: dict[str, Any] = {}
"""Task data prepared by this process, by task reference: a worker that trains several seeds prepares once."""


def _layers(set_options: Sequence[str], config: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    return (load_config_file(config) if config else {}), dict(parse_set_option(s) for s in set_options)


def _resolve(task: TaskSpec, method: str, set_options: Sequence[str], config: str | None) -> tuple[Any, Method]:
    """The method entry and its parameters for ``task``, resolved as ``artbench run`` resolves them, except that a
    ``--set``/``--config`` key applies to the methods that have it (a sweep may mix families; :func:`plan_sweep`
    rejects a key that no method of the sweep has)."""
    from artbench.methods import METHODS

    entry = METHODS.get(method)
    names = entry.parameter_names()
    file_layer, set_layer = ({k: v for k, v in layer.items() if k in names} for layer in _layers(set_options, config))
    chosen = resolve_method(entry, task, file_layer, set_layer, str(config))
    check_kinds(task, entry, chosen)
    return entry, chosen


def run_seed_job(job: SeedJob) -> str:
    """Train one seed of a sweep's run in this process (resume semantics: nothing happens to a finished seed)."""
    from artbench.data.task_data import prepare_task
    from artbench.runner import run
    from artbench.tasks import load_task

    configure_determinism(job.deterministic)  # before any CUDA work (cuBLAS reads its workspace setting once)
    for plugin in job.plugins:
        load_plugin(plugin)
    task = load_task(job.task)
    entry, chosen = _resolve(task, job.method, job.set_options, job.config)
    if job.task not in _PREPARED:
        _PREPARED[job.task] = prepare_task(task)
    outcome = run(
        task,
        entry,
        chosen,
        seeds=job.seeds,
        out_dir=Path(job.out_dir),
        device=resolve_device(job.device),
        amp=job.amp,
        compile=job.compile,
        deterministic=job.deterministic,
        tracking_uri=job.tracking_uri,
        resume=Path(job.run_dir),
        only_seeds=[job.seed],
        data=_PREPARED[job.task],
    )
    return "busy" if outcome.seeds_busy else "done"


# --- planning ---------------------------------------------------------------------------------------------------


@dataclass
class PlannedRun:
    task_ref: str
    task: str
    method: str
    config: dict[str, Any]
    seeds: tuple[int, ...]
    run_dir: Path | None = None
    done: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    seed_seconds: float | None = None
    """Mean wall time of one seed in earlier runs of this task and method on the same hardware (None: unknown)."""

    @property
    def todo(self) -> list[int]:
        return [k for k in self.seeds if k not in self.done and k not in self.busy]


@dataclass
class SweepPlan:
    request: SweepRequest
    runs: list[PlannedRun]
    hardware: str
    ready: preflight.Preflight
    """What the local checks found (:func:`artbench.preflight.check`); its ``fetch`` downloads missing weights."""

    @property
    def todo(self) -> int:
        return sum(len(r.todo) for r in self.runs)

    @property
    def estimate_seconds(self) -> float | None:
        """Estimated time of the seeds to train, one after the other (None when no run's time is known)."""
        known = [len(r.todo) * r.seed_seconds for r in self.runs if r.seed_seconds is not None and r.todo]
        return sum(known) if known else None


def seed_seconds_on(out_dir: Path, task: str, method: str, params: dict[str, Any], hardware: str) -> float | None:
    """Mean wall time per seed of earlier runs of ``task`` and ``method`` on ``hardware`` (a device name, or
    ``"GPU"`` for any CUDA device), preferring runs with the same parameters."""

    def on_hardware(cost: dict[str, Any]) -> bool:
        if hardware == "GPU":
            return str(cost.get("device", "")).startswith("cuda")
        return cost.get("device_name") == hardware

    same, other = [], []
    for record in find_runs(out_dir, task, method):
        costs = (record.summary.get("cost") or {}).get("seeds", [])
        seconds = [c["wall_seconds"] for c in costs if c.get("wall_seconds") is not None and on_hardware(c)]
        (same if record.config.get("params") == params else other).extend(seconds)
    chosen = same or other
    return sum(chosen) / len(chosen) if chosen else None


def plan_sweep(request: SweepRequest, hardware: str, queued: dict[str, set[int]] | None = None) -> SweepPlan:
    """Resolve every task and method and run the local checks of every pair first (:func:`artbench.preflight.check`:
    every problem at once, before anything is written or downloaded), then find each pair's run and its finished,
    running (or, by ``queued``: run folder → seeds, waiting in SLURM's queue) and failed seeds."""
    from artbench.methods import METHODS
    from artbench.tasks import load_task

    for plugin in request.plugins:
        load_plugin(plugin)
    tasks = [load_task(t) for t in request.tasks]
    known = set().union(*(METHODS.get(m).parameter_names() for m in request.methods))
    for source, layer in zip(("--config", "--set"), _layers(request.set_options, request.config), strict=True):
        stray = sorted(set(layer) - known)
        if stray:
            raise ArtbenchError(
                f"{source}: no method of the sweep has parameter(s) {', '.join(stray)}; "
                "see `artbench methods show NAME` for a method's parameters"
            )
    pairs = []
    for task_ref, task in zip(request.tasks, tasks, strict=True):
        for method in request.methods:
            entry, chosen = _resolve(task, method, request.set_options, request.config)
            pairs.append((task_ref, task, entry, chosen))
    ready = preflight.check([(task, chosen) for _, task, _, chosen in pairs])
    device = request.device if hardware == "GPU" else resolve_device(request.device)
    runs = []
    for task_ref, task, entry, chosen in pairs:
        config = run_config(
            task,
            entry,
            chosen,
            max(request.seeds),
            device,
            request.amp,
            compile=request.compile,
            deterministic=request.deterministic,
        )
        planned = PlannedRun(task_ref, task.name, entry.name, config, request.seeds)
        record = find_matching_run(request.out_dir, config)
        if record is not None:
            planned.run_dir = record.run_dir
            planned.config["seeds"] = max(planned.config["seeds"], record.summary["seeds_requested"])
            planned.done = completed_seeds(record.run_dir)
            waiting = (queued or {}).get(str(record.run_dir), set())
            planned.busy = [
                k for k in request.seeds if k not in planned.done and (k in waiting or seed_busy(record.run_dir, k))
            ]
            planned.failed = {k: v for k, v in failures(record.run_dir).items() if k not in planned.done}
        planned.seed_seconds = seed_seconds_on(request.out_dir, task.name, entry.name, config["params"], hardware)
        runs.append(planned)
    return SweepPlan(request, runs, hardware, ready)


def _sweep_file(out_dir: Path, sweep_id: str) -> Path:
    return out_dir / SWEEPS / f"{sweep_id}.json"


def save_sweep(plan: SweepPlan, executor: str, jobs: dict[str, dict[int, str]] | None = None) -> Path:
    """Record the sweep (its request, run folders and SLURM job ids by run and seed) for ``artbench sweep status``
    and for the next invocation, which leaves alone the seeds whose job is still queued."""
    request = plan.request
    path = _sweep_file(request.out_dir, request.sweep_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    known: dict[str, dict[str, str]] = {}
    if path.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            known = dict(json.loads(path.read_text(encoding="utf-8")).get("slurm_jobs", {}))
    for run_dir, by_seed in (jobs or {}).items():
        known[run_dir] = {**known.get(run_dir, {}), **{str(k): str(v) for k, v in by_seed.items()}}
    record = {
        "sweep_id": request.sweep_id,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "executor": executor,
        "request": {**dataclasses.asdict(request), "out_dir": str(request.out_dir)},
        "runs": [
            {"task": r.task, "method": r.method, "run_dir": str(r.run_dir), "seeds": list(r.seeds)}
            for r in plan.runs
            if r.run_dir is not None
        ],
        "slurm_jobs": known,
    }
    write_json(path, record)
    return path


WAITING_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                  "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT"}  # fmt: skip
"""squeue states of a job that will still train its seed."""


def queued_slurm_seeds(out_dir: Path, sweep_id: str) -> dict[str, set[int]]:
    """Run folder → seeds whose SLURM job, submitted by an earlier invocation of this sweep, is still in the queue
    (``squeue``), so that the same command does not submit them twice."""
    path = _sweep_file(out_dir, sweep_id)
    try:
        jobs = json.loads(path.read_text(encoding="utf-8")).get("slurm_jobs", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not jobs or shutil.which("squeue") is None:
        return {}
    import getpass

    try:
        listing = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %T", "-u", getpass.getuser()],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        console.print(f"[yellow]warning:[/] squeue failed ({type(exc).__name__}); queued jobs may be submitted again")
        return {}
    states = dict(line.split()[:2] for line in listing.splitlines() if len(line.split()) >= 2)
    return {
        run_dir: {int(seed) for seed, job_id in by_seed.items() if states.get(job_id) in WAITING_STATES}
        for run_dir, by_seed in jobs.items()
    }


def create_runs(plan: SweepPlan) -> None:
    """Make the run folders that do not exist yet (before any job starts)."""
    for planned in plan.runs:
        if planned.run_dir is None and planned.todo:
            planned.run_dir = create_run(plan.request.out_dir, planned.config, plan.request.tracking_uri)


def jobs_of(plan: SweepPlan) -> list[SeedJob]:
    request = plan.request
    return [
        SeedJob(
            task=r.task_ref,
            method=r.method,
            seed=seed,
            seeds=r.config["seeds"],
            run_dir=str(r.run_dir),
            out_dir=str(request.out_dir),
            set_options=request.set_options,
            config=request.config,
            device=request.device,
            amp=request.amp,
            tracking_uri=request.tracking_uri,
            plugins=request.plugins,
            compile=request.compile,
            deterministic=request.deterministic,
        )
        for r in plan.runs
        for seed in r.todo
    ]


# --- the local executor -----------------------------------------------------------------------------------------


@dataclass
class JobResult:
    job: SeedJob
    status: str
    """done, busy (another process trains it), failed or interrupted."""
    message: str = ""
    seconds: float = 0.0


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path`` (appended)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a", encoding="utf-8") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n")
        log.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _worker(worker: int, jobs: Any, results: Any) -> None:
    """A local worker: trains the seeds it takes from ``jobs`` one after the other, each logged to its run's
    ``logs/seed-<k>.log``; SIGTERM stops it as Ctrl-C does (the seed keeps its checkpoint)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    os.environ.setdefault("ARTBENCH_QUIET", "1")
    try:
        while (item := jobs.get()) is not None:
            index, job = item
            results.put(("started", worker, index))
            started = time.perf_counter()
            status, message = "done", ""
            with _output_to(job.log_path):
                try:
                    status = run_seed_job(job)
                except KeyboardInterrupt:
                    status, message = "interrupted", "interrupted"
                except BaseException as exc:
                    traceback.print_exc()
                    status, message = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
            results.put(("finished", worker, index, status, message, time.perf_counter() - started))
            if status == "interrupted":
                return
    except KeyboardInterrupt:
        return


def run_local(jobs: Sequence[SeedJob], gpus: Sequence[str] | None) -> list[JobResult]:
    """Train ``jobs`` in worker processes: one per GPU of ``gpus`` (each seeing only its GPU), else one. A worker
    that dies (out of memory, killed) fails its seed and is replaced; Ctrl-C or SIGTERM stops the workers, which keep
    their seeds' checkpoints."""
    context = multiprocessing.get_context("spawn")
    slots: list[str | None] = list(gpus) if gpus else [None]
    todo, results = context.Queue(), context.Queue()
    for item in enumerate(jobs):
        todo.put(item)
    for _ in slots:
        todo.put(None)
    workers: dict[int, Any] = {}
    slot_of: dict[int, str | None] = {}
    current: dict[int, int] = {}
    outcome: dict[int, JobResult] = {}
    started_at: dict[int, float] = {}

    def start(slot: str | None) -> None:
        worker = len(slot_of)
        slot_of[worker] = slot
        previous = os.environ.get("CUDA_VISIBLE_DEVICES")
        if slot is not None:  # a spawned interpreter reads its environment when it starts
            os.environ["CUDA_VISIBLE_DEVICES"] = slot
        try:
            process = context.Process(target=_worker, args=(worker, todo, results), name=f"artbench-worker-{worker}")
            process.start()
        finally:
            if slot is not None:
                if previous is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = previous
        workers[worker] = process

    for slot in slots:
        start(slot)
    try:
        while len(outcome) < len(jobs):
            try:
                message = results.get(timeout=1.0)
            except queue.Empty:  # every message sent is in: look for workers that died
                for worker, process in list(workers.items()):
                    if process.is_alive():
                        continue
                    del workers[worker]
                    index = current.pop(worker, None)
                    if index is not None:
                        job = jobs[index]
                        text = f"worker process died (exit code {process.exitcode})"
                        record_failure(Path(job.run_dir), job.seed, text)
                        outcome[index] = JobResult(job, "failed", text, time.perf_counter() - started_at[index])
                        _report(outcome[index])
                    if (index is not None or process.exitcode != 0) and len(outcome) < len(jobs):
                        start(slot_of[worker])
                if not workers and len(outcome) < len(jobs):
                    raise RuntimeError("every sweep worker exited with seeds left to train") from None
                continue
            if message[0] == "started":
                _, worker, index = message
                current[worker], started_at[index] = index, time.perf_counter()
                console.print(f"[dim]started[/] {jobs[index].label}", soft_wrap=True)
            else:
                _, worker, index, status, text, seconds = message
                current.pop(worker, None)
                outcome[index] = JobResult(jobs[index], status, text, seconds)
                _report(outcome[index])
                if status == "interrupted":
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        _stop(workers.values())
        raise
    for process in workers.values():
        process.join(timeout=60)
    return [outcome[i] for i in range(len(jobs))]


def _stop(processes: Any) -> None:
    """Stop worker processes as Ctrl-C would (SIGTERM), then kill those still alive after a minute."""
    processes = list(processes)
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _report(result: JobResult) -> None:
    job = result.job
    if result.status == "done":
        console.print(f"[green]finished[/] {job.label} ({result.seconds:.0f} s)", soft_wrap=True)
    elif result.status == "busy":
        console.print(f"[yellow]skipped[/] {job.label}: another process is training it", soft_wrap=True)
    elif result.status == "failed":
        console.print(f"[red]failed[/] {job.label}: {result.message} (log: {job.log_path})", soft_wrap=True)


# --- the SLURM executor (submitit) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int | None = None
    gpus: int | None = None
    options_file: Path | None = None
    cluster: str = "slurm"
    """submitit cluster: ``slurm``, or ``local``/``debug`` to run the same submission path on this machine."""


def require_submitit(cluster: str = "local") -> Any:
    """submitit, and for ``cluster`` slurm an sbatch to submit with; else a one-line error."""
    try:
        import submitit
    except ImportError:
        raise ArtbenchError(
            "the slurm executor needs submitit, which is not installed: pip install 'artbench[slurm]'"
        ) from None
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise ArtbenchError(
            "--executor slurm: no sbatch on this machine's PATH; run the sweep from a SLURM login node "
            "(or use --slurm-cluster local to try the SLURM path here)"
        )
    return submitit


def slurm_parameters(options: SlurmOptions, name: str) -> dict[str, Any]:
    """submitit ``AutoExecutor`` parameters: the command's options, then the options file (its top-level keys are
    AutoExecutor parameters such as ``cpus_per_task`` or ``slurm_account``; its ``[sbatch]`` table holds extra
    sbatch options, passed as ``slurm_additional_parameters``)."""
    parameters: dict[str, Any] = {"name": name, "slurm_signal_delay_s": SLURM_SIGNAL_DELAY_S}
    if options.options_file is not None:
        if not options.options_file.is_file():
            raise ArtbenchError(f"--slurm-options {str(options.options_file)!r} does not exist")
        extra = read_toml(options.options_file, "SLURM options file")
        sbatch = extra.pop("sbatch", {})
        if not isinstance(sbatch, dict):
            raise ArtbenchError(f"--slurm-options {str(options.options_file)!r}: [sbatch] must be a table")
        parameters.update(extra)
        if sbatch:
            parameters["slurm_additional_parameters"] = sbatch
    for key, value in (("slurm_partition", options.partition), ("timeout_min", options.time_min)):
        if value is not None:
            parameters[key] = value
    if options.gpus is not None:
        parameters["gpus_per_node"] = options.gpus
    return parameters


def submit_slurm(plan: SweepPlan, jobs: Sequence[SeedJob], options: SlurmOptions) -> dict[str, list[Any]]:
    """Submit one job per seed, a job array per run (logs in ``<run>/logs/``); returns the submitit jobs by run."""
    submitit = require_submitit(options.cluster)
    submitted: dict[str, list[Any]] = {}
    for planned in plan.runs:
        mine = [j for j in jobs if j.run_dir == str(planned.run_dir)]
        if not mine:
            continue
        executor = submitit.AutoExecutor(folder=Path(mine[0].run_dir) / LOGS / "%j", cluster=options.cluster)
        try:
            executor.update_parameters(**slurm_parameters(options, f"artbench-{planned.task}-{planned.method}"))
        except (NameError, AssertionError, TypeError, ValueError) as exc:
            raise ArtbenchError(f"SLURM options rejected by submitit: {str(exc).splitlines()[0]}") from None
        try:
            with executor.batch():
                handles = [executor.submit(job) for job in mine]
        except Exception as exc:
            raise ArtbenchError(f"SLURM submission failed ({type(exc).__name__}: {str(exc)[:300]})") from None
        submitted[str(planned.run_dir)] = handles
    return submitted


def wait_for(submitted: dict[str, list[Any]], jobs: Sequence[SeedJob]) -> list[JobResult]:
    """Wait for submitit jobs run on this machine (cluster local or debug) and report each."""
    results = []
    for run_dir, handles in submitted.items():
        mine = [j for j in jobs if j.run_dir == run_dir]
        for handle, job in zip(handles, mine, strict=True):
            started = time.perf_counter()
            try:
                status, message = handle.result(), ""
            except Exception as exc:
                lines = str(exc).strip().splitlines()
                status, message = "failed", lines[-1] if lines else type(exc).__name__
                record_failure(Path(run_dir), job.seed, message)
            result = JobResult(job, status, message, time.perf_counter() - started)
            _report(result)
            results.append(result)
    return results


# --- status -------------------------------------------------------------------------------------------------------


@dataclass
class RunStatus:
    task: str
    method: str
    run_dir: Path
    seeds: tuple[int, ...]
    done: list[int]
    training: dict[int, int | None]
    """Seed → its latest checkpointed epoch, for the seeds another process is training now."""
    failed: dict[int, str]
    status: str
    wall_seconds: float | None
    seed_seconds: float | None


def latest_sweep(out_dir: Path, sweep_id: str | None = None) -> dict[str, Any]:
    """The sweep record ``sweep_id``, else the one updated last, in ``out_dir``."""
    folder = Path(out_dir) / SWEEPS
    if sweep_id is not None:
        path = folder / f"{sweep_id}.json"
        if not path.is_file():
            raise ArtbenchError(
                f"no sweep {sweep_id!r} in {str(out_dir)!r}; `artbench sweep status` lists the last one"
            )
    else:
        found = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ArtbenchError(f"no sweep in {str(out_dir)!r}; start one with `artbench sweep run --out {out_dir}`")
        path = found[-1]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtbenchError(f"cannot read the sweep record {str(path)!r} ({type(exc).__name__})") from None


def sweep_status(record: dict[str, Any]) -> list[RunStatus]:
    """Progress of each run of a sweep; summaries are rebuilt from the finished seed folders on the way."""
    statuses = []
    for entry in record["runs"]:
        run_dir = Path(entry["run_dir"])
        if not (run_dir / "summary.json").is_file():
            continue
        summary = refresh_summary(run_dir)
        done = completed_seeds(run_dir)
        seeds = tuple(entry["seeds"])
        training = {k: checkpoint_epoch(run_dir, k) for k in seeds if k not in done and seed_busy(run_dir, k)}
        failed = {k: v for k, v in failures(run_dir).items() if k not in done and k not in training}
        total = (summary.get("cost") or {}).get("total", {})
        per_seed = [c["wall_seconds"] for c in (summary.get("cost") or {}).get("seeds", []) if c.get("wall_seconds")]
        statuses.append(
            RunStatus(
                entry["task"],
                entry["method"],
                run_dir,
                seeds,
                [k for k in done if k in seeds],
                training,
                failed,
                read_run(run_dir).status,
                total.get("wall_seconds"),
                sum(per_seed) / len(per_seed) if per_seed else None,
            )
        )
    return statuses
