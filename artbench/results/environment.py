"""The environment record stored with every run: versions, git commit, device, dataset fingerprint."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

import artbench


def git_commit() -> str | None:
    """Commit of the artbench checkout, when it runs from one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(artbench.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def device_name(device: torch.device) -> str:
    """The GPU's name, else the CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` is often empty on
    Linux), else its architecture."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_record(device: torch.device, dataset_fingerprint: str) -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "artbench_version": artbench.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": str(device),
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "dataset_fingerprint": dataset_fingerprint,
    }
