"""Device selection and reproducible seeding."""

from __future__ import annotations

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
