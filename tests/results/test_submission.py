"""Leaderboard submissions: a real run folder is accepted with every score recomputed; tampered, partial or foreign
submissions and unsafe archives are rejected with exit code 2, and a rejection leaves the board byte-identical."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artbench.cli import main
from artbench.data.task_data import prepare_task
from artbench.results.site import publish
from artbench.results.store import read_run, seed_complete
from artbench.results.submission import SubmissionRejected, extract_archive, verify
from artbench.tasks import load_task
from tests.conftest import run_cli

METHOD = "colour_hist_logreg"  # the fastest registered method: a real run in seconds


@pytest.fixture(scope="module")
def real_run(tiny_task: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete 2-seed run of the tiny task, as `artbench run` writes it."""
    out = tmp_path_factory.mktemp("runs")
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "run",
                str(tiny_task),
                METHOD,
                "--seeds",
                "2",
                "--out",
                str(out),
                "--device",
                "cpu",
                "--tracking-uri",
                "none",
            ]
        )
    assert exc.value.code in (0, None)
    (run_dir,) = (out / "tiny-synth" / METHOD).iterdir()
    return run_dir


@pytest.fixture(scope="module")
def data(tiny_task: Path):
    return prepare_task(load_task(str(tiny_task)))


@pytest.fixture
def boards(tiny_task: Path, real_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "leaderboards"
    publish([load_task(str(tiny_task))], real_run.parents[2], out)
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_run(real_run: Path, dest: Path, name: str | None = None) -> Path:
    shutil.copytree(real_run, dest)
    if name:
        (dest / "submission.json").write_text(json.dumps({"name": name, "description": "resubmitted run"}))
    return dest


def submit(capsys: pytest.CaptureFixture[str], source: Path, tiny_task: Path, real_run: Path, boards: Path):
    runs = real_run.parents[2]
    return run_cli(
        capsys,
        "leaderboard",
        "submit",
        str(source),
        "--task",
        str(tiny_task),
        "--runs",
        str(runs),
        "--out",
        str(boards),
        "--tracking-uri",
        "none",
    )


def test_a_real_run_is_accepted_with_every_score_recomputed(
    capsys: pytest.CaptureFixture[str], tiny_task: Path, real_run: Path, boards: Path, tmp_path: Path
) -> None:
    source = copy_run(real_run, tmp_path / "sub", "hist-again")
    code, out, err = submit(capsys, source, tiny_task, real_run, boards)
    assert code == 0, err
    assert "accepted: hist-again on tiny-synth, 2 seed(s)" in out
    entry = boards / "submissions" / "tiny-synth" / "hist-again"
    record = read_run(entry)
    assert record.status == "complete" and record.seeds == [1, 2]
    assert all(seed_complete(entry / f"seed-{k}") for k in (1, 2))
    original = read_run(real_run)
    for key in ("overall.f1_macro", "place.accuracy", "overall.f1_underrepresented"):
        assert record.summary["metrics"][key]["values"] == pytest.approx(
            original.summary["metrics"][key]["values"], abs=1e-12
        )
    board = json.loads((boards / "tiny-synth.json").read_text())
    rows = {e["name"]: e for e in board["entries"]}
    assert rows["hist-again"]["source"] == "submission" and rows[METHOD]["source"] == "artbench run"
    assert rows["hist-again"]["metrics"]["overall.f1_macro"]["mean"] == pytest.approx(
        original.summary["metrics"]["overall.f1_macro"]["mean"]
    )
    assert rows["hist-again"]["vs_best"]["test"] == "paired t-test"  # same seeds as the baseline run
    assert "hist-again" in (boards / "tiny-synth.html").read_text()
    # the same name again is refused and changes nothing
    before = snapshot(boards)
    code, _, err = submit(capsys, source, tiny_task, real_run, boards)
    assert code == 2 and "already on the board" in err
    assert snapshot(boards) == before


def test_an_archive_with_one_top_folder_is_accepted(
    capsys: pytest.CaptureFixture[str], tiny_task: Path, real_run: Path, boards: Path, tmp_path: Path
) -> None:
    source = copy_run(real_run, tmp_path / "my-run", "hist-archived")
    archive = tmp_path / "my-run.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="my-run")
    code, _, err = submit(capsys, archive, tiny_task, real_run, boards)
    assert code == 0, err
    summary = json.loads((boards / "submissions/tiny-synth/hist-archived/summary.json").read_text())
    assert summary["submission"]["source"] == "my-run.tar.gz" and len(summary["submission"]["source_sha256"]) == 64


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def _raise_claim(root: Path) -> None:
    def edit(m: dict) -> None:
        m["overall"]["f1_macro"] += 0.01

    _edit_json(root / "seed-1/metrics.json", edit)


def _raise_summary(root: Path) -> None:
    def edit(s: dict) -> None:
        s["metrics"]["overall.f1_macro"]["values"][1] += 0.02

    _edit_json(root / "summary.json", edit)


def _drop_test_images(root: Path) -> None:
    predictions = pd.read_csv(root / "seed-1/predictions.csv", dtype=str, keep_default_na=False)
    predictions.iloc[:-3].to_csv(root / "seed-1/predictions.csv", index=False)
    with np.load(root / "seed-1/scores.npz") as npz:
        np.savez_compressed(root / "seed-1/scores.npz", **{k: npz[k][:-3] for k in npz.files})


def _foreign_fingerprint(root: Path) -> None:
    _edit_json(root / "environment.json", lambda e: e.update(dataset_fingerprint="0123456789abcdef"))


def _prediction_not_from_scores(root: Path) -> None:
    predictions = pd.read_csv(root / "seed-1/predictions.csv", dtype=str, keep_default_na=False)
    with np.load(root / "seed-1/scores.npz") as npz:
        worst = npz["material"][0].argmin()
    classes = json.loads((root / "seed-1/metrics.json").read_text())["targets"]["material"]["classes"]
    predictions.loc[0, "material.pred"] = classes[worst]
    predictions.to_csv(root / "seed-1/predictions.csv", index=False)


CASES = {
    "claimed score": (
        _raise_claim,
        "claimed score(s) differ from the ones recomputed from the predictions: seed 1 overall.f1_macro: claimed",
    ),
    "summary": (_raise_summary, "summary.json seed 2 overall.f1_macro: claimed"),
    "fewer test images": (_drop_test_images, "seed-1: predictions.csv: 3 image(s) of the test split without a"),
    "fingerprint": (_foreign_fingerprint, "dataset fingerprint '0123456789abcdef' differs"),
    "predictions vs scores": (_prediction_not_from_scores, "material.pred: 1 prediction(s) that are not the argmax"),
    "environment": (lambda r: _edit_json(r / "environment.json", lambda e: e.pop("git_commit")), "lacks git_commit"),
    "incomplete": (lambda r: _edit_json(r / "summary.json", lambda s: s.update(status="incomplete")), "'incomplete'"),
    "no scores": (lambda r: (r / "seed-2/scores.npz").unlink(), "seed-2/ lacks scores.npz"),
    "other task": (lambda r: _edit_json(r / "summary.json", lambda s: s.update(task="silknow")), "for task 'silknow'"),
    "bad name": (lambda r: (r / "submission.json").write_text('{"name": "../up"}'), "name '../up' must be"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_submissions_are_rejected(case: str, tiny_task: Path, real_run: Path, data, tmp_path: Path) -> None:
    tamper, message = CASES[case]
    root = copy_run(real_run, tmp_path / "sub")
    tamper(root)
    with pytest.raises(SubmissionRejected) as exc:
        verify(root, load_task(str(tiny_task)), data)
    text = str(exc.value)
    assert text.startswith("submission rejected: ") and message in text, text
    assert "\n" not in text


def test_a_rejected_submission_changes_nothing_on_the_board(
    capsys: pytest.CaptureFixture[str], tiny_task: Path, real_run: Path, boards: Path, tmp_path: Path
) -> None:
    before = snapshot(boards)
    tampered = copy_run(real_run, tmp_path / "tampered", "cheat")
    _raise_claim(tampered)
    code, _, err = submit(capsys, tampered, tiny_task, real_run, boards)
    assert code == 2 and "claimed" in err and "recomputed" in err and "overall.f1_macro" in err
    assert snapshot(boards) == before
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add_bytes(tar, "../outside.txt", b"x")
    code, _, err = submit(capsys, archive, tiny_task, real_run, boards)
    assert code == 2 and "outside the archive" in err
    assert snapshot(boards) == before and not (tmp_path / "outside.txt").exists()


# ----------------------------------------------------------------------------------------------- archive safety


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(content) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(content) if kind == tarfile.REGTYPE else None)


def _tar(path: Path, *members: tuple) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            _add_bytes(tar, *member)
    return path


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../evil.txt", b"x")], "points outside the archive"),
        ([("a/../../evil.txt", b"x")], "points outside the archive"),
        ([("/tmp/evil.txt", b"x")], "absolute"),
        ([("link", b"", tarfile.SYMTYPE, "/etc/passwd")], "is a link"),
        ([("a.txt", b"x"), ("hard", b"", tarfile.LNKTYPE, "a.txt")], "is a link"),
        ([("fifo", b"", tarfile.FIFOTYPE)], "not a regular file"),
        ([("big.bin", b"0" * 2000)], "expands to more than 1,000 bytes"),
        ([(f"f{i}", b"") for i in range(12)], "12 members; at most 10"),
        ([("a.txt", b"x"), ("a.txt", b"y")], "listed twice"),
    ],
)
def test_unsafe_tar_archives_are_refused(members: list[tuple], message: str, tmp_path: Path) -> None:
    archive = _tar(tmp_path / "s.tar.gz", *members)
    dest = tmp_path / "x" / "dest"
    with pytest.raises(SubmissionRejected, match=message):
        extract_archive(archive, dest, max_bytes=1000, max_members=10)
    assert not (tmp_path / "x" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_unsafe_zip_archives_are_refused(tmp_path: Path) -> None:
    traversal = tmp_path / "t.zip"
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(SubmissionRejected, match="outside the archive"):
        extract_archive(traversal, tmp_path / "d1")
    link = tmp_path / "l.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16  # a symbolic link, as Info-ZIP stores it
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SubmissionRejected, match="link or special file"):
        extract_archive(link, tmp_path / "d2")
    bomb = tmp_path / "b.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * 100_000)  # 100 kB from a few hundred bytes
    assert bomb.stat().st_size < 1000
    with pytest.raises(SubmissionRejected, match="expands to more than 10,000 bytes"):
        extract_archive(bomb, tmp_path / "d3", max_bytes=10_000)
    assert not (tmp_path / "evil.txt").exists()


def test_a_safe_archive_extracts_its_files(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "ok.tgz", ("run/summary.json", b"{}"), ("run/seed-1/metrics.json", b"{}"))
    dest = extract_archive(archive, tmp_path / "dest")
    assert (dest / "run/seed-1/metrics.json").read_bytes() == b"{}"
