"""``artbench ui``: the MLflow UI on the runs in ``--out``."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from artbench.cli.common import OutOpt
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console as err_console

UI_EPILOG = "Examples:\n\n  artbench ui\n\n  artbench ui --out runs --port 5001"


def ui(
    out_dir: OutOpt = Path("artbench-out"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the runs stored in --out."""
    from artbench.tracking.mlflow import default_tracking_uri

    store = out_dir / "mlflow.db"
    if not store.is_file():
        raise ArtbenchError(f"no MLflow store at {store}; run `artbench run ...` first or pass --out")
    uri = default_tracking_uri(out_dir)
    try:
        with socket.create_server((host, port)):
            pass  # free: MLflow binds it next
    except OSError as exc:
        raise ArtbenchError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port or --host"
        ) from None
    err_console.print(f"MLflow UI on http://{host}:{port} for {uri} (Ctrl-C to stop)", soft_wrap=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    try:
        returncode = subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if returncode:
        raise ArtbenchError(f"the MLflow UI stopped with exit code {returncode} (its messages are above)")
