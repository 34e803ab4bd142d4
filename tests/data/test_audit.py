"""Leakage audit (artbench.data.audit): the pHash, the three kinds of pair, the union-find fix, and the findings of
the review of the real 2022 SILKNOW split (research notes review-2026-11, item 4f) on the real collection files."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.data import audit
from artbench.datasets import silknow
from tests.conftest import SHARED
from tests.data.silknow import make

SAMPLES_2022 = SHARED / "samples" / "silknow" / "multimodal_2022"


def reencoded(image: Image.Image, size: int, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.resize((size, size), Image.BILINEAR).save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_phash_of_a_flat_image_has_only_the_dc_bit() -> None:
    # DCT of a constant: DC > 0, all 63 other coefficients 0 = the median, so only the first (top) bit is set.
    assert audit.phash_of_pixels(np.full((32, 32), 100.0)) == 1 << 63
    assert audit.phash(Image.new("RGB", (50, 70), (200, 10, 10))) == 1 << 63


def test_phash_survives_reencoding_but_tells_pictures_apart() -> None:
    rng = np.random.default_rng(0)
    pictures = [make.smooth_image(rng, 64) for _ in range(12)]
    hashes = [audit.phash(p) for p in pictures]
    for picture, h in zip(pictures, hashes, strict=True):
        assert audit.hamming(h, audit.phash(reencoded(picture, 51, 60))) <= audit.DEFAULT_THRESHOLD
        mirrored = audit.phash(picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        assert audit.hamming(h, mirrored) > audit.DEFAULT_THRESHOLD  # odd horizontal frequencies flip sign
    distinct = [audit.hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distinct) > 2 * audit.DEFAULT_THRESHOLD


def test_a_copy_stored_sideways_with_an_exif_orientation_is_a_near_duplicate(tmp_path) -> None:
    """A camera's copy stored rotated, with EXIF orientation 6 ("rotate 90° clockwise to view"), shows the same
    picture: hashed upright, it is a near pair; hashed as stored, it would not be."""
    picture = make.smooth_image(np.random.default_rng(1), 64)
    picture.save(tmp_path / "a.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    picture.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "b.jpg", quality=95, exif=exif)
    hashes = audit.hash_images([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], workers=1)
    a, b = hashes.phashes
    assert audit.hamming(int(a), int(b)) <= audit.DEFAULT_THRESHOLD
    stored = audit.phash(Image.open(tmp_path / "b.jpg"))
    assert audit.hamming(int(a), stored) > audit.DEFAULT_THRESHOLD


def test_close_hashes_blockwise_equal_brute_force(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, 40, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, (40, 3)).astype(np.uint64)
    hashes = np.concatenate([base, base ^ flips[:, 0] ^ flips[:, 1], base ^ flips[:, 0] ^ flips[:, 1] ^ flips[:, 2]])
    monkeypatch.setattr(audit, "_BLOCK", 7)  # blocks that do not divide the 120 hashes
    for threshold in (0, 2, 3):
        i, j, d = audit._close_hashes(hashes, threshold)
        full = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
        expected = {(a, b) for a, b in zip(*np.nonzero(full <= threshold), strict=True) if a < b}
        assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
        assert (d == full[i, j]).all()


def toy_table() -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.DataFrame(
        {
            "image": ["/a/m__r1__x.jpg", "/a/m__r2__x.jpg", "/a/m__r1__y.jpg", "/a/n__r3__x.jpg", "/b/m__r2__y.jpg"],
            "group": ["m__r1", "m__r2", "m__r1", "n__r3", "m__r2"],
        }
    )
    return table, np.array(["val", "train", "val", "test", "train"])


def test_same_name_pairs_compare_the_name_key_across_groups() -> None:
    table, split = toy_table()
    pairs = audit.same_name_pairs(table, split, silknow.image_name_key)
    assert list(pairs.columns) == list(audit.PAIR_COLUMNS)
    # m__x: r1 (val) and r2 (train); m__y: r1 (val) and r2 (train); n__x is another museum's picture.
    assert pairs[["split_a", "split_b", "group_a", "group_b"]].values.tolist() == [
        ["train", "val", "m__r2", "m__r1"],
        ["train", "val", "m__r2", "m__r1"],
    ]
    assert pairs["distance"].isna().all()
    folders = pd.DataFrame({"image": ["/a/x.jpg", "/b/x.jpg", "/c/x.jpg"], "group": ["g1", "g2", "g2"]})
    by_file_name = audit.same_name_pairs(folders, np.array(["test", "val", "val"]))  # default key: the file name
    assert by_file_name[["split_a", "split_b", "image_a", "image_b"]].values.tolist() == [
        ["val", "test", "/b/x.jpg", "/a/x.jpg"],
        ["val", "test", "/c/x.jpg", "/a/x.jpg"],
    ]  # b and c share group g2: not a pair


def test_leak_free_split_follows_chains() -> None:
    table = pd.DataFrame({"image": list("abcdefg"), "group": ["A", "B", "C", "D", "E", "F", "C"]})
    split = np.array(["val", "test", "test", "test", "val", "test", "test"])
    pairs = pd.DataFrame({"group_a": ["A", "B", "E"], "group_b": ["B", "C", "D"]})  # A-B-C chain, D-E
    fixed, moved = audit.leak_free_split(table, split, pairs)
    assert fixed.tolist() == ["val", "val", "val", "val", "val", "test", "val"]  # F untouched
    assert moved == 4


@pytest.fixture(scope="module")
def fake_2019(tmp_path_factory: pytest.TempPathFactory):
    return make.make_2019(tmp_path_factory.mktemp("silknow-2019"))


def test_audit_of_the_fake_2019_release(fake_2019) -> None:
    table = silknow.silknow_dataset(root=str(fake_2019)).table
    report = audit.audit_split(table, table["split"], silknow.image_name_key)
    assert (report.images, report.groups, report.hashed, report.missing, report.unreadable) == (20, 20, 18, 1, 1)
    found = report.pairs.assign(
        a=report.pairs["image_a"].map(audit.file_name), b=report.pairs["image_b"].map(audit.file_name)
    )
    assert found[["kind", "split_a", "split_b", "a", "b"]].values.tolist() == [
        ["exact", "train", "test", *make.EXACT_2019],
        ["near", "train", "val", *make.NEAR_2019],
    ]
    assert found["distance"].tolist() == [0, 0]  # the re-encoded copy keeps its pHash
    assert report.counts()["near"] == {
        "train-train": 0, "train-val": 1, "train-test": 0, "val-val": 0, "val-test": 0, "test-test": 0
    }  # fmt: skip
    fixed, moved = audit.leak_free_split(table, table["split"], report.pairs)
    assert moved == 2 and set(fixed[table["image"].map(audit.file_name).isin([*make.EXACT_2019, *make.NEAR_2019])]) == {
        "train"
    }


@pytest.mark.skipif(not SAMPLES_2022.is_dir(), reason="needs ../shared/samples/silknow/multimodal_2022")
def test_real_2022_split_same_name_findings(tmp_path) -> None:
    """Review 2026-11, item 4f: 9 museum image names under two records, 5 of them across splits."""
    table = silknow.silknow_table(SAMPLES_2022, tmp_path)  # no image files: names only
    report = audit.audit_split(table, table["split"], silknow.image_name_key)
    assert report.kinds == ("same_name",) and report.missing == len(table) == 36043
    pairs = report.pairs
    keys = pairs["image_a"].map(silknow.image_name_key)
    assert (keys == pairs["image_b"].map(silknow.image_name_key)).all() and keys.nunique() == 9
    across = pairs[pairs["split_a"] != pairs["split_b"]]
    names = across["image_a"].map(silknow.image_name_key)
    assert sorted(zip(across["split_a"], across["split_b"], names, strict=True)) == [
        ("train", "test", "imatex__5849_0.jpg"),
        ("train", "test", "imatex__5849_1.jpg"),
        ("train", "test", "imatex__5849_2.jpg"),
        ("train", "val", "garin__T000444_ANV.jpg"),
        ("train", "val", "garin__T000444_REV.jpg"),
    ]
    assert report.counts()["same_name"] == {
        "train-train": 4, "train-val": 2, "train-test": 3, "val-val": 0, "val-test": 0, "test-test": 0
    }  # fmt: skip
    fixed, moved = audit.leak_free_split(table, table["split"], pairs)
    moved_groups = set(table.loc[fixed != table["split"].to_numpy(), "group"])
    assert moved == 5 and moved_groups == {
        "garin__a97bde83-20a0-38fa-bd44-58dbeeec12cc",  # val -> train, beside garin__86fb209d
        "imatex__12d2be93-8081-314d-917e-014ea16a53fb",  # test -> train, beside imatex__47849e77
    }
