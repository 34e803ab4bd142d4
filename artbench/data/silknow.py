"""SILKNOW silk-fabric images: the image-centred train/dev/test release of Rei et al. (Multimedia Systems 2023).

Four targets (``place``, ``timespan``, ``technique``, ``material``) over 36,043 images of 22,093 records, split
60/20/20 by record with every class in every split. Labels come from the SILKNOW *collection files* (TAB
separated, ``#``-prefixed header naming the targets, a trailing TAB on every line, ``nan`` for a missing label);
the *master files* list the collection files of each split. Images (Zenodo record 6590957, a tar.gz split into
parts ``img.tgz.partaa`` ... ``partah``) are named ``<museum>__<record uuid>__<image name>``, which gives the
record every image belongs to.

Layout under ``root`` (default ``<data home>/silknow``): ``collections/`` (master and collection files) and
``img/`` (the JPEGs). ``download=True`` fetches whatever is missing.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import shutil
import tarfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from artbench.data.dataset import Dataset, data_home, register_dataset
from artbench.errors import ArtbenchError
from artbench.progress import progress_bar

COLLECTIONS_URL = (
    "https://raw.githubusercontent.com/silknow/multimodal_cultural_heritage/"
    "71040dc7339ad95403e03d1dfab7c6a03ee65230/image_classifier/silknow_image_classification/samples"
)
IMAGES_URL = "https://zenodo.org/records/6590957/files"
IMAGE_PARTS = tuple(f"img.tgz.parta{c}" for c in "abcdefgh")
MASTER_FILES = {"train": "masterfile_train.txt", "val": "masterfile_val.txt", "test": "masterfile_test.txt"}
COLLECTION_FILES = tuple(f"multimodal_image_centered_img_cent_{s}.txt" for s in ("train", "dev", "test"))
COLLECTION_MD5 = {  # of the files at the pinned commit
    "masterfile_train.txt": "d4b5f2d122daae5bd8024a4262579db1",
    "masterfile_val.txt": "e535de17d8e26863bd1c5020e47ecc08",
    "masterfile_test.txt": "d8908cc2d24b0e89ff167724dadd99cb",
    "multimodal_image_centered_img_cent_train.txt": "1dbaa7666ca96aef8cf584a4b21e1983",
    "multimodal_image_centered_img_cent_dev.txt": "8aa7bcfceb75df85aa86c4b1fedeb478",
    "multimodal_image_centered_img_cent_test.txt": "49b188dd1f663e7be97f8c6a524081cb",
}
MISSING_LABELS = frozenset({"nan", "NaN"})
TARGETS = ("place", "timespan", "technique", "material")


def read_master_file(path: Path) -> list[Path]:
    """Collection files named by a master file, one per line, relative to the master file's folder."""
    return [path.parent / line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_collection_file(path: Path) -> pd.DataFrame:
    """One collection file as a table: ``image_file`` plus one column per ``#<target>`` header field.

    Columns are taken from the header by name (their order differs between SILKNOW releases); ``nan`` and
    ``NaN`` become missing labels.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ArtbenchError(f"{str(path)!r} is not a SILKNOW collection file: its first line is not a '#' header")
    header = [field.lstrip("#") for field in lines[0].rstrip("\t").split("\t")]
    if header[0] != "image_file":
        raise ArtbenchError(f"{str(path)!r}: the header's first field is {lines[0].split()[0]!r}, not '#image_file'")
    rows = [line.rstrip("\t").split("\t") for line in lines[1:] if line.strip()]
    bad = next((i for i, row in enumerate(rows) if len(row) != len(header)), None)
    if bad is not None:
        raise ArtbenchError(f"{str(path)!r} line {bad + 2} has {len(rows[bad])} fields, the header has {len(header)}")
    table = pd.DataFrame(rows, columns=header, dtype=object)
    return table.mask(table.isin(MISSING_LABELS))


def record_of(image_name: str) -> str:
    """``<museum>__<record uuid>`` of an image named ``<museum>__<record uuid>__<image name>``."""
    parts = Path(image_name).name.split("__")
    if len(parts) < 2:
        raise ArtbenchError(f"SILKNOW image name {image_name!r} does not start with '<museum>__<record>'")
    return "__".join(parts[:2])


def silknow_table(collections: Path, images: Path) -> pd.DataFrame:
    """The sample table of the three master files in ``collections``; images resolved by name in ``images``."""
    parts = []
    for split, master in MASTER_FILES.items():
        for collection in read_master_file(collections / master):
            if not collection.is_file():
                raise ArtbenchError(f"master file {master!r} names {str(collection)!r}, which does not exist")
            part = read_collection_file(collection)
            part.insert(0, "split", split)
            parts.append(part)
    raw = pd.concat(parts, ignore_index=True)
    names = raw["image_file"].map(lambda p: Path(p).name)
    table = pd.DataFrame(
        {"image": [str(images / n) for n in names], "group": names.map(record_of), "split": raw["split"]}
    )
    for target in raw.columns.drop(["split", "image_file"]):
        table[target] = raw[target].to_numpy()
    return table


def _fetch(url: str, dest: Path, md5: str | None = None) -> None:
    """Download ``url`` to ``dest`` through a temporary file, with a byte progress bar.

    The file only gets its final name when it is complete: as long as the server announced (Content-Length) and,
    when ``md5`` is given, with that checksum. Anything else is deleted, so a later call fetches it again.
    """
    tmp = dest.with_name(dest.name + ".part")
    digest, received = hashlib.md5(), 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out, progress_bar() as bar:
            length = response.headers.get("Content-Length")
            task = bar.add_task(f"downloading {dest.name}", total=int(length) if length else None)
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.advance(task, len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        tmp.unlink(missing_ok=True)
        raise ArtbenchError(f"cannot download {url}: {exc}; check the connection or place the file at {dest}") from None
    problem = None
    if length and received != int(length):
        problem = f"got {received} of {length} bytes"
    elif md5 and digest.hexdigest() != md5:
        problem = f"md5 {digest.hexdigest()} differs from the expected {md5}"
    if problem:
        tmp.unlink()
        raise ArtbenchError(f"download of {url} is damaged ({problem}); run the command again")
    tmp.replace(dest)


class _Concatenation(io.RawIOBase):
    """The parts of a split archive read as one stream, so they never need joining on disk."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths, self._file = list(paths), None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._paths or self._file:
            if self._file is None:
                self._file = open(self._paths.pop(0), "rb")  # noqa: SIM115 (closed when exhausted)
            n = self._file.readinto(buffer)
            if n:
                return n
            self._file.close()
            self._file = None
        return 0


def _extract_images(parts: list[Path], root: Path) -> None:
    """Stream-extract the split image archive and move its single folder of JPEGs to ``root/img``."""
    staging = root / "img.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with _Concatenation(parts) as stream, tarfile.open(fileobj=stream, mode="r|gz") as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtbenchError(
            f"cannot extract the SILKNOW image archive ({type(exc).__name__}: {exc}); "
            f"delete {parts[0].parent} and download again"
        ) from None
    folders = {p.parent for p in staging.rglob("*.jpg")}
    if len(folders) != 1:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtbenchError(f"the SILKNOW image archive has JPEGs in {len(folders)} folders; expected exactly one")
    folders.pop().rename(root / "img")
    shutil.rmtree(staging, ignore_errors=True)  # gone already when the JPEGs sat at the archive's top level


def download_silknow(root: Path) -> None:
    """Fetch the collection files (GitHub, pinned commit) and the images (Zenodo 6590957) that ``root`` lacks."""
    if not hasattr(tarfile, "data_filter"):
        raise ArtbenchError("safe extraction of the image archive needs Python >= 3.11.4; upgrade Python")
    collections = root / "collections"
    collections.mkdir(parents=True, exist_ok=True)
    for name in (*MASTER_FILES.values(), *COLLECTION_FILES):
        if not (collections / name).is_file():
            _fetch(f"{COLLECTIONS_URL}/{name}", collections / name, COLLECTION_MD5.get(name))
    if (root / "img").is_dir():
        return
    parts = root / "parts"
    parts.mkdir(exist_ok=True)
    for name in IMAGE_PARTS:
        if not (parts / name).is_file():
            _fetch(f"{IMAGES_URL}/{name}", parts / name)
    _extract_images([parts / name for name in IMAGE_PARTS], root)
    shutil.rmtree(parts)


@register_dataset("silknow")
def silknow_dataset(root: str | None = None, download: bool = False) -> Dataset:
    """SILKNOW image-centred release (Rei et al. 2023) with its official record-disjoint train/dev/test split."""
    base = Path(root) if root else data_home() / "silknow"
    if download:
        download_silknow(base)
    collections = base / "collections"
    if not all((collections / m).is_file() for m in MASTER_FILES.values()):
        raise ArtbenchError(
            f"SILKNOW is not in {str(base)!r}: run `artbench datasets download silknow` "
            "(or set ARTBENCH_DATA, or the task's dataset_options.root, to where it is)"
        )
    table = silknow_table(collections, base / "img")
    duplicated = table["image"].duplicated()
    if duplicated.any():
        raise ArtbenchError(f"SILKNOW collection files list {int(np.sum(duplicated))} images twice")
    return Dataset("silknow", table, missing_images_hint="run `artbench datasets download silknow`")
