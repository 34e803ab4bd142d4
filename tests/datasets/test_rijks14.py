"""Rijks'14 adapter: the challenge's targets, class filters and official split, the xml2 records, and the download.

The real-file tests read the byte-exact ``rijksgt.mat`` and five ``jpg2`` images in ``../shared/samples/rijks14``
and compare with the numbers of the research notes §2.2-2.5 and the expected outputs of tmensink/rijkschallenge.
Everything else runs on the fake release of ``tests/data/rijks14/make.py``.
"""

import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
import tomllib
import zipfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artbench.core.dataset import DATASETS
from artbench.core.errors import ArtbenchError
from artbench.data.task_data import prepare_task
from artbench.datasets import rijks14
from artbench.tasks import load_task
from tests.conftest import SHARED
from tests.data.rijks14 import make

SAMPLES = SHARED / "samples" / "rijks14"
ABB = "abb\x1a\x1a, hendrik"
EVERDINGEN = "everdingen, caesar botius van"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make.make(tmp_path_factory.mktemp("rijks14"))


def row(table: pd.DataFrame, number: int) -> pd.Series:
    """The table row of 1-based image ``number``."""
    return table.iloc[number - 1]


def test_targets_follow_the_challenge_filters(fake: Path) -> None:
    table = rijks14.rijks14_table(fake)
    assert len(table) == 62 and table["group"].is_unique and row(table, 1)["group"] == "0000001"
    assert table["split"].value_counts().to_dict() == {"test": 50, "train": 7, "val": 5}
    # 374+rest rule: 9 test images (maris), no val image (rembrandt), anoniem and unknown all go to `rest`.
    assert table["creator"].value_counts().to_dict() == {"rest": 37, ABB: 13, EVERDINGEN: 12}
    assert row(table, 1)["creator"] == ABB  # the exact name, SUB bytes included
    assert row(table, 48)["creator"] == "rest" and row(table, 48)["creator_name"] == "anoniem"
    # Types: tekening (9 test) and aak (train only) dropped, the types without data never appear.
    assert row(table, 1)["type"] == "prent|schilderij" and row(table, 26)["type"] == "prent"
    assert row(table, 60)["type"] == ""  # no type at all: a known, empty label set
    # Materials: inkt (no val image) and the empty name (index 1) dropped.
    assert row(table, 1)["material"] == "olieverf|doek" and row(table, 37)["material"] == "papier"
    assert row(table, 48)["material"] == "papier|chine coll\x1a\x1a"
    assert row(table, 61)["material"] == ""
    labels = {c: Counter(x for cell in table[c] for x in cell.split("|") if x) for c in ("type", "material")}
    assert set(labels["type"]) == {"prent", "schilderij"}
    assert set(labels["material"]) == {"olieverf", "doek", "papier", "chine coll\x1a\x1a"}
    # Years: mean of start and end where the span is below 100 years; [0 0] is unknown by default.
    years = {n: row(table, n)["year"] for n in (1, 14, 26, 37, 48, 60)}
    assert years[1] == 1655.0 and np.isnan(years[14]) and years[26] == 1849.5
    assert np.isnan(years[37]) and years[48] == 1675.0 and years[60] == -475.0  # start > end; BC
    assert table.groupby("split")["year"].count().to_dict() == {"test": 30, "train": 5, "val": 4}
    baseline = rijks14.rijks14_table(fake, year_zero_as_unknown=False)
    assert row(baseline, 37)["year"] == 0.0
    assert baseline.groupby("split")["year"].count().to_dict() == {"test": 40, "train": 6, "val": 4}


def test_image_paths_and_dublin_core_fields(fake: Path, tmp_path: Path) -> None:
    table = rijks14.rijks14_table(fake)
    assert row(table, 1)["image"] == str(fake / "jpg2" / "0000001_SK-A-1001.jpg")
    assert Path(row(table, 1)["image"]).is_file() and Path(row(table, make.CORRUPT_ROW)["image"]).is_file()
    missing = row(table, make.MISSING_ROW)  # no JPEG: the name comes from its xml2 record
    assert missing["image"] == str(fake / "jpg2" / "0000005_SK-A-1005.jpg") and not Path(missing["image"]).exists()
    assert missing["object_number"] == "SK-A-1005"
    maris = row(table, 26)
    assert maris["dc_creator"] == "prentmaker: Maris, Matthijs|naar ontwerp van: Heemskerck, Maarten van"
    assert maris["dc_creator_role"] == "prentmaker|naar ontwerp van"
    assert (maris["dc_type"], maris["dc_material"], maris["dc_technique"]) == ("prent|tekening", "papier", "etsen")
    assert maris["dc_date"] == "1800 – 1899"
    assert row(table, 48)["dc_material"] == "papier|chine collé"  # the XML has the real letter
    assert pd.isna(row(table, 37)["dc_date"]) and pd.isna(row(table, 60)["dc_creator"])

    # Without xml2/ the records' columns are empty and an image without a file gets a row-only name.
    copy = tmp_path / "copy"
    shutil.copytree(fake, copy, ignore=shutil.ignore_patterns("xml2"))
    bare = rijks14.rijks14_table(copy)
    assert bare[list(rijks14.XML_COLUMNS)].isna().all().all()
    assert row(bare, 1)["object_number"] == "SK-A-1001"
    assert row(bare, make.MISSING_ROW)["image"] == str(copy / "jpg2" / "0000005.jpg")
    assert pd.isna(row(bare, make.MISSING_ROW)["object_number"])


def test_dublin_core_parser_handles_entities_and_bare_prefixes() -> None:
    record = (
        "<metadata><dc:creator>schilder: Abb&#233;, Hendrik</dc:creator><dc:creator>Onbekend</dc:creator>"
        "<dc:identifier>COLLECT.1</dc:identifier><dc:identifier>SK-C-5</dc:identifier>"
        "<dc:format>materiaal: goud &amp; zilver</dc:format><dc:format>materiaal:</dc:format>"
        '<dc:title>Portret</dc:title><dc:type lang="nl">\n  prent\n</dc:type></metadata>'
    )
    assert rijks14.parse_dc_record(record) == {
        "object_number": "SK-C-5",
        "dc_creator": "schilder: Abbé, Hendrik|Onbekend",
        "dc_creator_role": "schilder",
        "dc_type": "prent",
        "dc_material": "goud & zilver",
        "dc_technique": None,
        "dc_date": None,
    }


def test_tasks_encode_the_fake_release(fake: Path) -> None:
    expected = {"creator": 3, "type": 2, "material": 4}
    for name in ("rijks14", "rijks14-creator", "rijks14-type", "rijks14-material", "rijks14-year"):
        task = load_task(name)
        data = prepare_task(replace(task, dataset_options={**task.dataset_options, "root": str(fake)}))
        assert Counter(data.split.tolist()) == {"test": 50, "train": 7, "val": 5}
        for spec, codes in zip(data.targets, data.labels, strict=True):
            assert not spec.has_background  # `rest` is one of the averaged classes, as in the challenge's MCA
            if spec.kind == "regression":
                assert int(spec.known(codes).sum()) == 39
            else:
                assert spec.num_classes == expected[spec.name] and spec.known(codes).all()
                assert spec.kind == ("multiclass" if spec.name == "creator" else "multilabel")
    assert DATASETS.get("rijks14").info.splits == "official"


def test_broken_sources_are_clear_errors(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtbenchError, match=r"run `artbench datasets download rijks14`"):
        DATASETS.get("rijks14").build(root=str(tmp_path))
    (tmp_path / "rijksgt.mat").write_bytes(b"not a MAT-file")
    with pytest.raises(ArtbenchError, match="cannot read"):
        rijks14.read_ground_truth(tmp_path / "rijksgt.mat")
    copy = tmp_path / "copy"
    shutil.copytree(fake, copy)
    (copy / "jpg2" / "0000063_SK-A-9.jpg").write_bytes(b"")
    with pytest.raises(ArtbenchError, match=r"rows 1-62; the folder does not belong"):
        rijks14.rijks14_table(copy)
    (copy / "jpg2" / "0000063_SK-A-9.jpg").unlink()
    (copy / "jpg2" / "0000002_SK-A-2.jpg").write_bytes(b"")
    with pytest.raises(ArtbenchError, match="two files for row 2"):
        rijks14.rijks14_table(copy)


# --------------------------------------------------------------------------------------------------
# The real ground truth


@pytest.fixture(scope="module")
def real() -> tuple[rijks14.GroundTruth, pd.DataFrame]:
    if not (SAMPLES / "rijksgt.mat").is_file():
        pytest.skip("needs ../shared/samples/rijks14 (the real rijksgt.mat)")
    return rijks14.read_ground_truth(SAMPLES / "rijksgt.mat"), rijks14.rijks14_table(SAMPLES)


def test_real_file_quirks(real) -> None:
    truth, _ = real
    assert truth.num_images == 112039 and len(truth.creator_names) == 6622
    assert truth.creator_names[-2:] == ["anoniem", "unknown"]
    assert sum("\x1a\x1a" in name for name in truth.creator_names) == 422
    assert "abb\x1a\x1a, hendrik" in truth.creator_names
    assert truth.material_names[0] == "" and int(np.count_nonzero(truth.materials[:, 0])) == 47
    assert not truth.types[:, [206, 1049]].any()  # "Two types have no data id 207 and 1050" (1-based)
    assert int((truth.years == 0).all(axis=1).sum()) == 800
    assert int((truth.years[:, 0] > truth.years[:, 1]).sum()) == 56


def test_real_targets_reproduce_the_challenge(real) -> None:
    _, table = real
    assert table["split"].value_counts().to_dict() == {"train": 78427, "test": 22408, "val": 11204}
    assert table["creator"].nunique() == 375 and "rest" in set(table["creator"])
    test = table[table["split"] == "test"]
    assert round(100 * (test["creator"] != "rest").mean(), 1) == 59.1  # rijks_eval.m: ii 374 (59.1)
    by_size = test.loc[test["creator"] != "rest", "creator"].value_counts(sort=False)
    top100 = by_size.sort_values(ascending=False, kind="stable").index[:100]
    assert round(100 * test["creator"].isin(top100).mean(), 1) == 36.8  # ii 100 (36.8)
    for target, classes, coverage in (("type", 103, (96.3, 94.9, 92.2)), ("material", 81, (98.5, 98.0, 96.1))):
        labels = table[target].str.split("|").explode()
        assert labels[labels != ""].nunique() == classes
        hot = test[target].str.get_dummies(sep="|").drop(columns="", errors="ignore")  # "" = no label
        order = hot.sum().sort_values(ascending=False, kind="stable").index
        shares = tuple(round(100 * hot[order[:k]].any(axis=1).mean(), 1) for k in (75, 50, 25))
        assert shares == coverage  # rijks_eval.m: ii 75 / 50 / 25 (% of test images)
    assert table.groupby("split")["year"].count().to_dict() == {"train": 76368, "val": 10898, "test": 21837}


def test_real_year_baseline_keeps_zero_dates(real) -> None:
    truth, _ = real
    year = rijks14.year_targets(truth.years, zero_as_unknown=False)
    counts = {s: int(np.isfinite(year[truth.split == k]).sum()) for k, s in rijks14.SPLIT_NAMES.items()}
    assert counts == {"train": 76934, "val": 10964, "test": 22005} and sum(counts.values()) == 109903
    # The challenge's mean predictor (exp_rijks_year.m) from our targets matches the reported numbers exactly.
    train, test = year[truth.split == 1], year[truth.split == 3]
    errors = np.abs(test[np.isfinite(test)] - np.nanmean(train))
    reported = tomllib.loads(Path("baselines/mensink2014.toml").read_text())["reported"]["mean_predictor"]
    assert np.sqrt(np.mean(errors**2)) == pytest.approx(reported["rmse"]["year"], abs=0.005)
    assert errors.mean() == pytest.approx(reported["mae"]["year"], abs=0.005)
    assert 100 * np.mean(errors <= 50) == pytest.approx(reported["within_50"]["year"], abs=0.005)


def test_real_sample_images_carry_their_ground_truth(real) -> None:
    _, table = real
    present = table[table["image"].isin([str(p) for p in (SAMPLES / "jpg2").iterdir()])].set_index("group")
    assert len(present) == 5
    expected = {  # gt rows of the five copied images (notes §2.6)
        "0002768": ("train", "rest", "asch, pieter jansz. van", "schilderij", "olieverf|paneel", 1640.0),
        "0005413": ("val", "rest", "petitot, jean (le vieux)", "miniatuur", "email|goud", 1647.5),
        "0006893": ("test", "rest", "de porceleijne bijl", "vaas", "faience", 1775.0),
        "0031499": ("train", "bos, anthonie van den", "bos, anthonie van den", "prent", "papier", 1808.0),
        "0068651": ("train", "rest", "anoniem", "demonstratiemodel", "hout|messing", 1810.0),
    }
    columns = ["split", "creator", "creator_name", "type", "material", "year"]
    assert {g: tuple(present.loc[g, columns]) for g in expected} == expected
    assert present.loc["0068651", "object_number"] == "NG-MC-44"


# --------------------------------------------------------------------------------------------------
# Download through the figshare API (a loopback server)


class FakeFigshare:
    """The figshare API's file list and downloads for the fake release, plus files the download must skip."""

    def __init__(self, release: Path) -> None:
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as bundle:
            for image in sorted((release / "jpg2").iterdir()):
                bundle.write(image, f"jpg2/{image.name}")
        tarred = io.BytesIO()
        with tarfile.open(fileobj=tarred, mode="w:gz") as bundle:
            bundle.add(release / "xml2", arcname="xml2")
        self.blobs = {
            "rijksgt.mat": (release / "rijksgt.mat").read_bytes(),
            "jpg2.zip": zipped.getvalue(),
            "xml2.tar.gz": tarred.getvalue(),
            "rijksFV16.mat": b"\0" * 1000,
            "README.txt": b"read me",
        }
        self.md5 = {name: hashlib.md5(blob).hexdigest() for name, blob in self.blobs.items()}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.path.startswith("/v2/articles/5660617/files"):
                    page = 1 if "page=1&" in self.path else 2
                    body = json.dumps(fake.listing() if page == 1 else []).encode()
                    length = len(body)
                else:
                    name = list(fake.blobs)[int(self.path.rsplit("/", 1)[1])]
                    body = fake.blobs[name]
                    length = len(body)
                    if name in fake.truncate:
                        body = body[: length // 2]
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def listing(self) -> list[dict]:
        return [
            {
                "id": 9000 + i,
                "name": name,
                "size": len(blob),
                "is_link_only": False,
                "download_url": f"{self.url}/files/{i}",
                "supplied_md5": self.md5[name],
                "computed_md5": self.md5[name],
                "mimetype": "application/octet-stream",
            }
            for i, (name, blob) in enumerate(self.blobs.items())
        ]

    def downloads(self) -> list[str]:
        return [list(self.blobs)[int(p.rsplit("/", 1)[1])] for p in self.requests if p.startswith("/files/")]


@pytest.fixture
def figshare(fake: Path, monkeypatch: pytest.MonkeyPatch):
    server = FakeFigshare(fake)
    monkeypatch.setattr(rijks14, "API_URL", f"{server.url}/v2")
    yield server
    server.server.shutdown()


def test_download_through_the_figshare_api(figshare: FakeFigshare, fake: Path, tmp_path: Path) -> None:
    root = tmp_path / "rijks14"
    rijks14.download_rijks14(root)
    assert sorted(p.name for p in root.iterdir()) == ["jpg2", "rijksgt.mat", "xml2"]
    assert figshare.downloads() == ["rijksgt.mat", "jpg2.zip", "xml2.tar.gz"]  # no features, no README
    assert sorted(p.name for p in (root / "jpg2").iterdir()) == sorted(p.name for p in (fake / "jpg2").iterdir())
    assert len(list((root / "xml2").iterdir())) == 62
    table = DATASETS.get("rijks14").build(root=str(root)).table
    assert row(table, 26)["dc_type"] == "prent|tekening" and Path(row(table, 1)["image"]).is_file()

    figshare.requests.clear()
    rijks14.download_rijks14(root)  # everything is there: not even the file list is fetched
    assert figshare.requests == []


def test_a_cut_off_archive_is_not_kept(figshare: FakeFigshare, tmp_path: Path) -> None:
    """A cut-off download keeps only its ``.part`` file, to resume from; never a file under the final name."""
    figshare.truncate.add("jpg2.zip")
    root = tmp_path / "rijks14"
    with pytest.raises(ArtbenchError, match=r"jpg2\.zip: (download of|cannot download|.*run the command again)"):
        rijks14.download_rijks14(root)
    assert (root / "rijksgt.mat").is_file()  # verified files before it stay
    assert not (root / "jpg2").exists()
    assert all(p.name.startswith("jpg2.zip.part") for p in root.rglob("jpg2.zip*"))  # resume state only


def test_a_file_with_the_wrong_checksum_is_not_kept(figshare: FakeFigshare, tmp_path: Path) -> None:
    figshare.md5["rijksgt.mat"] = "0" * 32
    root = tmp_path / "rijks14"
    with pytest.raises(
        ArtbenchError, match=r"rijksgt\.mat: download of .* is damaged .*differs from the expected 0000"
    ):
        rijks14.download_rijks14(root)
    assert not list(root.rglob("rijksgt.mat*"))


def test_an_article_without_images_names_its_files(figshare: FakeFigshare, tmp_path: Path) -> None:
    del figshare.blobs["jpg2.zip"]
    with pytest.raises(ArtbenchError, match=r"lists no jpg file \(its files: rijksgt.mat, xml2.tar.gz, .*by hand"):
        rijks14.download_rijks14(tmp_path / "rijks14")
