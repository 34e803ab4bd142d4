"""iMet 2019/2020 adapter: labels.csv/train.csv parsing, per-prefix targets, the fixed stratified split and its
file, the manual (Kaggle) download, and a run on the fake folders of ``tests/data/imet/make.py``.

The real-file test reads the byte-exact Kaggle 2020 ``labels.csv`` in ``../shared/samples/imet2020`` and compares
with the counts documented in ``shared/research/datasets.md`` §4.3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artbench.core.dataset import DATASETS
from artbench.core.errors import ArtbenchError
from artbench.core.targets import TargetSpec
from artbench.data.cache import prepare_cache, require_images
from artbench.datasets import imet
from artbench.results.baselines import load_baseline
from artbench.tasks import load_task
from tests.conftest import SHARED, run_cli
from tests.data.imet.make import LABELS, make

SAMPLES = SHARED / "samples" / "imet2020"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="needs ../shared/samples/imet2020 (the real Kaggle labels.csv)")
def test_real_2020_labels_match_documented_counts() -> None:
    labels = imet.read_labels(SAMPLES / "labels.csv")
    assert len(labels) == 3474 and labels["attribute_id"].tolist() == list(range(3474))
    assert labels["prefix"].value_counts().to_dict() == {
        "medium": 1920, "tags": 768, "culture": 681, "country": 100, "dimension": 5
    }  # fmt: skip
    assert tuple(labels["prefix"].unique()) == imet.PREFIXES[2020]
    by_id = labels.set_index("attribute_id")
    assert by_id.loc[0, "attribute_name"] == "country::afghanistan"
    assert by_id.loc[3473, "attribute_name"] == "tags::zodiac"
    assert by_id.loc[786, "name"] == '"tinned" surface'  # RFC-4180 quoting undone
    assert by_id.loc[436, "name"] == "italian (venice);  innsbruck"  # verbatim, two spaces kept
    assert by_id.loc[781:785, "name"].tolist() == ["large", "medium", "small", "tiny", "very large"]
    # class names are unique per target, and the flat names are unique too
    assert not labels.duplicated(["prefix", "name"]).any() and labels["attribute_name"].is_unique


@pytest.mark.parametrize("year", [2019, 2020])
def test_fake_folder_reads_into_targets_per_prefix(tmp_path, year) -> None:
    fake = make(tmp_path, year)
    dataset = DATASETS.get(f"imet{year}").build(root=str(tmp_path))
    table = dataset.table
    assert list(table.columns) == ["image", "group", "split", "attributes", *imet.PREFIXES[year]]
    assert table["group"].tolist() == fake.ids and table["group"].is_unique
    assert table["image"][0] == str(tmp_path / "train" / f"{fake.ids[0]}.png")
    assert dataset.layout == "kaggle" and dataset.name == f"imet{year}"
    for row, attributes in zip(table.itertuples(), fake.attributes, strict=True):
        names = [LABELS[year][a] for a in attributes]
        assert row.attributes == "|".join(names)
        for prefix in imet.PREFIXES[year]:
            expected = [n.split("::", 1)[1] for n in names if n.startswith(prefix + "::")]
            cell = getattr(row, prefix)
            assert (cell == "|".join(expected)) if expected else pd.isna(cell), (prefix, cell, expected)
    culture = table["culture"]
    assert culture.isna().any() and culture.notna().any()  # images without a culture: missing, not empty
    assert not table["attributes"].isna().any()


def test_quoted_and_spaced_names_survive_encoding(tmp_path) -> None:
    make(tmp_path, 2020, num_images=60)
    table = imet.imet_table(tmp_path, 2020)
    medium = TargetSpec("medium", "multilabel").with_classes_from(table["medium"])
    assert '"tinned" surface' in medium.classes and 'so-called "mina\'i" ware' in medium.classes
    culture = TargetSpec("culture", "multilabel").with_classes_from(table["culture"])
    assert "italian (venice);  innsbruck" in culture.classes
    codes = culture.encode(table["culture"])
    known = culture.known(codes)
    assert known.sum() == table["culture"].notna().sum() < len(table)  # NA rows are missing ...
    assert (codes[known].sum(axis=1) >= 1).all()  # ... and every known row has a culture


def test_split_is_stratified_70_15_15_and_saved_once(tmp_path, monkeypatch) -> None:
    make(tmp_path, 2020, num_images=200)
    table = imet.imet_table(tmp_path, 2020)
    shares = table["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.03)
    assert shares["val"] == pytest.approx(0.15, abs=0.03) and shares["test"] == pytest.approx(0.15, abs=0.03)
    pairs = table.assign(attribute=table["attributes"].str.split("|")).explode("attribute")
    by_split = pd.crosstab(pairs["attribute"], pairs["split"])
    common = by_split[by_split.sum(axis=1) >= 20]
    assert len(common) >= 5 and (common > 0).all().all()  # every frequent attribute in every split
    train_share = common["train"] / common.sum(axis=1)
    assert train_share.between(0.6, 0.8).all()  # iterative stratification keeps each attribute near 70 %

    saved = tmp_path / "splits" / "imet2020-seed0.csv"
    assert pd.read_csv(saved, dtype=str)["split"].tolist() == table["split"].tolist()
    assert not list(saved.parent.glob("*.tmp"))
    monkeypatch.setattr(imet, "stratified_split", lambda *a: pytest.fail("the saved split was not reused"))
    assert imet.imet_table(tmp_path, 2020)["split"].tolist() == table["split"].tolist()


def test_split_seed_picks_another_saved_split(tmp_path) -> None:
    make(tmp_path, 2019, num_images=100)
    first = imet.imet_table(tmp_path, 2019, split_seed=0)["split"]
    second = imet.imet_table(tmp_path, 2019, split_seed=1)["split"]
    assert (first != second).any()
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == ["imet2019-seed0.csv", "imet2019-seed1.csv"]


def test_split_file_of_another_train_csv_is_refused(tmp_path) -> None:
    make(tmp_path, 2020)
    imet.imet_table(tmp_path, 2020)
    lines = (tmp_path / "train.csv").read_text().splitlines()
    (tmp_path / "train.csv").write_text("\n".join(lines[:-1]) + "\n")  # one image fewer
    with pytest.raises(ArtbenchError, match=r"lists other images than train.csv .*delete .*imet2020-seed0.csv"):
        imet.imet_table(tmp_path, 2020)


def test_wrong_year_and_bad_files_are_clear_errors(tmp_path) -> None:
    make(tmp_path, 2019)
    with pytest.raises(ArtbenchError, match=r"not iMet 2020's country, .*; it looks like iMet 2019"):
        imet.imet_table(tmp_path, 2020)
    with open(tmp_path / "train.csv", "a") as f:
        f.write("00ff00ff00ff00ff,0 999\n")
    with pytest.raises(ArtbenchError, match=r"line 42: attribute ids \[999\] of image '00ff00ff00ff00ff'"):
        imet.imet_table(tmp_path, 2019)
    (tmp_path / "labels.csv").write_text("attribute_id,attribute_name\n0,culture::a|b\n")
    with pytest.raises(ArtbenchError, match=r"contains the label separator"):
        imet.read_labels(tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("id,name\n0,culture::a\n")
    with pytest.raises(ArtbenchError, match=r"is not an iMet labels\.csv"):
        imet.read_labels(tmp_path / "labels.csv")


def test_absent_folder_gives_the_kaggle_steps(tmp_path, monkeypatch, capsys) -> None:
    with pytest.raises(ArtbenchError, match=r"no labels.csv, train.csv\): accept .*kaggle competitions download"):
        imet.imet2019_dataset(root=str(tmp_path))
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path))
    code, _, err = run_cli(capsys, "datasets", "download", "imet2020")
    assert code == 2
    assert "cannot be downloaded by a script" in err and "kaggle competitions download -c imet-2020-fgvc7" in err


def test_corrupt_and_missing_images_are_reported(tmp_path) -> None:
    fake = make(tmp_path, 2020)
    dataset = imet.imet2020_dataset(root=str(tmp_path))
    assert len(dataset.table) == len(fake.ids)  # the table lists what train.csv lists
    assert [Path(p).stem for p in require_images(dataset)] == [fake.missing]  # a warning, not an error
    cache = prepare_cache(dataset, 8)
    skipped = sorted(Path(p).stem for p in dataset.table["image"].iloc[cache.skipped])
    assert skipped == sorted([fake.missing, fake.corrupt])


@pytest.mark.parametrize("task", ["imet2019", "imet2020"])
def test_task_runs_on_the_fake_folder(tmp_path, monkeypatch, capsys, task) -> None:
    year = int(task[-4:])
    make(tmp_path / "home" / task, year, num_images=60, bad_images=False)
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "home"))
    quick = ["--set", "backbone=tiny_cnn", "--set", "weights=none", "--set", "finetune_blocks=-1"]
    quick += ["--set", "image_size=16", "--set", "batch_size=16", "--set", "max_epochs=1", "--device", "cpu"]
    code, _, err = run_cli(capsys, "run", task, "mtl", "--out", str(tmp_path / "out"), "--tracking-uri", "none", *quick)
    assert code == 0, err
    predictions = pd.read_csv(next((tmp_path / "out").rglob("predictions.csv")), keep_default_na=False)
    split = pd.read_csv(tmp_path / "home" / task / "splits" / f"{task}-seed0.csv")
    assert len(predictions) == int(np.sum(split["split"] == "test"))


def test_reported_leaderboard_numbers_are_the_research_notes() -> None:
    baseline = load_baseline("imet2019")
    assert baseline["paper"]["tasks"] == ["imet2019"]
    reported = {method: values["f2_samples"]["attributes"] for method, values in baseline["reported"].items()}
    assert reported == {"kaggle_private_lb_1st": 67.2, "kaggle_private_lb_47th": 63.6, "kaggle_private_lb_67th": 62.4}
    assert load_task("imet2019").metrics[0] == "f2_samples"  # the metric the numbers are in
