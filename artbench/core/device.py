"""Device selection, reproducible seeding and the process-wide determinism switches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from artbench.core.errors import ArtbenchError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when visible, else CPU), ``cpu``, ``cuda`` or ``cuda:N`` for a visible GPU ``N``."""
    index = name.removeprefix("cuda:")
    if name not in DEVICES and not (name.startswith("cuda:") and index.isdigit()):
        raise ArtbenchError(f"unknown device {name!r}; valid choices: {', '.join(DEVICES)} or cuda:N (N = 0, 1, ...)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ArtbenchError("--device cuda requested but no CUDA GPU is visible; use --device cpu or auto")
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        raise ArtbenchError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a CPU run is repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS workspace configuration that makes its kernels deterministic (CUDA >= 10.2; cuBLAS reads it at its first
call, so it is set before any CUDA work)."""


def configure_determinism(deterministic: bool) -> None:
    """Set the process-wide switches for a run (issue 14, "deterministic = true").

    Deterministic: ``CUBLAS_WORKSPACE_CONFIG`` (kept when already set to a deterministic value), deterministic
    algorithms enforced (an operation without a deterministic kernel raises instead of running), cuDNN's autotuner
    off and its deterministic kernels on. Otherwise: cuDNN's autotuner on (the inputs of a run have fixed sizes, so
    it tunes once per shape) and the default, faster kernels. On the CPU, runs are repeatable either way.
    """
    if deterministic and os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in (CUBLAS_WORKSPACE, ":16:8"):
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
