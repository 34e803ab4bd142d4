"""Check order (issue 14): everything local first, every missing prerequisite in one error, no network before."""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from artbench import preflight
from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite, downloads_allowed
from artbench.methods import Method
from artbench.tasks import load_task
from tests.conftest import run_cli

WEIGHTS_URL = "https://download.pytorch.org/models/resnet152-f82ba261.pth"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every connection attempt; the test asserts that the list stays empty."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[1:2] or args[:1]))
        raise OSError("network access in a test of the local checks")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No dataset and no cached weights: empty $ARTBENCH_DATA and $TORCH_HOME."""
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def assert_one_line(code: int, err: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_run_without_data_and_weights_lists_both_offline(bare_machine: Path, no_network: list[str], capsys) -> None:
    out = bare_machine / "out"
    code, _, err = run_cli(capsys, "run", "silknow", "mtl_fo_rall", "--seeds", "5", "--out", str(out))
    assert_one_line(code, err)
    assert "`artbench datasets download silknow`" in err
    weights = bare_machine / "torch" / "hub" / "checkpoints" / "resnet152-f82ba261.pth"
    assert str(weights) in err and WEIGHTS_URL in err
    assert no_network == []
    assert not out.exists()


def test_sweep_checks_the_whole_grid_offline(bare_machine: Path, no_network: list[str], capsys) -> None:
    out = bare_machine / "out"
    args = ["sweep", "run", "--task", "silknow", "--method", "mtl_fo_rall", "--method", "mtl", "--seeds", "2"]
    code, _, err = run_cli(capsys, *args, "--out", str(out), "--tracking-uri", "none")
    assert_one_line(code, err)
    assert "2 problems" in err  # the data once, the weights once for both methods
    assert "`artbench datasets download silknow`" in err and WEIGHTS_URL in err
    assert no_network == []
    assert not any(out.rglob("*.json"))


def test_a_task_mistake_comes_with_the_missing_weights(
    bare_machine: Path, no_network: list[str], tmp_path: Path, capsys
) -> None:
    """A task file without [defaults] whose target is not in the data: its own error, and the weights, offline."""
    task = tmp_path / "t.toml"
    task.write_text(
        'name = "t"\ndataset = "silknow-synth"\n[dataset_options]\nnum_images = 40\nimage_size = 16\n'
        '[[targets]]\nname = "nosuchcolumn"\n'
    )
    code, _, err = run_cli(
        capsys, "run", str(task), "mtl", "--set", "backbone=resnet152", "--out", str(tmp_path / "out")
    )
    assert_one_line(code, err)
    assert "nosuchcolumn" in err and WEIGHTS_URL in err
    assert no_network == []


@dataclass
class NeedsFile(Method):
    """A method whose check finds a downloadable file absent (as missing ImageNet weights are)."""

    fetched: list[bool] | None = None

    def check(self, task: object) -> None:
        if not downloads_allowed() and self.fetched == []:
            raise MissingPrerequisite("weights", "w.pth", lambda: self.fetched.append(True), "downloading w.pth")


def test_a_downloadable_file_is_fetched_only_after_the_local_checks(tiny_task: Path, capsys) -> None:
    task = load_task(str(tiny_task))
    method = NeedsFile(fetched=[])
    ready = preflight.check([(task, method), (task, method)])
    assert method.fetched == [] and len(ready.to_fetch) == 1  # found once, nothing fetched yet
    assert ready.data_for(task).task.name == "tiny-synth"
    ready.fetch()
    assert method.fetched == [True] and ready.to_fetch == []
    assert "downloading w.pth" in capsys.readouterr().err


def test_a_single_problem_keeps_its_own_error(tmp_path: Path) -> None:
    task = tmp_path / "t.toml"
    task.write_text(
        'name = "t"\ndataset = "silknow-synth"\n[dataset_options]\nnum_images = 40\nimage_size = 16\n'
        '[[targets]]\nname = "nosuchcolumn"\n'
    )
    with pytest.raises(ArtbenchError, match="nosuchcolumn") as caught:
        preflight.check([(load_task(str(task)), NeedsFile())])
    assert "problems" not in str(caught.value)
