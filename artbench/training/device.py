"""Device selection and reproducible seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from artbench.errors import ArtbenchError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ArtbenchError(f"unknown device {name!r}; valid choices: {', '.join(DEVICES)} or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ArtbenchError("--device cuda requested but no CUDA GPU is visible; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a CPU run is repeatable."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
