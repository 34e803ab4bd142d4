"""Image paths that are not plain files (issue 14, "Hardening"): a symlink loop, a folder or a named pipe is
skipped as unreadable, with a count and a reason like any other unreadable image, never a traceback or a hang."""

from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from artbench.core.dataset import DATASETS, Dataset
from artbench.data.cache import prepare_cache

HANG_SECONDS = 20
"""Preparation of four 8-px images takes well under a second; a pipe that blocks the decoder ends the test here."""


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "home"))


@pytest.fixture
def bounded() -> Iterator[None]:
    """Fail (instead of blocking for ever) when the test outlives :data:`HANG_SECONDS`."""

    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"preparation blocked for {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:03d}.png" for i in range(n)]
    for i, path in enumerate(paths):
        Image.new("RGB", (8, 8), (40 * i + 10, 100, 200)).save(path)
    return paths


def _symlink_loop(folder: Path) -> Path:
    first, second = folder / "loop-a.png", folder / "loop-b.png"
    os.symlink(second, first)
    os.symlink(first, second)
    return first


def _skipped_reasons(home: Path, name: str) -> dict[str, str]:
    folder = next((home / "cache" / name).iterdir())
    with open(folder / "skipped.csv", newline="") as handle:
        return {Path(row["image"]).name: row["reason"] for row in csv.DictReader(handle)}


def test_a_symlink_loop_in_a_csv_task_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = _images(tmp_path / "img", 3)
    loop = _symlink_loop(tmp_path / "img")
    table = tmp_path / "loopy.csv"
    rows = [f"img/{p.name},{label}" for p, label in zip([*images, loop], "xyxy", strict=True)]
    table.write_text("image,style\n" + "\n".join(rows) + "\n")

    dataset = DATASETS.get("csv").build(path=str(table))
    cache = prepare_cache(dataset, 8, workers=1)

    assert cache.skipped.tolist() == [3]
    assert "skipped 1 of 4 images of dataset 'loopy' that are missing or unreadable" in capsys.readouterr().err
    assert not cache.images[3].any() and cache.images[:3].reshape(3, -1).any(axis=1).all()
    assert "symbolic links" in _skipped_reasons(tmp_path / "home", "loopy")["loop-a.png"]


def test_a_folder_a_pipe_and_a_loop_are_unreadable(tmp_path: Path, bounded: None) -> None:
    images = _images(tmp_path / "img", 2)
    folder = tmp_path / "img" / "folder.png"
    folder.mkdir()
    pipe = tmp_path / "img" / "pipe.png"
    os.mkfifo(pipe)  # opening it for reading blocks until a writer comes: it must not be opened
    paths = [images[0], folder, pipe, _symlink_loop(tmp_path / "img"), images[1]]
    table = pd.DataFrame({"image": [str(p) for p in paths], "group": [f"g{i}" for i in range(len(paths))]})

    cache = prepare_cache(Dataset("odd-paths", table), 8, workers=1)

    assert cache.skipped.tolist() == [1, 2, 3]
    assert not cache.images[[1, 2, 3]].any() and cache.images[[0, 4]].reshape(2, -1).any(axis=1).all()
    reasons = _skipped_reasons(tmp_path / "home", "odd-paths")
    assert reasons["folder.png"] == reasons["pipe.png"] == "unreadable (not a regular file)"
    assert reasons["loop-a.png"].startswith("unreadable (") and "symbolic links" in reasons["loop-a.png"]
