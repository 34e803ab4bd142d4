"""``artbench ui``: the MLflow UI on the runs in ``--out``, pointed at the runs table of the task's experiment.

MLflow 3 opens on its GenAI overview (traces, judges), empty for training runs; the runs table, with the seeds nested
under each run and the leaderboard and comparison runs beside them, is ``#/experiments/<id>/runs`` (issue 11,
"MLflow as users see it"). The experiment id is read from the store, so the printed address is right before the
server starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from artbench.cli.common import OutOpt, out, sigterm_as_interrupt
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console as err_console

UI_EPILOG = (
    "Examples:\n\n  artbench ui --task silknow-synth --open\n\n  artbench ui --out runs --port 5001\n\n"
    "  artbench ui --host 0.0.0.0   (reachable from other machines)"
)
STARTUP_SECONDS = 120
STOP_SECONDS = 10
"""How long the server's processes get to end after SIGTERM before they are killed."""


def browser_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to ``host``."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def runs_pages(tracking_uri: str, base_url: str, task: str | None) -> list[tuple[str, str]]:
    """``(experiment, runs page URL)`` of ``task``'s experiment, or of every experiment but MLflow's Default."""
    from artbench.tracking.mlflow import experiment_ids, runs_page_url

    ids = experiment_ids(tracking_uri)
    known = sorted(name for name in ids if name != "Default")
    if task is not None:
        if task.endswith(".toml"):
            from artbench.tasks import load_task

            task = load_task(task).name
        if task not in ids:
            raise ArtbenchError(
                f"no MLflow experiment {task!r} in {tracking_uri}; experiments: {', '.join(known) or 'none'} "
                f"(run `artbench run {task} METHOD` with this --out first)"
            )
        return [(task, runs_page_url(base_url, ids[task]))]
    if not known:
        raise ArtbenchError(f"no experiment in {tracking_uri}; run `artbench run TASK METHOD` first or pass --out")
    return [(name, runs_page_url(base_url, ids[name])) for name in known]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (uvicorn workers, job consumers), which share its process
    group: SIGTERM, then SIGKILL for whatever still runs after ``STOP_SECONDS``."""
    if not hasattr(os, "killpg"):  # Windows: no process groups; the server alone
        proc.terminate()
        proc.wait(timeout=STOP_SECONDS)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)  # ProcessLookupError once the whole group has ended
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def serve(command: list[str], health_url: str, open_url: str | None) -> int:
    """Run the MLflow UI until it stops, Ctrl-C or SIGTERM; with ``open_url``, open it in the browser once the UI
    answers. The server runs in its own process group, which is stopped as a whole on the way out."""
    with sigterm_as_interrupt():
        proc = subprocess.Popen(command, start_new_session=True)
        try:
            if open_url:
                deadline = time.monotonic() + STARTUP_SECONDS
                while proc.poll() is None and time.monotonic() < deadline and not _answers(health_url):
                    time.sleep(0.5)
                if proc.poll() is None and _answers(health_url):
                    webbrowser.open(open_url)
                elif proc.poll() is None:
                    err_console.print(
                        f"[yellow]warning:[/] the UI did not answer within {STARTUP_SECONDS} s; open it later"
                    )
            return proc.wait()
        finally:
            _stop_group(proc)


def ui(
    out_dir: OutOpt = Path("artbench-out"),
    task: Annotated[
        str | None,
        typer.Option(help="Task (name or .toml) whose runs page to print and open. Default: every experiment."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the runs page in the web browser once the UI answers.")
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on the runs stored in --out and print the runs page of each task's experiment."""
    from artbench.tracking.mlflow import close_dead_runs, default_tracking_uri

    store = out_dir / "mlflow.db"
    if not store.is_file():
        raise ArtbenchError(f"no MLflow store at {store}; run `artbench run ...` first or pass --out")
    uri = default_tracking_uri(out_dir)
    base = f"http://{browser_host(host)}:{port}"
    try:
        with socket.create_server((host, port)):
            pass  # free: MLflow binds it next
    except OSError as exc:
        raise ArtbenchError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port or --host"
        ) from None
    pages = runs_pages(uri, base, task)
    if closed := close_dead_runs(uri):
        err_console.print(f"marked {closed} run(s) left RUNNING by processes that ended as KILLED")
    for name, url in pages:
        out.print(f"runs of {name!r}: {url}", soft_wrap=True)
    err_console.print(f"MLflow UI on {base} for {uri} (Ctrl-C to stop)", soft_wrap=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    try:
        returncode = serve(command, f"{base}/health", pages[0][1] if open_browser else None)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if returncode:
        raise ArtbenchError(f"the MLflow UI stopped with exit code {returncode} (its messages are above)")
