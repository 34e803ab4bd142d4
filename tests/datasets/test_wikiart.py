"""WikiArt adapter: the ArtGAN split files and their quirks, the union table and its split, the huggan parquet
layout, the download (file:// fakes) and a run on the fake folder of ``tests/data/wikiart/make.py``.

The real-file tests read the byte-exact ArtGAN split files in ``../shared/samples/wikiart`` and compare with the
sizes and set relations documented in ``shared/research/datasets.md`` §5.1.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from artbench.core.errors import ArtbenchError
from artbench.data.cache import prepare_cache, require_images
from artbench.datasets import wikiart
from tests.conftest import SHARED, run_cli
from tests.data.wikiart import make as fake

SAMPLES = SHARED / "samples" / "wikiart"
needs_samples = pytest.mark.skipif(
    not (SAMPLES / "artgan").is_dir(), reason="needs ../shared/samples/wikiart (the real ArtGAN split files)"
)
QUICK = ["--set", "backbone=tiny_cnn", "--set", "weights=none", "--set", "finetune_blocks=-1", "--set", "image_size=16"]
QUICK += ["--set", "batch_size=8", "--set", "max_epochs=1", "--device", "cpu", "--tracking-uri", "none"]


@needs_samples
def test_real_split_files_have_the_documented_sizes() -> None:
    sizes = {
        name: len(wikiart.read_split_file(SAMPLES / "artgan" / folder / name))
        for folder, _, files in wikiart.SPLIT_FILES.values()
        for name in files.values()
    }
    assert sizes == {
        "style_train.csv": 57025, "style_val.csv": 24421, "genre_train.csv": 45503, "genre_val.csv": 19492,
        "artist_train": 13346, "artist_val": 5706,
    }  # fmt: skip
    for target, (folder, class_file, _) in wikiart.SPLIT_FILES.items():
        names = wikiart.read_class_list(SAMPLES / "artgan" / folder / class_file)
        assert len(names) == {"style": 27, "genre": 10, "artist": 23}[target]
    assert tuple(wikiart.read_class_list(SAMPLES / "artgan" / "Artist" / "artist_class")) == wikiart.ARTGAN_ARTISTS
    assert tuple(wikiart.read_class_list(SAMPLES / "artgan" / "Style" / "style_class.txt")) == fake.STYLES
    assert tuple(wikiart.read_class_list(SAMPLES / "artgan" / "Genre" / "genre_class")) == fake.GENRES
    rows = wikiart.read_split_file(SAMPLES / "artgan" / "Artist" / "artist_train")
    assert rows[0] == ("Realism/vincent-van-gogh_pine-trees-in-the-fen-1884.jpg", 22)  # after the header line
    style = wikiart.read_split_file(SAMPLES / "artgan" / "Style" / "style_train.csv")
    assert style[0] == ("Impressionism/edgar-degas_landscape-on-the-orne.jpg", 12)  # no CR left from CRLF
    assert (
        sum(path.startswith("Art_Nouveau_Modern/") for path, _ in style)
        + sum(
            path.startswith("Art_Nouveau_Modern/")
            for path, _ in wikiart.read_split_file(SAMPLES / "artgan" / "Style" / "style_val.csv")
        )
        == 4334
    )


@needs_samples
def test_real_union_table_keeps_every_targets_test_set() -> None:
    table = wikiart.artgan_table(SAMPLES)
    assert len(table) == 81446 and table["group"].is_unique  # the unique style paths (§5.1)
    assert table["style"].notna().sum() + 251 == 81446  # style labels of train-for-style, val-elsewhere images
    counts = table.groupby("split")[["style", "genre", "artist"]].count()
    # test = each target's ArtGAN val file exactly (genre: 19,492 rows, one path twice with two genres)
    assert counts.loc["test"].to_dict() == {"style": 24421, "genre": 19490, "artist": 5706}
    # train + val = each target's ArtGAN train file less the images that are val for another target
    assert (counts.loc["train"] + counts.loc["val"]).to_dict() == {"style": 57025 - 251, "genre": 45503 - 309,
                                                                   "artist": 13346 - 145}  # fmt: skip
    assert table["split"].value_counts().to_dict() == {"train": 48369, "test": 24672, "val": 8405}
    assert (table["split"] == "val").sum() / (table["split"] != "test").sum() == pytest.approx(0.15, abs=0.005)
    nouveau = table[table["group"].str.startswith("Art_Nouveau_Modern/")]
    assert set(nouveau["style"].dropna()) == {"Art_Nouveau"}  # the label, not the folder name
    mojibake = table[table["group"] == "Naive_Art_Primitivism/grã©goire-michonze_birds.jpg"]
    assert mojibake["image"].item() == str(SAMPLES / "wikiart" / "Naive_Art_Primitivism/grã©goire-michonze_birds.jpg")
    assert table["group"].str.contains("ã\xadn-sorolla").sum() > 0
    assert pd.isna(table.loc[table["group"] == fake.CONTRADICTED, "genre"].item())


def test_fake_folder_reads_with_its_quirks(tmp_path) -> None:
    fake.make(tmp_path)
    dataset = wikiart.wikiart_dataset(root=str(tmp_path))
    table = dataset.table.set_index("group")
    assert dataset.layout == "artgan" and list(dataset.table.columns) == [
        "image", "group", "split", "style", "genre", "artist"
    ]  # fmt: skip
    rows = fake.artgan_rows()
    assert set(table.index) == set(rows) and len(table) == len(rows)
    assert table.loc[fake.MOJIBAKE, "image"] == str(tmp_path / "wikiart" / fake.MOJIBAKE)
    assert table.loc[fake.NEL, "style"] == "Romanticism"  # \x85 inside a path did not split the line
    nouveau = table[table.index.str.startswith("Art_Nouveau_Modern/")]
    assert len(nouveau) == 3 and set(nouveau["style"]) == {"Art_Nouveau"}
    for image, labels in rows.items():
        split = table.loc[image, "split"]
        assert (split == "test") == any(s == "val" for s, _ in labels.values())
        for target in wikiart.TARGETS:
            cell = table.loc[image, target]
            listed = labels.get(target)
            contradicted = image == fake.CONTRADICTED and target == "genre"
            val_elsewhere = listed is not None and split == "test" and listed[0] == "train"
            if listed is None or contradicted or val_elsewhere:
                assert pd.isna(cell), (image, target)
            else:
                assert cell == listed[1], (image, target)
    assert table.loc[fake.CONFLICT, "split"] == "test" and table.loc[fake.CONFLICT, "artist"] == "Pierre_Auguste_Renoir"
    assert pd.isna(table.loc[fake.CONFLICT, "style"])


def test_line_endings_do_not_change_the_table(tmp_path) -> None:
    fake.make(tmp_path / "a", line_endings="artgan")
    fake.make(tmp_path / "b", line_endings="swapped")
    assert b"\r\n" in (tmp_path / "a/artgan/Style/style_train.csv").read_bytes()
    assert b"\r\n" in (tmp_path / "b/artgan/Artist/artist_train").read_bytes()
    a = wikiart.artgan_table(tmp_path / "a").drop(columns="image")
    b = wikiart.artgan_table(tmp_path / "b").drop(columns="image")
    pd.testing.assert_frame_equal(a, b)


def test_validation_is_carved_from_train_by_a_fixed_hash(tmp_path) -> None:
    fake.make(tmp_path)
    table = wikiart.artgan_table(tmp_path)
    val = set(table.loc[table["split"] == "val", "group"])
    assert val and val == {
        image for image in table.loc[table["split"] != "test", "group"] if wikiart.in_validation(image, 0.15, 0)
    }
    again = wikiart.artgan_table(tmp_path, val_fraction=0.15, val_seed=0)
    assert set(again.loc[again["split"] == "val", "group"]) == val
    other = wikiart.artgan_table(tmp_path, val_fraction=0.15, val_seed=1)
    assert set(other.loc[other["split"] == "val", "group"]) != val
    assert (other["split"] == "test").sum() == (table["split"] == "test").sum()  # test never moves
    digest = hashlib.md5(b"0:Impressionism/claude-monet_fake-9.jpg").digest()  # the rule, spelled out
    assert (int.from_bytes(digest[:8], "big") < 0.15 * 2**64) == ("Impressionism/claude-monet_fake-9.jpg" in val)


def test_labelled_for_keeps_the_images_of_a_target(tmp_path) -> None:
    fake.make(tmp_path)
    full = wikiart.wikiart_dataset(root=str(tmp_path)).table
    artist = wikiart.wikiart_dataset(root=str(tmp_path), labelled_for=["artist"]).table
    assert len(artist) == full["artist"].notna().sum() < len(full)
    assert artist["style"].notna().any()  # the other columns stay, as metadata
    with pytest.raises(ArtbenchError, match=r"labelled_for names \['media'\]"):
        wikiart.wikiart_dataset(root=str(tmp_path), labelled_for=["media"])


def test_corrupt_and_missing_images_are_reported(tmp_path) -> None:
    fake.make(tmp_path)
    dataset = wikiart.wikiart_dataset(root=str(tmp_path))
    assert [Path(p).name for p in require_images(dataset)] == ["ilya-repin_fake-4.jpg"]  # a warning, not an error
    cache = prepare_cache(dataset, 8)
    skipped = sorted(Path(p).name for p in dataset.table["image"].iloc[cache.skipped])
    assert skipped == ["ilya-repin_fake-4.jpg", "rembrandt_fake-2.jpg"]


def test_absent_or_unknown_layout_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ArtbenchError, match=r"WikiArt is not in .*datasets download wikiart.*huggan/wikiart"):
        wikiart.wikiart_dataset(root=str(tmp_path))
    fake.make(tmp_path)
    with pytest.raises(ArtbenchError, match=r"WikiArt \(huggan layout\) is not in"):
        wikiart.wikiart_dataset(root=str(tmp_path), layout="huggan")
    with pytest.raises(ArtbenchError, match="layout 'kaggle' is unknown"):
        wikiart.wikiart_dataset(root=str(tmp_path), layout="kaggle")


def test_huggan_parquet_layout_extracts_once_and_maps_names(tmp_path, monkeypatch) -> None:
    pytest.importorskip("pyarrow")
    fake.make_parquet(tmp_path)
    dataset = wikiart.wikiart_dataset(root=str(tmp_path))
    assert dataset.layout == "huggan" and "split" not in dataset.table.columns
    table = dataset.table
    assert len(table) == 5 and table["group"].is_unique
    assert table["artist"].fillna("?").tolist()[:3] == ["Albrecht_Durer", "?", "Vincent_van_Gogh"]  # id 25: ArtGAN 0
    assert table["artist"].tolist()[3:] == ["joaquã\xadn-sorolla", "hieronymus-bosch"]  # others keep theirs
    assert pd.isna(table["genre"][2]) and table["genre"][3] == "landscape"  # Unknown Genre is missing
    assert table["style"].tolist() == [s for rows in fake.HF_ROWS for _, _, s in rows]
    assert table["image"][2].endswith(".png")
    require_images(dataset)
    assert prepare_cache(dataset, 8).images.shape == (5, 8, 8, 3)
    assert not (tmp_path / "hf-images.extracting").exists()

    monkeypatch.setattr(wikiart, "extract_hf_images", lambda *a: pytest.fail("extracted the images again"))
    assert wikiart.wikiart_dataset(root=str(tmp_path)).table.equals(table)
    monkeypatch.undo()
    shard = next((tmp_path / "data").glob("*00001-of*"))
    shard.rename(shard.with_name("train-00001-of-00002.parquet.off"))  # the set of shards changed
    assert len(wikiart.wikiart_dataset(root=str(tmp_path)).table) == 2
    assert len(list((tmp_path / "hf-images").glob("*.jpg"))) == 2


def test_artgan_layout_wins_unless_huggan_is_asked_for(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    fake.make(tmp_path)
    fake.make_parquet(tmp_path)
    assert wikiart.wikiart_dataset(root=str(tmp_path)).layout == "artgan"
    assert wikiart.wikiart_dataset(root=str(tmp_path), layout="huggan").layout == "huggan"


def test_parquet_without_class_names_is_refused(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    image = pa.array([{"bytes": b"\xff\xd8", "path": None}])
    pq.write_table(pa.table({"image": image, "artist": [0], "genre": [0], "style": [0]}), tmp_path / "data/x.parquet")
    with pytest.raises(ArtbenchError, match="lacks the Hugging Face feature metadata"):
        wikiart.wikiart_dataset(root=str(tmp_path))
    assert not (tmp_path / "hf-images").exists() and not (tmp_path / "hf-images.extracting").exists()


# --------------------------------------------------------------------------------------------------
# Download


def zip_with_legacy_names(files: dict[str, bytes]) -> bytes:
    """A zip whose non-ASCII names are UTF-8 bytes *without* the UTF-8 flag, as Linux zip tools write them."""
    buffer = io.BytesIO()
    placeholders = {}
    with zipfile.ZipFile(buffer, "w") as zf:
        for k, (name, data) in enumerate(files.items()):
            raw = name.encode()
            placeholder = f"{k:04d}".encode().ljust(len(raw), b"_")  # ASCII: the flag stays off
            placeholders[placeholder] = raw
            zf.writestr(placeholder.decode(), data)
    blob = buffer.getvalue()
    for placeholder, raw in placeholders.items():
        blob = blob.replace(placeholder, raw)  # local header and central directory; CRCs cover data only
    return blob


def fake_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str = "wikiart/") -> Path:
    """Serve the split files (a 'GitHub' folder with the space of 'WikiArt Dataset') and the zip via file://."""
    source = tmp_path / "source"
    fake.make(source, bad_images=False)
    github = tmp_path / "github" / "WikiArt Dataset"
    shutil.copytree(source / "artgan", github)
    images = {f"{folder}{p.relative_to(source / 'wikiart')}": p.read_bytes() for p in source.rglob("*.jpg")}
    images["__MACOSX/wikiart/Baroque/._rembrandt_fake-2.jpg"] = b"resource fork"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "wikiart.zip").write_bytes(zip_with_legacy_names(images))
    monkeypatch.setattr(wikiart, "ARTGAN_URL", github.as_uri())
    monkeypatch.setattr(wikiart, "IMAGES_URL", (mirror / "wikiart.zip").as_uri())
    md5 = {name: hashlib.md5((github / name).read_bytes()).hexdigest() for name in wikiart.SPLIT_MD5}
    monkeypatch.setattr(wikiart, "SPLIT_MD5", md5)
    return source


def test_download_then_run_end_to_end(tmp_path, monkeypatch, capsys) -> None:
    source = fake_remote(tmp_path, monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("ARTBENCH_DATA", str(home))
    code, out, err = run_cli(capsys, "datasets", "download", "wikiart")
    assert code == 0, err
    assert "38 images of 38 groups" in out
    root = home / "wikiart"
    assert (root / "wikiart" / fake.MOJIBAKE).read_bytes() == (source / "wikiart" / fake.MOJIBAKE).read_bytes()
    assert sorted(p.name for p in root.iterdir()) == ["artgan", "wikiart"]  # zip and staging gone
    assert not (root / "wikiart" / "__MACOSX").exists()

    code, _, err = run_cli(capsys, "run", "wikiart", "mtl", "--out", str(tmp_path / "out"), *QUICK)
    assert code == 0, err
    predictions = pd.read_csv(next((tmp_path / "out").rglob("predictions.csv")), keep_default_na=False)
    assert len(predictions) == 10  # the images of the ArtGAN val files
    assert set(predictions.loc[predictions["artist.true"] != "", "artist.true"]) == {
        "Claude_Monet", "Ilya_Repin", "Rembrandt", "Pierre_Auguste_Renoir"
    }  # fmt: skip


@pytest.mark.parametrize("task", ["wikiart-style", "wikiart-genre", "wikiart-artist"])
def test_single_target_tasks_run(tmp_path, monkeypatch, capsys, task) -> None:
    fake.make(tmp_path / "home" / "wikiart", bad_images=False)
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "home"))
    code, _, err = run_cli(capsys, "run", task, "mtl", "--out", str(tmp_path / "out"), *QUICK)
    assert code == 0, err
    target = task.removeprefix("wikiart-")
    predictions = pd.read_csv(next((tmp_path / "out").rglob("predictions.csv")), keep_default_na=False)
    # the labels of the ArtGAN val files (genre: the contradicted path has none)
    assert (predictions[f"{target}.true"] != "").sum() == {"style": 9, "genre": 6, "artist": 8}[target]


def test_top_level_style_folders_and_unsafe_zips(tmp_path, monkeypatch) -> None:
    fake_remote(tmp_path, monkeypatch, folder="")
    wikiart.download_wikiart(tmp_path / "home")
    assert (tmp_path / "home" / "wikiart" / fake.NEL).is_file()

    evil = tmp_path / "evil"
    evil.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("wikiart/Baroque/a.jpg", b"x")
        zf.writestr("../escaped.jpg", b"x")
    (evil / "wikiart.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ArtbenchError, match=r"holds a path outside its folder \('../escaped.jpg'\)"):
        wikiart.extract_images(evil / "wikiart.zip", evil)
    assert sorted(p.name for p in evil.iterdir()) == ["wikiart.zip"]
    (evil / "wikiart.zip").write_bytes(buffer.getvalue()[:50])
    with pytest.raises(ArtbenchError, match=r"cannot extract .*delete it and download again"):
        wikiart.extract_images(evil / "wikiart.zip", evil)


def test_a_split_file_with_the_wrong_checksum_is_not_kept(tmp_path, monkeypatch) -> None:
    fake_remote(tmp_path, monkeypatch)
    monkeypatch.setitem(wikiart.SPLIT_MD5, "Genre/genre_val.csv", "0" * 32)
    with pytest.raises(ArtbenchError, match=r"genre_val\.csv is damaged .*differs from the expected 0000"):
        wikiart.download_wikiart(tmp_path / "home")
    assert not list((tmp_path / "home" / "artgan" / "Genre").glob("genre_val.csv*"))
