"""``artbench datasets audit``: the pairs CSV, the table of counts, ``--json``, ``--fix`` and its use through the
``split_path`` option, on the fake 2019 SILKNOW release (one exact and one near duplicate across splits, a missing
and a corrupt image) and on the real 2022 collection files (names only)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from artbench.core.dataset import Dataset, register_dataset
from artbench.data import audit as audit_logic
from artbench.datasets import silknow
from tests.conftest import SHARED, run_cli
from tests.data.silknow import make

SAMPLES_2022 = SHARED / "samples" / "silknow" / "multimodal_2022"


def table_rows(out: str) -> list[list[str]]:
    """The body rows of a Rich table as lists of cell texts."""
    return [[cell.strip() for cell in line.strip("│ ").split("│")] for line in out.splitlines() if line[:1] == "│"]


@pytest.fixture(scope="module")
def fake_2019(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make.make_2019(tmp_path_factory.mktemp("silknow-2019"))


def test_audit_prints_counts_and_writes_the_pairs(capsys, tmp_path, fake_2019: Path) -> None:
    code, out, err = run_cli(capsys, "datasets", "audit", "silknow", "--root", str(fake_2019), "--out", str(tmp_path))
    assert code == 0, err
    text = " ".join(out.split())
    assert "leakage audit of silknow: 20 images in 20 groups" in text
    assert "near (pHash ≤ 6 bits)" in text and "Hamming distance ≤ 6" in text
    assert "images hashed: 18, missing: 1, unreadable: 1" in text
    rows = {cells[0]: cells[1:] for cells in table_rows(out)}
    assert rows["train-test"] == ["0", "1", "0"] and rows["train-val"] == ["0", "0", "1"]
    assert sum(int(n) for cells in rows.values() for n in cells) == 2
    pairs = pd.read_csv(tmp_path / "audit-silknow-pairs.csv")
    assert list(pairs.columns) == list(audit_logic.PAIR_COLUMNS)
    assert pairs[["kind", "split_a", "split_b", "distance"]].values.tolist() == [
        ["exact", "train", "test", 0],
        ["near", "train", "val", 0],
    ]
    assert not (tmp_path / "audit-silknow-split.csv").exists()  # only with --fix


def test_audit_json_and_fix_give_a_leak_free_split(capsys, tmp_path, fake_2019: Path) -> None:
    args = ["datasets", "audit", "silknow", "--root", str(fake_2019), "--out", str(tmp_path)]
    code, out, err = run_cli(capsys, *args, "--json", "--fix", "--threshold", "4")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["threshold"] == 4 and (summary["missing"], summary["unreadable"]) == (1, 1)
    assert summary["pairs"]["exact"]["train-test"] == 1 and summary["pairs"]["near"]["train-val"] == 1
    split_file = tmp_path / "audit-silknow-split.csv"
    assert summary["fix"]["moved_images"] == 2 and summary["fix"]["split_csv"] == str(split_file)
    assert f'dataset_options.split_path = "{split_file}"' in summary["fix"]["usage"]
    written = pd.read_csv(split_file)
    assert list(written.columns) == ["image", "split"] and len(written) == 20
    fixed = silknow.silknow_dataset(root=str(fake_2019), split_path=str(split_file)).table
    assert fixed["split"].value_counts().to_dict() == {"train": 14, "val": 3, "test": 3}
    report = audit_logic.audit_split(fixed, fixed["split"], silknow.image_name_key)
    assert (report.pairs["split_a"] == report.pairs["split_b"]).all()  # both pairs now inside train

    code, out, _ = run_cli(capsys, *args, "--fix")
    assert code == 0 and "2 images moved" in out and "split_path" in out


def test_audit_of_a_task_uses_the_task_split(capsys, tmp_path, fake_2019: Path) -> None:
    task = tmp_path / "imatex-folds.toml"
    task.write_text(
        f'name = "imatex-folds"\ndataset = "silknow"\n[dataset_options]\nroot = "{fake_2019}"\n'
        'folds = ["train", "val", "test", "val", "test"]\n[split]\nprotocol = "official"\n'
        '[[targets]]\nname = "material"\n'
    )
    code, out, err = run_cli(capsys, "datasets", "audit", str(task), "--out", str(tmp_path), "--json")
    assert code == 0, err
    pairs = json.loads(out)["pairs"]
    assert pairs["exact"]["train-test"] == 1  # folds 1 and 5
    assert pairs["near"]["val-val"] == 1 and pairs["near"]["train-val"] == 0  # folds 2 and 4: both val now
    assert (tmp_path / "audit-imatex-folds-pairs.csv").is_file()


def test_audit_mistakes_are_one_line_errors(capsys, tmp_path, restore_registries) -> None:
    @register_dataset("no-split-here")
    def no_split(root: str | None = None) -> Dataset:
        return Dataset("no-split-here", pd.DataFrame({"image": ["a.jpg"], "group": ["a"]}))

    for args, message in (
        (["no-split-here"], "dataset 'no-split-here' has no complete official split; audit a task"),
        (["nothing-like-it"], "'nothing-like-it' is neither a task"),
        (["my-task.toml", "--root", str(tmp_path)], "--root applies to a dataset name only"),
        (["silknow", "--root", str(tmp_path)], "SILKNOW is not in"),
        (["silknow", "--threshold", "65"], "Invalid value for '--threshold'"),
    ):
        code, _, err = run_cli(capsys, "datasets", "audit", *args, "--out", str(tmp_path))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not SAMPLES_2022.is_dir(), reason="needs ../shared/samples/silknow/multimodal_2022")
def test_audit_of_the_real_2022_collection_files(capsys, tmp_path) -> None:
    code, out, err = run_cli(
        capsys, "datasets", "audit", "silknow", "--root", str(SAMPLES_2022), "--out", str(tmp_path), "--json", "--fix"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["images"], summary["groups"], summary["missing"]) == (36043, 22093, 36043)
    assert summary["pairs"] == {
        "same_name": {"train-train": 4, "train-val": 2, "train-test": 3, "val-val": 0, "val-test": 0, "test-test": 0}
    }
    assert summary["fix"]["moved_images"] == 5
