"""`artbench run --compile` and `--deterministic`: execution settings recorded in config.json and in each seed's cost;
a deterministic CPU run gives the metrics of a default one."""

import json
import shutil
from pathlib import Path

import pytest

from artbench.core.device import configure_determinism

from ..conftest import run_quick


@pytest.fixture(autouse=True)
def _default_switches():
    yield
    configure_determinism(False)  # the process-wide switches a --deterministic run leaves set


def _seed(out: Path, method: str = "mtl") -> tuple[dict, dict]:
    (run_dir,) = [p for p in (out / "tiny-synth" / method).iterdir() if p.is_dir()]
    config = json.loads((run_dir / "config.json").read_text())
    return config, json.loads((run_dir / "seed-1" / "metrics.json").read_text())


def test_deterministic_is_recorded_and_keeps_cpu_results(tiny_task, tmp_path, capsys) -> None:
    assert run_quick(capsys, tiny_task, "mtl", tmp_path / "a", "--tracking-uri", "none")[0] == 0
    assert run_quick(capsys, tiny_task, "mtl", tmp_path / "b", "--tracking-uri", "none", "--deterministic")[0] == 0
    (config_a, metrics_a), (config_b, metrics_b) = _seed(tmp_path / "a"), _seed(tmp_path / "b")
    assert config_a["run"]["deterministic"] is False and config_b["run"]["deterministic"] is True
    assert metrics_a["cost"]["deterministic"] is False and metrics_b["cost"]["deterministic"] is True
    assert metrics_a["targets"] == metrics_b["targets"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="torch.compile on the CPU needs a C compiler")
def test_compile_is_recorded_in_the_config_and_the_cost(tiny_task, tmp_path, capsys) -> None:
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path, "--tracking-uri", "none", "--compile")
    assert code == 0, err
    config, metrics = _seed(tmp_path)
    assert config["run"]["compile"] is True and metrics["cost"]["compiled"] is True
    assert metrics["cost"]["compile_error"] is None
