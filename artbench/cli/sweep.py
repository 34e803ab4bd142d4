"""``artbench sweep run`` and ``artbench sweep status``: grids of tasks × methods × seeds, on local GPUs or SLURM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from artbench.cli.common import OutOpt, PluginOpt, load_plugins, out, split_names
from artbench.cli.run import CompileOpt, DeterministicOpt
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console as err_console

if TYPE_CHECKING:
    from artbench.sweep import RunStatus, SeedJob, SweepPlan

SWEEP_EPILOG = (
    "Examples:\n\n"
    "  artbench sweep run --task silknow-synth --method mtl --method mtl_fo_rall --seeds 5 --gpus 0,1\n\n"
    "  artbench sweep run --task silknow --method mtl_fo_rall --seeds 5 --executor slurm --slurm-partition gpu "
    "--slurm-time 240 --slurm-gpus 1 --slurm-options cluster.toml\n\n"
    "  artbench sweep status"
)

sweep_app = typer.Typer(
    help="Plan and train grids of tasks × methods × seeds (local GPUs or SLURM); the same command continues a sweep.",
    no_args_is_help=True,
)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _seeds(seeds: list[int] | tuple[int, ...]) -> str:
    """``1-3, 5`` for [1, 2, 3, 5]."""
    parts, run = [], []
    for seed in sorted(seeds):
        if run and seed != run[-1] + 1:
            parts.append(run)
            run = []
        run.append(seed)
    if run:
        parts.append(run)
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in parts) or "–"


def _absolute(ref: str) -> str:
    """A task reference as a job elsewhere can load it: a .toml path made absolute, a name unchanged."""
    return str(Path(ref).resolve()) if ref.endswith(".toml") else ref


def _plugin_ref(ref: str) -> str:
    return str(Path(ref).resolve()) if ref.endswith(".py") else ref


def _parse_gpus(text: str) -> list[str]:
    import torch

    gpus = split_names(text)
    if not gpus or not all(g.isdigit() for g in gpus):
        raise ArtbenchError(f"--gpus {text!r}: expected GPU indices separated by commas, e.g. --gpus 0,1")
    if len(set(gpus)) != len(gpus):
        raise ArtbenchError(f"--gpus {text!r} names a GPU twice")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        raise ArtbenchError("--gpus needs CUDA GPUs and none is visible; leave out --gpus to train on the CPU")
    unknown = [g for g in gpus if int(g) >= visible]
    if unknown:
        raise ArtbenchError(f"--gpus {text!r}: only {visible} CUDA GPU(s) are visible (0..{visible - 1})")
    return gpus


@sweep_app.command("run", epilog=SWEEP_EPILOG)
def sweep_run(
    task: Annotated[list[str], typer.Option("--task", help="Task name or .toml path (repeatable).")],
    method: Annotated[list[str], typer.Option("--method", help="Method name (repeatable).")],
    seeds: Annotated[str, typer.Option(help="N (seeds 1..N) or A-B (seeds A..B).")] = "1",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a method parameter: key=value.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Recipe file whose \\[config] table sets method parameters.")
    ] = None,
    executor: Annotated[str, typer.Option(help="local (worker processes here) or slurm (submitit jobs).")] = "local",
    gpus: Annotated[
        str | None, typer.Option(help="local: one worker per GPU, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES).")
    ] = None,
    out_dir: OutOpt = Path("artbench-out"),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (inside each job).")] = "auto",
    amp: Annotated[bool, typer.Option(help="bf16 autocast on CUDA (no effect on the CPU).")] = True,
    compile: CompileOpt = False,
    deterministic: DeterministicOpt = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI ('none' disables tracking); default as for `artbench run`."),
    ] = None,
    slurm_partition: Annotated[str | None, typer.Option(help="slurm: the partition.")] = None,
    slurm_time: Annotated[int | None, typer.Option(min=1, help="slurm: time limit per job in minutes.")] = None,
    slurm_gpus: Annotated[int | None, typer.Option(min=0, help="slurm: GPUs per job.")] = None,
    slurm_options: Annotated[
        Path | None,
        typer.Option(
            help="slurm: TOML file of submitit parameters (cpus_per_task, slurm_account, ...) and an "
            "\\[sbatch] table of extra sbatch options."
        ),
    ] = None,
    slurm_cluster: Annotated[
        str, typer.Option(help="slurm: submitit cluster; local or debug run the SLURM path on this machine.")
    ] = "slurm",
    dry_run: Annotated[bool, typer.Option(help="Show the plan and stop.")] = False,
    plugin: PluginOpt = None,
) -> None:
    """Train every seed of the grid TASKS × METHODS that is not finished yet, and show the plan first.

    Runs are found again by task, method and resolved settings, so the same command continues an interrupted sweep
    (from each seed's last epoch) and does nothing once all is finished. A failed seed is reported; the others go on.
    """
    from artbench.cli.common import sigterm_as_interrupt
    from artbench.cli.run import MAX_SEEDS
    from artbench.results.environment import device_name
    from artbench.sweep import (
        SlurmOptions,
        SweepRequest,
        create_runs,
        jobs_of,
        latest_sweep,
        parse_seed_range,
        plan_sweep,
        queued_slurm_seeds,
        require_submitit,
        run_local,
        save_sweep,
        submit_slurm,
        sweep_status,
        wait_for,
    )
    from artbench.tracking.mlflow import check_local_store, default_tracking_uri, probe_tracking_uri

    slurm_given = [
        name
        for name, value in (
            ("--slurm-partition", slurm_partition),
            ("--slurm-time", slurm_time),
            ("--slurm-gpus", slurm_gpus),
            ("--slurm-options", slurm_options),
        )
        if value is not None
    ] + (["--slurm-cluster"] if slurm_cluster != "slurm" else [])
    if executor not in ("local", "slurm"):
        raise ArtbenchError(f"unknown --executor {executor!r}; valid choices: local, slurm")
    if slurm_given or executor == "slurm":
        require_submitit()
    if slurm_given and executor != "slurm":
        raise ArtbenchError(f"{', '.join(slurm_given)} apply to --executor slurm; add it or leave them out")
    if slurm_cluster not in ("slurm", "local", "debug"):
        raise ArtbenchError(f"unknown --slurm-cluster {slurm_cluster!r}; valid choices: slurm, local, debug")
    if executor == "slurm":
        require_submitit(slurm_cluster)
    if gpus is not None and executor != "local":
        raise ArtbenchError("--gpus applies to --executor local; on SLURM use --slurm-gpus")
    seed_range = parse_seed_range(seeds, MAX_SEEDS)
    load_plugins(plugin)
    gpu_list = _parse_gpus(gpus) if gpus is not None else None
    if gpu_list and device == "cpu":
        raise ArtbenchError("--gpus with --device cpu: leave out one of them")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(out_dir)
    request = SweepRequest(
        tasks=tuple(_absolute(t) for t in task),
        methods=tuple(method),
        seeds=seed_range,
        out_dir=out_dir.resolve(),
        set_options=tuple(set_ or ()),
        config=str(config.resolve()) if config else None,
        device="cuda" if gpu_list and device == "auto" else device,
        amp=amp,
        tracking_uri=None if uri == "none" else uri,
        plugins=tuple(_plugin_ref(p) for p in plugin or ()),
        compile=compile,
        deterministic=deterministic,
    )
    if executor == "slurm":
        hardware = "GPU"
    else:
        import torch

        from artbench.core.device import resolve_device

        hardware = device_name(torch.device("cuda", 0) if gpu_list else resolve_device(request.device))
    if request.tracking_uri and not dry_run:
        check_local_store(request.tracking_uri)  # before plan_sweep prepares the data
    queued = queued_slurm_seeds(request.out_dir, request.sweep_id) if executor == "slurm" else {}
    plan = plan_sweep(request, hardware, queued)
    _show_plan(plan, executor, gpu_list)
    if plan.todo == 0:
        busy = sum(len(r.busy) for r in plan.runs)
        note = f"; {busy} seed(s) are being trained by other processes" if busy else ""
        out.print(f"nothing to do: every seed of this sweep is finished{note}")
        return
    if dry_run:
        return
    if request.tracking_uri:
        probe_tracking_uri(request.tracking_uri)
    plan.ready.fetch()
    options = SlurmOptions(slurm_partition, slurm_time, slurm_gpus, slurm_options, slurm_cluster)
    try:
        with sigterm_as_interrupt():
            create_runs(plan)
            jobs = jobs_of(plan)
            save_sweep(plan, executor)
            if executor == "local":
                results = run_local(jobs, gpu_list)
            else:
                submitted = submit_slurm(plan, jobs, options)
                ids = {
                    run: {job.seed: handle.job_id for job, handle in zip(_of(jobs, run), handles, strict=True)}
                    for run, handles in submitted.items()
                }
                save_sweep(plan, executor, ids)
                if slurm_cluster == "slurm":
                    count = sum(len(v) for v in ids.values())
                    out.print(
                        f"submitted {count} job(s) in {len(ids)} array(s); "
                        f"follow them with: artbench sweep status --out {out_dir}"
                    )
                    return
                results = wait_for(submitted, jobs)
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]: finished seeds are kept and seeds in progress keep their checkpoints; "
            "the same command continues the sweep",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    statuses = sweep_status(latest_sweep(request.out_dir, request.sweep_id))
    _show_status(statuses)
    failed = [r for r in results if r.status == "failed"]
    unfinished = sum(len(set(s.seeds) - set(s.done)) for s in statuses)
    if failed and unfinished:
        out.print(f"{len(failed)} seed(s) failed (see the logs above); the same command retries them")
        raise typer.Exit(1)


@sweep_app.command("status")
def sweep_status_command(
    out_dir: OutOpt = Path("artbench-out"),
    sweep: Annotated[str | None, typer.Option(help="Sweep id (default: the last sweep run in --out).")] = None,
) -> None:
    """Progress of a sweep per run: finished seeds, seeds in training (with their epoch), failures, time."""
    from artbench.sweep import latest_sweep, sweep_status

    record = latest_sweep(out_dir, sweep)
    out.print(f"sweep {record['sweep_id']} ({record['executor']}), updated {record['updated']}")
    _show_status(sweep_status(record))


def _of(jobs: list[SeedJob], run_dir: str) -> list[SeedJob]:
    """The jobs of one run, in submission order."""
    return [j for j in jobs if j.run_dir == run_dir]


def _show_plan(plan: SweepPlan, executor: str, gpus: list[str] | None) -> None:
    where = f"{len(gpus)} GPU worker(s)" if gpus else ("SLURM" if executor == "slurm" else "one worker")
    table = Table(
        title=f"sweep {plan.request.sweep_id} · {len(plan.runs)} run(s) · seeds {_seeds(plan.request.seeds)} · "
        f"{executor} ({where}) · {plan.hardware}",
        caption="estimates: mean seed time of earlier runs of the task and method on this hardware",
    )
    for column in ("task", "method", "run", "finished", "to train", "running or queued", "est. time"):
        table.add_column(column, justify="right" if column == "est. time" else "left")
    for r in plan.runs:
        estimate = r.seed_seconds * len(r.todo) if r.seed_seconds is not None else None
        table.add_row(
            r.task,
            r.method,
            r.run_dir.name if r.run_dir else "(new)",
            _seeds([k for k in r.seeds if k in r.done]),
            _seeds(r.todo),
            _seeds(r.busy),
            _duration(estimate) if r.todo else "–",
        )
    table.add_section()
    total = plan.estimate_seconds
    table.add_row("total", "", "", "", str(plan.todo), "", _duration(total) if plan.todo else "–", style="bold")
    out.print(table)


def _show_status(statuses: list[RunStatus]) -> None:
    table = Table(caption="time: wall time of the finished seeds; left: their mean time × seeds not finished")
    for column in ("task", "method", "run", "finished", "training (epoch)", "failed", "status", "time", "left"):
        table.add_column(column, justify="right" if column in ("time", "left") else "left")
    for s in statuses:
        left = [k for k in s.seeds if k not in s.done]
        training = ", ".join(f"{k} ({e if e is not None else '–'})" for k, e in s.training.items()) or "–"
        failed = ", ".join(f"{k}: {m}" for k, m in s.failed.items()) or "–"
        table.add_row(
            s.task,
            s.method,
            s.run_dir.name,
            f"{len(s.done)}/{len(s.seeds)}",
            training,
            failed,
            s.status,
            _duration(s.wall_seconds),
            _duration(s.seed_seconds * len(left))
            if left and s.seed_seconds is not None
            else ("–" if not left else "?"),
        )
    out.print(table)
