"""OmniArt adapter: the v3 dump's columns and missing values, the artist thresholds and the derived 70/20/10 split.

The real-file test reads the public 1,000-row extract of the dump in ``../shared/samples/omniart`` and compares with
the counts of the research notes §3.2. Everything else runs on the fake dump of ``tests/data/omniart/make.py``.
"""

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from artbench.core.dataset import DATASETS
from artbench.core.errors import ArtbenchError
from artbench.data.task_data import prepare_task
from artbench.datasets import omniart
from artbench.tasks import load_task
from tests.conftest import SHARED, run_cli
from tests.data.omniart import make

SAMPLE = SHARED / "samples" / "omniart" / "omniart_v3_datadump_1k.csv"
BOURGEOIS = "o u i s e   b o u r g e o i s l"


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    make.make(tmp_path / "omniart")
    return tmp_path / "omniart"


def split_sizes(table: pd.DataFrame) -> dict[str, tuple[int, int, int]]:
    counts = table.groupby("artist")["split"].value_counts().unstack(fill_value=0)
    return {
        artist: tuple(int(counts.loc[artist].get(s, 0)) for s in ("train", "val", "test")) for artist in counts.index
    }


@pytest.mark.skipif(not SAMPLE.is_file(), reason="needs ../shared/samples/omniart (the real 1k extract of the dump)")
def test_real_extract_matches_documented_counts(tmp_path: Path) -> None:
    raw = omniart.read_dump(SAMPLE)
    assert len(raw) == 1000 and raw["omni_id"].is_unique  # every row, the extract's index column ignored
    rows = omniart.omniart_targets(raw)
    assert rows["general_type"].isna().sum() == 82  # `unknown`
    assert rows["general_type"].value_counts().to_dict() == {
        "painting": 640, "print": 88, "drawing": 56, "photograph": 53, "design": 36, "sculpture": 26,
        "new media": 10, "craft": 4, "installation": 4, "textile": 1,
    }  # fmt: skip
    assert rows["year"].isna().sum() == 18 and rows["century"].isna().sum() == 18
    assert rows["artwork_type"].nunique() + 1 == 50  # 50 values, `unknown` (4 rows) among them
    assert rows["school"].isna().sum() == 602 + 6  # `unknown` and empty
    assert rows["artist"].isna().sum() == 9
    assert rows["collection_origins"].value_counts().to_dict() == {
        "WikiArts 17": 332, "DeviantArt": 242, "MOMA - New York": 188, "Web Gallery of Art '17": 141,
        "Brill Iconclass Arkyves": 76, "The Met 17": 21,
    }  # fmt: skip
    dumped = pd.read_csv(SAMPLE, usecols=["century"])["century"]  # the dump's own column agrees with ours
    assert (pd.to_numeric(rows["century"]) == dumped).sum() == 982
    assert rows.loc[1, ["artist", "year", "century", "artwork_type"]].tolist() == [
        "alessandro algardi", 1634.0, "17", "sculpture"
    ]  # fmt: skip

    shutil.copy(SAMPLE, tmp_path / "dump.csv")
    table = omniart.omniart_table(tmp_path, min_artist_samples=4, metadata_csv="dump.csv")
    assert len(table) == 73 and table["artist"].nunique() == 12 and BOURGEOIS in set(table["artist"])
    assert split_sizes(table)["vincent van gogh"] == (6, 1, 1)
    assert table.loc[0, "image"] == str(tmp_path / "img_300x" / "16737.jpg")


def test_targets_and_missing_values(fake: Path) -> None:
    raw = omniart.read_dump(fake / omniart.DUMP_NAME)
    assert len(raw) == 32
    table = omniart.omniart_table(fake, min_artist_samples=4)
    # unknown and empty artists out, the repeated omni_id once, artists with more than 4 images in.
    assert table["artist"].value_counts().to_dict() == {"vincent van gogh": 12, BOURGEOIS: 8, "claude monet": 5}
    assert table["group"].is_unique and list(table.columns) == [
        "image", "group", "split", "artist", "general_type", "artwork_type", "year", "century", "school",
        "collection_origins",
    ]  # fmt: skip
    first = table.iloc[0]
    assert first["image"] == str(fake / "img_300x" / "1000.jpg") and first["group"] == "1000"
    assert (first["year"], first["century"], first["school"]) == (1880.0, "19", "dutch")
    assert table.loc[table["artist"] == BOURGEOIS, "school"].isna().all()  # unknown, Unknown, UNKNOWN, empty
    monet = table[table["group"] == make.UNKNOWN_YEAR_ID].iloc[0]
    assert pd.isna(monet["year"]) and pd.isna(monet["century"])
    assert set(table["general_type"]) == {"painting", "print"}

    five = omniart.omniart_table(fake, min_artist_samples=5)  # more than 5: monet's 5 are out
    assert set(five["artist"]) == {"vincent van gogh", BOURGEOIS}
    with pytest.raises(ArtbenchError, match=r"no artist has more than 12 images .* \(the most: 12\)"):
        omniart.omniart_table(fake, min_artist_samples=12)


def test_split_is_70_20_10_per_artist_and_stable(fake: Path, tmp_path: Path) -> None:
    assert omniart.apportion(10) == [7, 2, 1] and omniart.apportion(101) == [71, 20, 10]
    assert omniart.apportion(12) == [9, 2, 1] and omniart.apportion(8) == [6, 1, 1]
    table = omniart.omniart_table(fake, min_artist_samples=4)
    assert split_sizes(table) == {"vincent van gogh": (9, 2, 1), BOURGEOIS: (6, 1, 1), "claude monet": (4, 1, 0)}
    # Written once, next to the data, as omni_id,split.
    stored = pd.read_csv(fake / "splits" / "omniart-4-seed0.csv", dtype=str)
    assert list(stored.columns) == ["omni_id", "split"] and stored["omni_id"].tolist() == table["group"].tolist()

    # An artist's images fall in the same splits under every threshold; row order does not matter.
    five = omniart.omniart_table(fake, min_artist_samples=5).set_index("group")["split"]
    assert five.to_dict() == table.set_index("group")["split"][five.index].to_dict()
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    dump = pd.read_csv(fake / omniart.DUMP_NAME, dtype=str, keep_default_na=False)
    dump.sample(frac=1, random_state=1).to_csv(shuffled / omniart.DUMP_NAME, index=False)
    again = omniart.omniart_table(shuffled, min_artist_samples=4).set_index("group")["split"]
    assert again.to_dict() == table.set_index("group")["split"].to_dict()
    other_seed = omniart.omniart_table(fake, min_artist_samples=4, split_seed=1)
    assert (other_seed["split"] != table["split"]).any() and split_sizes(other_seed) == split_sizes(table)


def test_a_written_split_is_reused_and_checked(fake: Path) -> None:
    omniart.omniart_table(fake, min_artist_samples=4)
    path = fake / "splits" / "omniart-4-seed0.csv"
    stored = pd.read_csv(path, dtype=str)
    stored["split"] = "train"
    stored.loc[0, "split"] = "test"
    stored.to_csv(path, index=False)
    table = omniart.omniart_table(fake, min_artist_samples=4)
    assert table["split"].value_counts().to_dict() == {"train": 24, "test": 1}  # the file wins

    shutil.copy(path, fake / "splits" / "omniart-5-seed0.csv")  # a file for other data
    with pytest.raises(ArtbenchError, match=r"lists other images than the dump selects.*delete the file"):
        omniart.omniart_table(fake, min_artist_samples=5)
    path.write_text("omni_id,fold\n1000,1\n")
    with pytest.raises(ArtbenchError, match="not an OmniArt split file"):
        omniart.omniart_table(fake, min_artist_samples=4)


def test_missing_or_foreign_files_are_clear_errors(fake: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(ArtbenchError, match="does not exist; OmniArt has no public download"):
        DATASETS.get("omniart").build(root=str(tmp_path))
    (tmp_path / omniart.DUMP_NAME).write_text("id,artist_full_name\n1,a\n")
    with pytest.raises(ArtbenchError, match=r"not the OmniArt v3 dump: it lacks the column\(s\) \['artwork_name'"):
        omniart.read_dump(tmp_path / omniart.DUMP_NAME)
    with pytest.raises(ArtbenchError, match="min_artist_samples must be an integer >= 0"):
        omniart.omniart_table(fake, min_artist_samples=-1)
    code, _, err = run_cli(capsys, "datasets", "download", "omniart")
    assert code == 2 and "cannot be downloaded by a script: OmniArt has no public download" in err


def test_tasks_use_the_derived_split(fake: Path) -> None:
    for threshold in (100, 300, 700, 1100):
        task = load_task(f"omniart-{threshold}")
        assert task.dataset_options == {"min_artist_samples": threshold, "split_seed": 0}
        assert task.split.protocol == "official" and task.metrics[:2] == ("accuracy", "mae")
    options = {"root": str(fake), "min_artist_samples": 4, "split_seed": 0}
    data = prepare_task(replace(task, dataset_options=options))
    assert Counter(data.split.tolist()) == {"train": 19, "val": 4, "test": 2}
    kinds = {t.name: (t.kind, t.num_classes) for t in data.targets}
    assert kinds == {
        "artist": ("multiclass", 3), "general_type": ("multiclass", 2), "artwork_type": ("multiclass", 3),
        "year": ("regression", 0),
    }  # fmt: skip
    assert int(data.targets[3].known(data.labels[3]).sum()) == 24
