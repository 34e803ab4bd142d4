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

import shutil
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from artbench.core.dataset import DataFile, Dataset, DatasetInfo, data_home, register_dataset
from artbench.core.errors import ArtbenchError
from artbench.datasets._download import Concatenation, fetch

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


def _extract_images(parts: list[Path], root: Path) -> None:
    """Stream-extract the split image archive and move its single folder of JPEGs to ``root/img``."""
    staging = root / "img.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with Concatenation(parts) as stream, tarfile.open(fileobj=stream, mode="r|gz") as tar:
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
            fetch(f"{COLLECTIONS_URL}/{name}", collections / name, COLLECTION_MD5.get(name))
    if (root / "img").is_dir():
        return
    parts = root / "parts"
    parts.mkdir(exist_ok=True)
    for name in IMAGE_PARTS:
        if not (parts / name).is_file():
            fetch(f"{IMAGES_URL}/{name}", parts / name)
    _extract_images([parts / name for name in IMAGE_PARTS], root)
    shutil.rmtree(parts)


def default_root() -> Path:
    return data_home() / "silknow"


INFO = DatasetInfo(
    "silknow",
    description="SILKNOW silk fabrics, image-centred release of Rei et al. (2023): 36,043 images of 22,093 records",
    license="CC BY 4.0 (images: the museums' terms, see the Zenodo record)",
    citation="Rei, L., Mladenic, D., Dorozynski, M., Rottensteiner, F., Schleider, T., Troncy, R., Lozano, J. S., "
    "Salvatella, M. G. (2023). Multimodal metadata assignment for cultural heritage artifacts. Multimedia Systems 29",
    homepage="https://zenodo.org/records/6590957",
    targets={t: "multiclass" for t in TARGETS},
    splits="official",
    files=tuple(DataFile(f"collections/{n}", f"{COLLECTIONS_URL}/{n}", md5) for n, md5 in COLLECTION_MD5.items())
    + tuple(DataFile(f"parts/{n}", f"{IMAGES_URL}/{n}") for n in IMAGE_PARTS),
)


@register_dataset(INFO, download=download_silknow, default_root=default_root)
def silknow_dataset(root: str | None = None) -> Dataset:
    """SILKNOW image-centred release (Rei et al. 2023) with its official record-disjoint train/dev/test split."""
    base = Path(root) if root else default_root()
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
    return Dataset("silknow", table, missing_images_hint="run `artbench datasets download silknow`", layout="2022")
