"""`artbench sweep` (issue 14): the grid planned, shown and trained by local workers and by submitit jobs (its local
executor stands in for SLURM), a second invocation that does nothing, failed seeds that do not stop the others, a
pre-empted job that requeues and resumes from its checkpoint, and bad input that touches nothing."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import run_cli

pytest.importorskip("submitit")

METHODS = ["mtl", "colour_hist_logreg"]
FAST = ["--set", "max_epochs=1", "--device", "cpu"]


def _sweep(capsys, out: Path, task: Path, *extra: str, methods=METHODS, seeds: str = "2") -> tuple[int, str, str]:
    method_args = [a for m in methods for a in ("--method", m)]
    args = ["sweep", "run", "--task", str(task), *method_args, "--seeds", seeds, "--out", str(out), *FAST, *extra]
    return run_cli(capsys, *args)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time."""
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def _run_dir(out: Path, method: str) -> Path:
    (run_dir,) = (out / "tiny-synth" / method).iterdir()
    return run_dir


def _summary(out: Path, method: str) -> dict:
    return json.loads((_run_dir(out, method) / "summary.json").read_text())


@pytest.fixture(scope="module")
def local_sweep(tiny_task: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sweep")
    from artbench.cli import main

    with pytest.raises(SystemExit) as exc:
        method_args = [a for m in METHODS for a in ("--method", m)]
        main(["sweep", "run", "--task", str(tiny_task), *method_args, "--seeds", "2", "--out", str(out), *FAST])
    assert exc.value.code == 0
    return out


def test_the_local_executor_trains_every_seed_of_the_grid(local_sweep: Path) -> None:
    for method in METHODS:
        summary = _summary(local_sweep, method)
        assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2]
        assert [c["seed"] for c in summary["cost"]["seeds"]] == [1, 2]
        assert {p.name for p in (_run_dir(local_sweep, method) / "logs").iterdir()} == {"seed-1.log", "seed-2.log"}
    assert _summary(local_sweep, "mtl")["cost"]["total"]["epochs"] == 2
    colour = _summary(local_sweep, "colour_hist_logreg")["cost"]["seeds"][0]
    assert colour["epochs"] is None and colour["images_per_second"] is None and colour["train_seconds"] > 0
    config = json.loads((_run_dir(local_sweep, "mtl") / "config.json").read_text())
    assert config["params"]["max_epochs"] == 1  # --set reaches the methods that have the parameter
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{local_sweep / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny-synth").experiment_id])
    parents = {r.data.tags["mlflow.runName"]: r.info.status for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert parents == {"mtl": "FINISHED", "colour_hist_logreg": "FINISHED"}
    assert sorted(r.info.status for r in runs if "mlflow.parentRunId" in r.data.tags) == ["FINISHED"] * 4


def test_a_second_invocation_does_nothing(local_sweep: Path, tiny_task: Path, capsys) -> None:
    before = _snapshot(local_sweep)
    code, out, _ = _sweep(capsys, local_sweep, tiny_task)
    assert code == 0 and "nothing to do: every seed of this sweep is finished" in out
    assert _snapshot(local_sweep) == before


def test_the_plan_estimates_time_from_earlier_seeds_on_this_hardware(local_sweep: Path, tiny_task: Path, capsys):
    import torch

    from artbench.results.environment import device_name
    from artbench.sweep import seed_seconds_on

    summary = _summary(local_sweep, "mtl")
    params = json.loads((_run_dir(local_sweep, "mtl") / "config.json").read_text())["params"]
    mean = sum(c["wall_seconds"] for c in summary["cost"]["seeds"]) / 2
    here = device_name(torch.device("cpu"))
    assert seed_seconds_on(local_sweep, "tiny-synth", "mtl", params, here) == pytest.approx(mean)
    assert seed_seconds_on(local_sweep, "tiny-synth", "mtl", params, "another CPU") is None
    before = _snapshot(local_sweep)
    code, out, _ = _sweep(capsys, local_sweep, tiny_task, "--dry-run", seeds="3")  # one more seed: planned only
    assert code == 0 and _snapshot(local_sweep) == before
    row = next(line for line in out.splitlines() if "│ mtl" in line)
    assert "│ 1-2 " in row and "│ 3 " in row and not row.rstrip("│ ").endswith("?")


def test_sweep_status_shows_each_run(local_sweep: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "sweep", "status", "--out", str(local_sweep))
    assert code == 0
    rows = [line for line in out.splitlines() if "tiny-synth" in line]
    assert len(rows) == 2 and all("2/2" in row and "complete" in row for row in rows)
    code, _, err = run_cli(capsys, "sweep", "status", "--out", str(local_sweep / "nothing"))
    assert code == 2 and "no sweep in" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "no-such-task", "--method", "mtl"], "unknown task 'no-such-task'"),
        (["--method", "no-such-method"], "unknown method 'no-such-method'"),
        (["--method", "mtl", "--seeds", "0"], "--seeds '0' is an empty seed range"),
        (["--method", "mtl", "--seeds", "3-2"], "--seeds '3-2' is an empty seed range"),
        (["--method", "mtl", "--set", "nope=1"], "--set: no method of the sweep has parameter(s) nope"),
        (["--method", "mtl", "--slurm-partition", "gpu"], "--slurm-partition apply to --executor slurm"),
        (["--method", "mtl", "--executor", "pbs"], "unknown --executor 'pbs'"),
        (["--method", "mtl", "--gpus", "0"], "--gpus needs CUDA GPUs"),
    ],
)
def test_bad_sweep_input_is_a_one_line_error_that_touches_nothing(
    local_sweep: Path, tiny_task: Path, capsys, args: list[str], message: str
) -> None:
    if "--gpus" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    before = _snapshot(local_sweep)
    task = [] if "--task" in args else ["--task", str(tiny_task)]
    code, _, err = run_cli(capsys, "sweep", "run", *task, *args, "--out", str(local_sweep))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert _snapshot(local_sweep) == before


def test_slurm_options_without_submitit_are_a_one_line_error(
    local_sweep: Path, tiny_task: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if it were not installed
    before = _snapshot(local_sweep)
    for executor in (["--executor", "slurm"], ["--slurm-time", "60"]):
        code, _, err = _sweep(capsys, local_sweep, tiny_task, *executor)
        assert code == 2 and "needs submitit, which is not installed: pip install 'artbench[slurm]'" in err
        assert len(err.strip().splitlines()) == 1
    assert _snapshot(local_sweep) == before


def test_submitits_local_executor_runs_the_grid_as_slurm_jobs(tiny_task: Path, tmp_path: Path, capsys) -> None:
    slurm = ["--executor", "slurm", "--slurm-cluster", "local", "--slurm-time", "30", "--tracking-uri", "none"]
    code, out, err = _sweep(capsys, tmp_path, tiny_task, *slurm)
    assert code == 0, err
    for method in METHODS:
        summary = _summary(tmp_path, method)
        assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2]
        logs = _run_dir(tmp_path, method) / "logs"
        assert len(list(logs.glob("*/*_log.out"))) == 2  # one submitit job (and log folder) per seed
    record = json.loads(next((tmp_path / "sweeps").glob("*.json")).read_text())
    assert record["executor"] == "slurm" and sum(len(ids) for ids in record["slurm_jobs"].values()) == 4
    before = _snapshot(tmp_path)
    code, out, _ = _sweep(capsys, tmp_path, tiny_task, *slurm)
    assert code == 0 and "nothing to do" in out
    assert _snapshot(tmp_path) == before


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_preempted_slurm_job_requeues_and_resumes_from_its_checkpoint(tiny_task: Path, tmp_path: Path) -> None:
    """submitit's pre-emption signal (SIGUSR2) reaches the job after its first epoch: the job checkpoints (requeues
    the same seed), exits, is started again and continues from the epoch-1 checkpoint."""
    from artbench.sweep import SlurmOptions, SweepRequest, create_runs, jobs_of, plan_sweep, submit_slurm, wait_for

    request = SweepRequest(
        (str(tiny_task),), ("mtl",), (1,), tmp_path, ("max_epochs=2", "patience=2"), device="cpu", tracking_uri=None
    )
    plan = plan_sweep(request, "GPU")
    create_runs(plan)
    jobs = jobs_of(plan)
    submitted = submit_slurm(plan, jobs, SlurmOptions(time_min=30, cluster="local"))
    (handle,) = next(iter(submitted.values()))
    run_dir = Path(jobs[0].run_dir)
    deadline = time.monotonic() + 600
    while not list(run_dir.glob("seed-1.tmp/checkpoints/model-epoch-0001.pt")):
        assert time.monotonic() < deadline and not handle.done(), "the job ended before its first checkpoint"
        time.sleep(0.01)
    (task_pid,) = _children(handle._process.pid)  # the controller runs the job's task as its child
    os.kill(task_pid, signal.SIGUSR2)
    (result,) = wait_for(submitted, jobs)
    assert result.status == "done"
    metrics = json.loads((run_dir / "seed-1" / "metrics.json").read_text())
    assert metrics["cost"]["resumed_epochs"] == 1 and metrics["cost"]["epochs"] == 2
    log = next(run_dir.glob("logs/*/*_log.err")).read_text()
    assert "Caught signal SIGUSR2" in log and "this job is preempted" in log


FLAKY_PLUGIN = """
from dataclasses import dataclass

from artbench.methods import register_method
from artbench.methods.classical.colour_hist_logreg import ColourHistLogReg


@register_method("flaky_colour", description="colour_hist_logreg that fails for seed 1 (tests)")
@dataclass
class FlakyColour(ColourHistLogReg):
    def fit(self, data, seed, ctx):
        if seed == 1:
            raise RuntimeError("seed 1 always fails")
        return super().fit(data, seed, ctx)
"""


def test_a_failed_seed_is_reported_and_the_others_go_on(
    tiny_task: Path, tmp_path: Path, capsys, restore_registries
) -> None:
    plugin = tmp_path / "flaky.py"
    plugin.write_text(FLAKY_PLUGIN)
    out = tmp_path / "out"
    args = ["--task", str(tiny_task), "--method", "flaky_colour", "--seeds", "2", "--device", "cpu"]
    code, _, err = run_cli(capsys, "sweep", "run", *args, "--out", str(out), "--plugin", str(plugin))
    assert code == 1, err
    assert "failed tiny-synth · flaky_colour · seed 1: RuntimeError: seed 1 always fails" in err
    run_dir = next((out / "tiny-synth" / "flaky_colour").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "incomplete" and summary["seeds_completed"] == [2]
    assert (run_dir / "logs" / "seed-1.failed").read_text().startswith("RuntimeError: seed 1 always fails")
    assert "Traceback" in (run_dir / "logs" / "seed-1.log").read_text()
    code, out_text, _ = run_cli(capsys, "sweep", "status", "--out", str(out))
    assert code == 0 and "1/2" in out_text and "1: RuntimeError: seed 1 always fails" in out_text


def test_slurm_parameters_come_from_the_options_and_the_options_file(tmp_path: Path) -> None:
    from artbench.core.errors import ArtbenchError
    from artbench.sweep import SeedJob, SlurmOptions, slurm_parameters

    options_file = tmp_path / "cluster.toml"
    options_file.write_text('cpus_per_task = 8\nslurm_account = "lab"\n[sbatch]\nqos = "high"\nconstraint = "h100"\n')
    parameters = slurm_parameters(SlurmOptions("gpu", 240, 1, options_file), "artbench-t-m")
    assert parameters == {
        "name": "artbench-t-m", "slurm_signal_delay_s": 120, "cpus_per_task": 8, "slurm_account": "lab",
        "slurm_additional_parameters": {"qos": "high", "constraint": "h100"}, "slurm_partition": "gpu",
        "timeout_min": 240, "gpus_per_node": 1,
    }  # fmt: skip
    with pytest.raises(ArtbenchError, match=r"--slurm-options .*missing\.toml' does not exist"):
        slurm_parameters(SlurmOptions(options_file=tmp_path / "missing.toml"), "x")
    job = SeedJob("t", "mtl", 2, 3, "/runs/r", "/runs", (), None, "auto", True, None, ())
    requeued = job.checkpoint()
    assert requeued.function is job and requeued.args == () and requeued.kwargs == {}


def test_the_slurm_executor_needs_sbatch(tiny_task: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    code, _, err = _sweep(capsys, tmp_path / "out", tiny_task, "--executor", "slurm")
    assert code == 2 and "no sbatch on this machine's PATH" in err and not (tmp_path / "out").exists()


def test_seeds_whose_slurm_job_is_still_queued_are_not_submitted_again(tmp_path: Path, monkeypatch) -> None:
    from artbench.sweep import queued_slurm_seeds

    (tmp_path / "sweeps").mkdir()
    jobs = {"/out/t/m/run": {"1": "123_0", "2": "123_1", "3": "124"}}
    (tmp_path / "sweeps" / "abc.json").write_text(json.dumps({"slurm_jobs": jobs}))
    squeue = tmp_path / "bin" / "squeue"
    squeue.parent.mkdir()
    squeue.write_text("#!/bin/sh\nprintf '123_0 PENDING\\n123_1 COMPLETED\\n124 RUNNING\\n999 PENDING\\n'\n")
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{squeue.parent}{os.pathsep}{os.environ['PATH']}")
    assert queued_slurm_seeds(tmp_path, "abc") == {"/out/t/m/run": {1, 3}}
    assert queued_slurm_seeds(tmp_path, "other") == {}
