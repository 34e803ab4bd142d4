"""``weights=<file>`` that is not a state dict of the backbone: a one-line error, exit code 2, before any run folder
is made (issue 14, "Hardening": random bytes, a saved tensor or list, a truncated checkpoint, a pickle that is not a
state dict, a 0-byte file)."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from artbench.methods.torch.backbones import TinyCNN
from tests.conftest import run_cli


class NotAStateDict:
    """An arbitrary pickled object: ``torch.load(weights_only=True)`` refuses it."""


def _random_bytes(file: Path) -> None:
    file.write_bytes(bytes(range(256)) * 8)


def _tensor(file: Path) -> None:
    torch.save(torch.zeros(3), file)


def _list(file: Path) -> None:
    torch.save([torch.zeros(3), torch.ones(2)], file)


def _truncated(file: Path) -> None:
    torch.save(TinyCNN().state_dict(), file)
    whole = file.read_bytes()
    file.write_bytes(whole[: len(whole) // 2])


def _dict_of_strings(file: Path) -> None:
    torch.save({"blocks.0.0.weight": "abc", "note": "not weights"}, file)


def _state_dict_of_strings(file: Path) -> None:
    torch.save({"state_dict": OrderedDict(note="x")}, file)


def _arbitrary_object(file: Path) -> None:
    with open(file, "wb") as handle:
        pickle.dump(NotAStateDict(), handle)


def _empty(file: Path) -> None:
    file.write_bytes(b"")


@pytest.mark.parametrize(
    "write",
    [_random_bytes, _tensor, _list, _truncated, _dict_of_strings, _state_dict_of_strings, _arbitrary_object, _empty],
    ids=lambda f: f.__name__.lstrip("_"),
)
def test_weights_that_are_not_a_state_dict_fail_in_one_line(
    write: Callable[[Path], None], tiny_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "weights.pt"
    write(weights)
    out = tmp_path / "runs"
    code, stdout, stderr = run_cli(
        capsys, "run", str(tiny_task), "mtl", "--set", f"weights={weights}", "--tracking-uri", "none", "--out", str(out)
    )
    message = stderr.strip()
    assert code == 2, stderr
    assert len(message.splitlines()) == 1, stderr
    assert "is not a state dict of this backbone" in message and str(weights) in message
    assert "torch.save(model.state_dict()" in message and "weights=none" in message
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists() or not any(out.rglob("config.json"))


def test_a_real_state_dict_still_loads(tmp_path: Path) -> None:
    from artbench.methods.torch.backbones import build_backbone

    source = TinyCNN()
    torch.save({"backbone": "tiny_cnn", "state_dict": source.state_dict()}, tmp_path / "saved.pt")
    loaded = build_backbone("tiny_cnn", str(tmp_path / "saved.pt"), -1).body
    assert torch.equal(loaded.blocks[3][3].weight, source.blocks[3][3].weight)
