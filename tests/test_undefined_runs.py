"""A run whose every metric is undefined (issue 14): status ``undefined``, a warning, and left out of boards and
comparisons instead of being taken for a complete result."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artbench.cli import main
from artbench.core.errors import ArtbenchError
from artbench.results.compare import resolve_runs
from artbench.results.leaderboard import measured_entries
from artbench.tasks import load_task
from tests.conftest import run_cli

SPLITS = ["train", "train", "train", "train", "val", "val", "test", "test"]
LABELS = ["a", "b", "a", "b", "a", "b", "", ""]  # no test image has a known label: every metric is undefined


@pytest.fixture(scope="module")
def undefined_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """(task file, out folder, stdout, stderr) of a 2-seed run on a task whose test labels are all missing."""
    folder = tmp_path_factory.mktemp("undefined")
    rng = np.random.default_rng(0)
    rows = ["file,obj,part,style"]
    for i, (split, label) in enumerate(zip(SPLITS, LABELS, strict=True)):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
        rows.append(f"im{i}.png,o{i},{split},{label}")
    (folder / "c.csv").write_text("\n".join(rows) + "\n")
    task = folder / "undef.toml"
    task.write_text(
        'name = "undef"\ndataset = "csv"\nmetrics = ["f1_macro", "accuracy"]\n[dataset_options]\npath = "c.csv"\n'
        'image_col = "file"\ngroup_col = "obj"\nsplit_col = "part"\n[split]\nprotocol = "official"\n'
        '[[targets]]\nname = "style"\n'
    )
    out = folder / "out"
    stdout, stderr = io.StringIO(), io.StringIO()  # capsys is function-scoped
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exc:
        main(["run", str(task), "colour_hist_logreg", "--seeds", "2", "--out", str(out), "--tracking-uri", "none"])
    assert not exc.value.code, stderr.getvalue()
    return task, out, stdout.getvalue(), stderr.getvalue()


def test_the_run_is_undefined_not_complete(undefined_run: tuple[Path, Path, str, str]) -> None:
    _, out, _, err = undefined_run
    (summary,) = out.glob("undef/colour_hist_logreg/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "undefined"
    assert "no metric is defined in any seed" in err and "style 0" in err


def test_leaderboards_and_compare_leave_it_out(undefined_run: tuple[Path, Path, str, str]) -> None:
    task_file, out, _, _ = undefined_run
    task = load_task(str(task_file))
    assert measured_entries(task, out, None) == []
    with pytest.raises(ArtbenchError, match=r"1 undefined run\(s\)"):
        resolve_runs(task, ["colour_hist_logreg"], out)
    (run_dir,) = out.glob("undef/colour_hist_logreg/*")
    with pytest.raises(ArtbenchError, match="no defined metric in any seed"):
        resolve_runs(task, [str(run_dir)], out)


def test_resume_finds_nothing_left_to_train(undefined_run: tuple[Path, Path, str, str], capsys) -> None:
    task_file, out, _, _ = undefined_run
    code, stdout, _ = run_cli(
        capsys, "run", str(task_file), "colour_hist_logreg", "--out", str(out), "--tracking-uri", "none", "--resume"
    )
    assert code == 0 and "nothing to resume" in stdout
    assert len(list(out.glob("undef/colour_hist_logreg/*"))) == 1
