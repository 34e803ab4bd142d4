"""SILKNOW adapter: collection/master file parsing, record groups, the official split, and the download code.

The real-file test reads the byte-exact copies of the release's collection files in ``../shared/samples`` and
compares with the counts documented in ``shared/research/datasets.md`` §1.4 (verified there independently).
"""

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.core.errors import ArtbenchError
from artbench.datasets import _download, silknow
from tests.conftest import SHARED, run_cli

SAMPLES = SHARED / "samples" / "silknow" / "multimodal_2022"

# Columns in another order than the real release, to check that targets are read by header name.
HEADER = "#image_file\t#material\t#place\t#timespan\t#technique\t"
RECORDS = {  # split -> [(record, number of images, material, place, timespan, technique)]
    "train": [
        ("a1", 2, "animal_fibre", "FR", "eighteenth century (dates CE)", "damask"),
        ("a2", 1, "vegetal_fibre", "ES", "nineteenth century (dates CE)", "velvet"),
        ("a3", 2, "animal_fibre", "nan", "nan", "nan"),
        ("a4", 1, "vegetal_fibre", "ES", "eighteenth century (dates CE)", "NaN"),
    ],
    "dev": [
        ("b1", 1, "animal_fibre", "FR", "nineteenth century (dates CE)", "damask"),
        ("b2", 2, "vegetal_fibre", "ES", "eighteenth century (dates CE)", "velvet"),
    ],
    "test": [
        ("c1", 1, "animal_fibre", "FR", "nineteenth century (dates CE)", "velvet"),
        ("c2", 2, "vegetal_fibre", "ES", "eighteenth century (dates CE)", "damask"),
    ],
}


def image_names() -> list[str]:
    return [f"mfa__{rec}__{rec}_{i}.jpg" for rows in RECORDS.values() for rec, n, *_ in rows for i in range(n)]


def write_collections(folder: Path) -> None:
    """Master and collection files in the release's format (trailing TAB on every line, ``nan`` missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in RECORDS.items():
        lines = [HEADER]
        for rec, n, *labels in rows:
            lines += [f"../../../data/img/mfa__{rec}__{rec}_{i}.jpg\t" + "\t".join(labels) + "\t" for i in range(n)]
        name = f"multimodal_image_centered_img_cent_{split}.txt"
        (folder / name).write_text("\n".join(lines) + "\n")
        master = {"train": "train", "dev": "val", "test": "test"}[split]
        (folder / f"masterfile_{master}.txt").write_text(name)  # no final newline, as in the release


def test_collection_files_parse_by_header_name(tmp_path) -> None:
    write_collections(tmp_path / "collections")
    table = silknow.silknow_table(tmp_path / "collections", tmp_path / "img")
    assert list(table.columns) == ["image", "group", "split", "material", "place", "timespan", "technique"]
    assert len(table) == 12
    assert table["group"].nunique() == 8 and table["group"][0] == "mfa__a1"
    assert table["image"][0] == str(tmp_path / "img" / "mfa__a1__a1_0.jpg")
    assert table["split"].value_counts().to_dict() == {"train": 6, "val": 3, "test": 3}
    row = table[table["group"] == "mfa__a3"].iloc[0]
    assert row["material"] == "animal_fibre" and pd.isna(row["place"]) and pd.isna(row["timespan"])
    assert pd.isna(table[table["group"] == "mfa__a4"]["technique"].iloc[0])  # `NaN` (2019 spelling) too
    assert table["timespan"][0] == "eighteenth century (dates CE)"  # spaces in labels survive


def test_malformed_collection_file_names_the_line(tmp_path) -> None:
    bad = tmp_path / "c.txt"
    bad.write_text("#image_file\t#place\t\na.jpg\tFR\t\nb.jpg\tFR\textra\t\n")
    with pytest.raises(ArtbenchError, match="line 3 has 3 fields, the header has 2"):
        silknow.read_collection_file(bad)
    bad.write_text("#place\t#image_file\t\nFR\ta.jpg\t\n")
    with pytest.raises(ArtbenchError, match="the header's first field is '#place', not '#image_file'"):
        silknow.read_collection_file(bad)
    bad.write_text("a.jpg\tFR\t\n")
    with pytest.raises(ArtbenchError, match="not a SILKNOW collection file"):
        silknow.read_collection_file(bad)
    with pytest.raises(ArtbenchError, match="does not start with"):
        silknow.record_of("photo.jpg")


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="needs ../shared/samples/silknow (real release files)")
def test_real_release_matches_documented_counts(tmp_path) -> None:
    table = silknow.silknow_table(SAMPLES, tmp_path)
    assert len(table) == 36043 and table["group"].nunique() == 22093
    by_split = table.groupby("split")
    assert by_split.size().to_dict() == {"train": 21465, "val": 7476, "test": 7102}
    assert by_split["group"].nunique().to_dict() == {"train": 13246, "val": 4409, "test": 4438}
    assert table.groupby("group")["split"].nunique().max() == 1  # records never straddle splits
    train = table[table["split"] == "train"]
    assert train["place"].value_counts().to_dict() == {
        "FR": 3357, "ES": 2827, "IT": 2496, "GB": 1956, "IR": 648, "IN": 636, "CN": 441, "JP": 359, "TR": 279
    }  # fmt: skip
    assert train["technique"].value_counts().to_dict() == {
        "embroidery": 2833, "damask": 1587, "velvet": 1577, "other_technique": 1467
    }  # fmt: skip
    assert train["material"].value_counts().to_dict() == {
        "animal_fibre": 13657, "vegetal_fibre": 1898, "metal_thread": 1796
    }  # fmt: skip
    assert train["timespan"].value_counts()["eighteenth century (dates CE)"] == 3775
    assert train[list(silknow.TARGETS)].isna().sum().to_dict() == {
        "place": 8466, "timespan": 10365, "technique": 14001, "material": 4114
    }  # fmt: skip
    for target in silknow.TARGETS:  # every class in every split
        classes = [set(part[target].dropna()) for _, part in by_split]
        assert classes[0] == classes[1] == classes[2]


def fake_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str = "img/", keep: float = 1.0) -> None:
    """Serve the release through file:// URLs: collection files on 'GitHub', an 8-part image tarball on 'Zenodo'.

    ``folder`` is the JPEGs' folder inside the archive; ``keep`` < 1 truncates the archive (a damaged upload).
    """
    github, zenodo = tmp_path / "github", tmp_path / "zenodo"
    write_collections(github)
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in image_names():
            jpeg = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(jpeg, "JPEG")
            info = tarfile.TarInfo(f"{folder}{name}")
            info.size = jpeg.tell()
            tar.addfile(info, io.BytesIO(jpeg.getvalue()))
    blob = buffer.getvalue()[: int(len(buffer.getvalue()) * keep)]
    zenodo.mkdir()
    step = -(-len(blob) // len(silknow.IMAGE_PARTS))
    for i, part in enumerate(silknow.IMAGE_PARTS):
        (zenodo / part).write_bytes(blob[i * step : (i + 1) * step])
    monkeypatch.setattr(silknow, "COLLECTIONS_URL", github.as_uri())
    monkeypatch.setattr(silknow, "IMAGES_URL", zenodo.as_uri())
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in github.iterdir()}
    monkeypatch.setattr(silknow, "COLLECTION_MD5", md5)


def test_download_then_run_end_to_end(tmp_path, monkeypatch, capsys) -> None:
    fake_remote(tmp_path, monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("ARTBENCH_DATA", str(home))
    quick = ["--set", "backbone=tiny_cnn", "--set", "weights=none", "--set", "finetune_blocks=-1"]
    quick += ["--set", "image_size=32", "--set", "batch_size=4", "--set", "max_epochs=1", "--device", "cpu"]
    code, _, err = run_cli(capsys, "run", "silknow", "mtl", "--out", str(tmp_path / "out"), *quick)
    assert code == 2 and "run `artbench datasets download silknow`" in err
    assert not any((tmp_path / "out").rglob("*"))  # nothing half-made

    code, out, _ = run_cli(capsys, "datasets", "download", "silknow")
    assert code == 0 and "12 images of 8 groups" in out
    assert sorted(p.name for p in (home / "silknow" / "img").iterdir()) == sorted(image_names())
    assert not (home / "silknow" / "parts").exists()

    code, _, err = run_cli(capsys, "run", "silknow", "mtl", "--out", str(tmp_path / "out"), *quick)
    assert code == 0, err
    predictions = pd.read_csv(next((tmp_path / "out").rglob("predictions.csv")), keep_default_na=False)
    assert len(predictions) == 3  # the official test split: records c1 (1 image) and c2 (2 images)
    assert set(predictions["place.true"]) == {"FR", "ES"}


def test_download_refuses_datasets_without_one(capsys) -> None:
    code, _, err = run_cli(capsys, "datasets", "download", "csv")
    assert code == 2 and "cannot be downloaded; downloadable datasets: silknow" in err


def test_archive_with_jpegs_at_its_top_level(tmp_path, monkeypatch) -> None:
    fake_remote(tmp_path, monkeypatch, folder="")
    silknow.download_silknow(tmp_path / "home")
    assert len(list((tmp_path / "home" / "img").iterdir())) == 12
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["collections", "img"]


def test_a_damaged_archive_is_a_clear_error(tmp_path, monkeypatch) -> None:
    fake_remote(tmp_path, monkeypatch, keep=0.6)
    with pytest.raises(ArtbenchError, match=r"cannot extract the SILKNOW image archive .*download again"):
        silknow.download_silknow(tmp_path / "home")
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["collections", "parts"]


def test_a_collection_file_with_the_wrong_checksum_is_not_kept(tmp_path, monkeypatch) -> None:
    fake_remote(tmp_path, monkeypatch)
    monkeypatch.setitem(silknow.COLLECTION_MD5, "masterfile_val.txt", "0" * 32)
    with pytest.raises(ArtbenchError, match=r"masterfile_val\.txt is damaged .*differs from the expected 0000"):
        silknow.download_silknow(tmp_path / "home")
    assert not list((tmp_path / "home" / "collections").glob("masterfile_val.txt*"))


def test_a_cut_off_download_is_not_kept(tmp_path) -> None:
    class ShortReply(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 500)  # the connection closes after half of the announced bytes

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ShortReply)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "img.tgz.partaa"
        with pytest.raises(ArtbenchError, match="damaged"):
            _download.fetch(f"http://127.0.0.1:{server.server_port}/part", dest)
        assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    finally:
        server.shutdown()
