"""Shared fixtures: a quiet, isolated data home and a tiny synthetic task that trains in seconds on a CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["COLUMNS"] = "200"  # Rich tables keep whole words in captured output (set before the consoles exist)

from artbench.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared"

TINY_TASK = """
name = "tiny-synth"
description = "tiny silknow-synth for tests"
dataset = "silknow-synth"
[dataset_options]
num_images = {num_images}
image_size = 32
seed = 0
[split]
seed = 0
[[targets]]
name = "place"
background = ["bg place"]
[[targets]]
name = "material"
[[targets]]
name = "time"
background = ["bg time"]
[[targets]]
name = "technique"
background = ["bg technique"]
[[targets]]
name = "depiction"
background = ["bg depiction"]
[defaults]
backbone = "tiny_cnn"
weights = "none"
finetune_blocks = -1
image_size = 32
batch_size = 32
lr = 1e-3
max_epochs = 2
patience = 2
"""


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["ARTBENCH_DATA"] = str(tmp_path_factory.mktemp("artbench-data"))
    os.environ["ARTBENCH_QUIET"] = "1"
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a task file over 400 synthetic 32-px images with 2-epoch training defaults."""
    path = tmp_path_factory.mktemp("tasks") / "tiny-synth.toml"
    path.write_text(TINY_TASK.format(num_images=400))
    return path


@pytest.fixture
def restore_registries():
    """Plugins register into global registries; undo that afterwards (built-ins are loaded first)."""
    from artbench.core.dataset import DATASETS
    from artbench.methods import METHODS

    registries = (METHODS, DATASETS)
    saved = {reg: dict(reg._items) for reg in registries if reg.names() is not None}
    yield
    for reg, items in saved.items():
        reg._items = items


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``artbench`` entry point in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def run_quick(
    capsys: pytest.CaptureFixture[str], task: Path, method: str, out: Path, *extra: str
) -> tuple[int, str, str]:
    """``artbench run TASK METHOD`` for one CPU epoch into ``out``; ``extra`` adds or overrides options."""
    return run_cli(
        capsys, "run", str(task), method, "--out", str(out), "--device", "cpu", "--set", "max_epochs=1", *extra
    )
