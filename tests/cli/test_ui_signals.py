"""``artbench ui`` stopped with SIGTERM stops the MLflow server and every process it started, like Ctrl-C, and
frees the port (issue 14, "Hardening": the server and its job consumers used to keep serving)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

STARTUP_SECONDS = 60
STOP_SECONDS = 20

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc (Linux)"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _port_is_free(port: int) -> bool:
    try:
        with socket.create_server(("127.0.0.1", port)):
            return True
    except OSError:
        return False


def _processes() -> dict[int, tuple[int, int, str]]:
    """``pid: (parent pid, process group, state)`` of every live process (zombies are dead: left out)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _descendants(root: int) -> set[int]:
    table, found, todo = _processes(), set(), [root]
    while todo:
        parent = todo.pop()
        children = {pid for pid, (ppid, _, _) in table.items() if ppid == parent}
        found |= children
        todo += children
    return found


def _kill(pids: set[int]) -> None:
    """Clean-up after a failure: SIGKILL the processes this test started, by id."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_server_and_its_process_group(tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    out = tmp_path / "runs"
    out.mkdir()
    mlflow.MlflowClient(f"sqlite:///{out}/mlflow.db").create_experiment("tiny-synth")
    port = _free_port()
    health = f"http://127.0.0.1:{port}/health"
    command = [str(Path(sys.executable).with_name("artbench")), "ui", "--out", str(out), "--port", str(port)]
    # A session of its own: the UI's processes are told apart from pytest's by their process group.
    log = tmp_path / "ui.log"  # a file, not a pipe: the server's log lines must never block it
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while process.poll() is None and time.monotonic() < deadline and not _answers(health):
            time.sleep(0.5)
        if process.poll() is not None or not _answers(health):
            pytest.skip(f"mlflow ui did not answer within {STARTUP_SECONDS} s on this machine")
        time.sleep(3)  # the server starts its workers and job consumers after it answers
        started = _descendants(process.pid)
        table = _processes()
        groups = {table[pid][1] for pid in started if pid in table}
        assert started, "the MLflow server runs as a child process"

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
        deadline = time.monotonic() + STOP_SECONDS
        while True:
            table = _processes()
            left = sorted(pid for pid, (_, group, _) in table.items() if pid in started or group in groups)
            if (not left and _port_is_free(port)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not left, f"processes of the UI still run {STOP_SECONDS} s after SIGTERM: {left}"
        assert _port_is_free(port), f"port {port} is still served {STOP_SECONDS} s after SIGTERM"
        assert process.returncode == 0, log.read_text()
    finally:
        _kill({process.pid} | started | _descendants(process.pid))
        process.wait(timeout=10)
