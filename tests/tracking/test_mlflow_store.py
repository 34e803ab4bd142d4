"""The local SQLite store under faults (issue 14, "Hardening"): unwritable, read-only, created by two processes at
once, copied with its --out folder, and left with RUNNING runs by a killed process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

import artbench.preflight
from artbench.tracking.mlflow import MlflowTracker, close_dead_runs
from tests.conftest import run_cli, run_quick


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable, for root too (``chattr +i``; ``chmod`` for other users); skip where that fails."""
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
            pytest.skip("root needs chattr +i to make a file read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)


@pytest.fixture
def no_data_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    def prepare(*args: object, **kwargs: object) -> None:
        raise AssertionError("the task's data was prepared before the store was checked")

    monkeypatch.setattr(artbench.preflight, "prepare_task", prepare)


def _run_colour(capsys: pytest.CaptureFixture[str], task: Path, out: Path) -> tuple[int, str, str]:
    """The quickest run: colour histograms + logistic regression, one seed."""
    return run_cli(capsys, "run", str(task), "colour_hist_logreg", "--out", str(out), "--device", "cpu")


def _store(path: Path) -> str:
    return f"sqlite:///{path}"


def _runs(db: Path, experiment: str = "tiny-synth") -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(tracking_uri=_store(db))
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def test_unwritable_store_folder_is_a_one_line_error_before_data_preparation(
    tiny_task: Path, tmp_path: Path, capsys, no_data_preparation: None
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        started = time.monotonic()
        code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--tracking-uri", _store(folder / "m.db"))
        seconds = time.monotonic() - started
    assert code == 2
    assert err.startswith("error: cannot write the MLflow store") and err.count("\n") == 1
    assert f"the folder {folder} is not writable (make it writable)" in err and "--tracking-uri none" in err
    assert seconds < 10  # MLflow alone retried for about 100 s
    assert not (folder / "m.db").exists()


def test_a_sweep_into_a_read_only_store_is_a_one_line_error_before_data_preparation(
    tiny_task: Path, tmp_path: Path, capsys, no_data_preparation: None
) -> None:
    db = tmp_path / "mlflow.db"
    MlflowTracker(_store(db), "tiny-synth")
    with read_only(db):
        args = ["--task", str(tiny_task), "--method", "mtl", "--seeds", "1", "--out", str(tmp_path), "--device", "cpu"]
        code, _, err = run_cli(capsys, "sweep", "run", *args)
    assert code == 2 and err.startswith(f"error: cannot write the MLflow store '{db}'") and err.count("\n") == 1
    assert not (tmp_path / "tiny-synth").exists()


def test_read_only_store_file_is_a_one_line_error_before_data_preparation(
    tiny_task: Path, tmp_path: Path, capsys, no_data_preparation: None
) -> None:
    db = tmp_path / "mlflow.db"
    MlflowTracker(_store(db), "tiny-synth")
    with read_only(db):
        code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path)
    assert code == 2
    assert err == (
        f"error: cannot write the MLflow store '{db}': the file {db} is read-only (make it writable); choose "
        "another --out or --tracking-uri, or pass --tracking-uri none\n"
    )
    assert not (tmp_path / "tiny-synth").exists()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda db: db.write_bytes(b"random bytes, not SQLite" * 100), "is not an SQLite database"),
        (lambda db: db.mkdir(), "is not a file"),
        (lambda db: db.symlink_to(db.parent / "gone" / "x.db"), "is a broken symbolic link"),
    ],
)
def test_a_store_mlflow_cannot_open_is_a_one_line_error(
    tiny_task: Path, tmp_path: Path, capsys, no_data_preparation: None, make, reason: str
) -> None:
    db = tmp_path / "mlflow.db"
    make(db)
    started = time.monotonic()
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--tracking-uri", _store(db))
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot write the MLflow store '{db}': {db} {reason}" in err
    assert time.monotonic() - started < 10


def test_a_store_that_turns_read_only_mid_run_warns_in_one_line(tmp_path: Path, capfd) -> None:
    db = tmp_path / "mlflow.db"
    tracker = MlflowTracker(_store(db), "tiny-synth")
    capfd.readouterr()
    with read_only(db):
        tracker.start_run("mtl", {"lr": 0.1}, {})
        tracker.start_seed(1, {})
    err = capfd.readouterr().err
    assert err.startswith("warning: MLflow logging stopped: could not start the run (")
    assert err.endswith("results are still written to disk\n")
    assert err.count("\n") == 1
    assert "Traceback" not in err and "mlflow.store" not in err and "[SQL" not in err
    assert tracker.lost is not None


STARTER = """
import sys, time
from pathlib import Path
from artbench.tracking.mlflow import MlflowTracker
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
MlflowTracker("sqlite:///" + sys.argv[1], "tiny-synth", Path(sys.argv[1]).parent / "mlartifacts")
"""


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_processes_create_a_fresh_store_together(tmp_path: Path, attempt: int) -> None:
    db = tmp_path / "out" / "mlflow.db"
    start = str(time.time() + 6)  # both have imported MLflow by then and start at the same moment
    env = {**os.environ, "PYTHONPATH": str(Path(artbench.preflight.__file__).parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", STARTER, str(db), start], stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    client = mlflow.MlflowClient(tracking_uri=_store(db))
    assert [e.name for e in client.search_experiments()].count("tiny-synth") == 1


def test_a_copied_out_folder_keeps_new_artifacts_in_the_copy(tiny_task: Path, tmp_path: Path, capsys) -> None:
    first, copy = tmp_path / "out", tmp_path / "copy"
    assert _run_colour(capsys, tiny_task, first)[0] == 0
    shutil.copytree(first, copy)
    before = sorted(p.relative_to(first) for p in first.rglob("*"))
    code, _, err = _run_colour(capsys, tiny_task, copy)
    assert code == 0, err
    assert f"was copied or moved from '{first}'" in err
    assert sorted(p.relative_to(first) for p in first.rglob("*")) == before  # nothing new in the original
    client = mlflow.MlflowClient(tracking_uri=_store(copy / "mlflow.db"))
    experiment = client.get_experiment_by_name("tiny-synth")
    assert experiment.artifact_location == (copy / "mlartifacts" / "tiny-synth").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4  # parent and seed of the original run, and of the new one
    assert all(r.info.artifact_uri.startswith(f"{experiment.artifact_location}/") for r in runs)
    for run in runs:
        if run.data.tags["mlflow.runName"] == "seed-1":
            assert (copy / "mlartifacts" / "tiny-synth" / run.info.run_id / "artifacts" / "metrics.json").is_file()
    # the original store is untouched
    original = mlflow.MlflowClient(tracking_uri=_store(first / "mlflow.db")).get_experiment_by_name("tiny-synth")
    assert original.artifact_location == (first / "mlartifacts" / "tiny-synth").as_uri()


def test_a_shared_store_keeps_its_artifact_location_across_out_folders(tmp_path: Path, capsys) -> None:
    uri = _store(tmp_path / "shared" / "mlflow.db")
    MlflowTracker(uri, "tiny-synth", tmp_path / "a" / "mlartifacts")
    tracker = MlflowTracker(uri, "tiny-synth", tmp_path / "b" / "mlartifacts")
    location = tracker.client.get_experiment(tracker.experiment_id).artifact_location
    assert location == (tmp_path / "a" / "mlartifacts" / "tiny-synth").as_uri()
    assert "copied or moved" not in capsys.readouterr().err


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _running(client: mlflow.MlflowClient, experiment_id: str, name: str, host: str, pid: int) -> str:
    tags = {"artbench.host": host, "artbench.pid": str(pid)}
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def test_runs_of_dead_processes_are_marked_killed(tmp_path: Path) -> None:
    uri = _store(tmp_path / "mlflow.db")
    tracker = MlflowTracker(uri, "tiny-synth")
    client, host, dead = tracker.client, socket.gethostname(), _dead_pid()
    ids = {
        "dead": _running(client, tracker.experiment_id, "dead", host, dead),
        "alive": _running(client, tracker.experiment_id, "alive", host, os.getpid()),
        "elsewhere": _running(client, tracker.experiment_id, "elsewhere", f"not-{host}", dead),
    }
    other = client.create_experiment("other-task")
    ids["dead-other-task"] = _running(client, other, "dead-other-task", host, dead)
    MlflowTracker(uri, "tiny-synth")  # the next run of the task
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"dead": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING", "dead-other-task": "RUNNING"}
    assert close_dead_runs(uri) == 1  # what `artbench ui` does: every experiment
    assert client.get_run(ids["dead-other-task"]).info.status == "KILLED"


def test_a_sweep_parent_whose_last_opener_died_stays_running_while_a_seed_trains(tmp_path: Path) -> None:
    """The workers of a sweep reopen one parent run each for its seed: the parent carries the last one's pid. When
    that worker ends first, the parent is not dead while another worker still trains a seed of it."""
    uri = _store(tmp_path / "mlflow.db")
    tracker = MlflowTracker(uri, "tiny-synth")
    client, host, dead = tracker.client, socket.gethostname(), _dead_pid()
    parent = _running(client, tracker.experiment_id, "mtl", host, dead)
    training = client.create_run(
        tracker.experiment_id,
        run_name="seed-2",
        tags={"artbench.host": host, "artbench.pid": str(os.getpid()), "mlflow.parentRunId": parent},
    ).info.run_id
    assert close_dead_runs(uri) == 0
    assert client.get_run(parent).info.status == "RUNNING"
    client.set_terminated(training, "FINISHED")  # the last seed ends without closing the parent (a kill)
    assert close_dead_runs(uri) == 1 and client.get_run(parent).info.status == "KILLED"


def test_a_run_killed_with_sigkill_is_marked_killed_by_the_next_run(tiny_task: Path, tmp_path: Path, capsys) -> None:
    artbench = shutil.which("artbench", path=str(Path(sys.executable).parent)) or "artbench"
    command = [artbench, "run", str(tiny_task), "mtl", "--out", str(tmp_path)]
    command += ["--device", "cpu", "--set", "max_epochs=500", "--set", "patience=500"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("tiny-synth/mtl/*/seed-1.tmp/checkpoints/*")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not reach its first epoch"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    db = tmp_path / "mlflow.db"
    assert sorted(r.info.status for r in _runs(db)) == ["RUNNING", "RUNNING"]
    assert {r.data.tags["artbench.pid"] for r in _runs(db)} == {str(proc.pid)}
    assert _run_colour(capsys, tiny_task, tmp_path)[0] == 0
    status = sorted((r.data.tags["mlflow.runName"], r.info.status) for r in _runs(db))
    assert status == [
        ("colour_hist_logreg", "FINISHED"),
        ("mtl", "KILLED"),
        ("seed-1", "FINISHED"),
        ("seed-1", "KILLED"),
    ]
