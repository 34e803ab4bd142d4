"""SILKNOW silk fabrics in the three public layouts (research notes §1.1-1.6), found from the files present.

``2022`` (default, downloadable): the image-centred train/dev/test release of Rei et al. (Multimedia Systems 2023).
Four targets (``place``, ``timespan``, ``technique``, ``material``) over 36,043 images of 22,093 records, split
60/20/20 by record with every class in every split. Labels come from the SILKNOW *collection files* (TAB
separated, ``#``-prefixed header naming the targets, a trailing TAB on every line, ``nan`` for a missing label);
the *master files* ``masterfile_{train,val,test}.txt`` list the collection files of each split. Images (Zenodo
record 6590957, a tar.gz split into parts ``img.tgz.partaa`` ... ``partah``) are named
``<museum>__<record uuid>__<image name>``, which gives the record every image belongs to. Files: the master and
collection files in ``root/collections/`` (or ``root``), the JPEGs in ``root/img/``.

``2019``: the IMATEX release of the ISPRS Annals 2019 paper: ``Masterfile.txt`` names five record-disjoint folds
``collection_1..5.txt`` (header ``#image_file #depiction #material #place #technique #timespan``, ``NaN`` missing),
one image per record named ``<museum>__<record uuid>.jpg``, image paths relative to the collection file
(``./img/``). Fold k goes to the split ``folds[k-1]`` (default folds 1-3 train, 4 val, 5 test). The collection
files the KG pipeline writes (``kg_collections/``, with a ``#museum`` column that is dropped) read the same way.

``kg``: the 2020-21 knowledge-graph export ``total_post.csv`` (or ``export_path``), turned into a sample table by
the dataset-creation pipeline of :mod:`artbench.datasets.silknow_kg` (label cleaning of research notes §1.5; its
options ``museums``, ``min_samples``, ``min_records``, ``min_labels``, ``multilabel``, ``rare``, ``seed`` and
``fabric_list_path``, default ``root/fabricImages.txt`` when present). Images in ``root/img/``, fetched from the
museums' links by ``artbench datasets download silknow --root DIR``.

``layout`` picks one when several are present (else the first of 2022, 2019, kg). ``split_path`` replaces the
split by a CSV ``image,split`` (images matched by file name), e.g. the leak-free split that
``artbench datasets audit silknow --fix`` writes.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from artbench.core.dataset import SPLITS, DataFile, Dataset, DatasetInfo, data_home, register_dataset
from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite
from artbench.datasets._download import Concatenation, fetch
from artbench.datasets.silknow_kg import (
    EXPORT_FILE,
    FABRIC_LIST_FILE,
    NUM_CHUNKS,
    KGOptions,
    download_kg_images,
    kg_table,
    read_fabric_list,
)

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
FOLD_MASTER_FILE = "Masterfile.txt"
DEFAULT_FOLDS = ("train", "train", "train", "val", "test")
LAYOUTS = ("2022", "2019", "kg")
LAYOUT_FILES = {
    "2022": "masterfile_train.txt, masterfile_val.txt, masterfile_test.txt and their collection files "
    "(in DIR/collections or DIR)",
    "2019": f"{FOLD_MASTER_FILE} naming collection_1.txt ... collection_5.txt (in DIR/collections or DIR)",
    "kg": f"the knowledge-graph export {EXPORT_FILE} (or the export_path option)",
}


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
    """``<museum>__<record uuid>`` of an image named ``<museum>__<record uuid>__<image name>`` (2022, KG) or
    ``<museum>__<record uuid>.jpg`` (2019)."""
    parts = PurePath(image_name).name.split("__")
    if len(parts) < 2:
        raise ArtbenchError(f"SILKNOW image name {image_name!r} does not start with '<museum>__<record>'")
    if len(parts) == 2:
        return f"{parts[0]}__{PurePath(parts[1]).stem}"
    return "__".join(parts[:2])


def image_name_key(image: str) -> str:
    """What names a picture within its museum (for the leakage audit): ``<museum>__<image name>`` of
    ``<museum>__<record>__<image name>``, so one museum image listed under two records has one key; a 2019 name
    ``<museum>__<record>.jpg`` is its own key."""
    parts = PurePath(image).name.split("__")
    return f"{parts[0]}__{parts[-1]}" if len(parts) >= 3 else PurePath(image).name


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


def folds_table(master: Path, folds: Sequence[str]) -> pd.DataFrame:
    """The sample table of a ``Masterfile.txt`` naming fold collection files: fold k in split ``folds[k-1]``.

    Image paths are taken relative to their collection file (``./img/<museum>__<record>.jpg`` in 2019). A
    ``#museum`` column (collection files written by the KG pipeline) is dropped: the group names the museum.
    """
    collections = read_master_file(master)
    if len(folds) != len(collections):
        raise ArtbenchError(
            f"{str(master)!r} names {len(collections)} collection files but the folds option gives {len(folds)} "
            f"splits; give one of {', '.join(SPLITS)} per collection file"
        )
    parts = []
    for collection, split in zip(collections, folds, strict=True):
        if not collection.is_file():
            raise ArtbenchError(f"master file {str(master)!r} names {str(collection)!r}, which does not exist")
        part = read_collection_file(collection)
        part["image_file"] = [os.path.normpath(collection.parent / p) for p in part["image_file"]]
        part.insert(0, "split", split)
        parts.append(part)
    raw = pd.concat(parts, ignore_index=True)
    table = pd.DataFrame({"image": raw["image_file"], "group": raw["image_file"].map(record_of), "split": raw["split"]})
    for target in raw.columns.drop(["split", "image_file", "museum"], errors="ignore"):
        table[target] = raw[target].to_numpy()
    return table


def find_layouts(base: Path, export_path: str | None = None) -> dict[str, Path]:
    """Layouts whose files are in ``base``, in priority order: the folder of the master files or the export file."""
    found: dict[str, Path] = {}
    for folder in (base / "collections", base):
        if "2022" not in found and all((folder / m).is_file() for m in MASTER_FILES.values()):
            found["2022"] = folder
        if "2019" not in found and (folder / FOLD_MASTER_FILE).is_file():
            found["2019"] = folder
    export = Path(export_path) if export_path else base / EXPORT_FILE
    if export.is_file():
        found["kg"] = export
    return {layout: found[layout] for layout in LAYOUTS if layout in found}


def apply_split_file(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The table with the split of ``path``, a CSV ``image,split`` (as ``artbench datasets audit --fix`` writes);
    images are matched by file name, so the file works wherever the images live."""
    if not path.is_file():
        raise ArtbenchError(f"split file {str(path)!r} does not exist; write it with `artbench datasets audit --fix`")
    try:
        splits = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ArtbenchError(f"cannot parse the split file {str(path)!r}: {exc}") from None
    if not {"image", "split"} <= set(splits.columns):
        raise ArtbenchError(
            f"split file {str(path)!r} needs the columns image and split; it has {list(splits.columns)}"
        )
    by_name = dict(zip(splits["image"].map(lambda p: PurePath(p).name), splits["split"], strict=True))
    names = table["image"].map(lambda p: PurePath(p).name)
    absent = names[~names.isin(by_name)]
    if len(absent):
        raise ArtbenchError(
            f"split file {str(path)!r} has no split for {len(absent)} of the {len(table)} images "
            f"(first: {absent.iloc[0]}); write it again with `artbench datasets audit --fix`"
        )
    return table.assign(split=names.map(by_name).to_numpy())


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
    """Fetch what the SILKNOW copy in ``root`` lacks. A KG export (and no 2022 release): its images, from the
    museums' links. A 2019 copy: nothing (no public download of its images is known, research notes §1.2).
    Otherwise the 2022 release: the collection files (GitHub, pinned commit) and the images (Zenodo 6590957)."""
    found = find_layouts(root)
    if "2022" not in found and "kg" in found:
        fabric = root / FABRIC_LIST_FILE
        download_kg_images(found["kg"], root, read_fabric_list(fabric) if fabric.is_file() else set())
        return
    if "2022" not in found and "2019" in found:
        raise ArtbenchError(
            "the 2019 IMATEX images cannot be downloaded (no public download is known); put them where the "
            f"collection files in {str(found['2019'])!r} name them (./img/)"
        )
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
    description="SILKNOW silk fabrics, image-centred release of Rei et al. (2023): 36,043 images of 22,093 records "
    "(also reads the 2019 IMATEX folds and the 2020-21 knowledge-graph export)",
    license="CC BY 4.0 (images: the museums' terms, see the Zenodo record)",
    citation="Rei, L., Mladenic, D., Dorozynski, M., Rottensteiner, F., Schleider, T., Troncy, R., Lozano, J. S., "
    "Salvatella, M. G. (2023). Multimodal metadata assignment for cultural heritage artifacts. Multimedia Systems 29",
    homepage="https://zenodo.org/records/6590957",
    targets={t: "multiclass" for t in TARGETS},
    splits="official",
    files=tuple(DataFile(f"collections/{n}", f"{COLLECTIONS_URL}/{n}", md5) for n, md5 in COLLECTION_MD5.items())
    + tuple(DataFile(f"parts/{n}", f"{IMAGES_URL}/{n}") for n in IMAGE_PARTS),
)


def _check_folds(folds: Sequence[str] | None, layout: str) -> tuple[str, ...]:
    if folds is None:
        return DEFAULT_FOLDS
    if layout == "2022":
        raise ArtbenchError("the folds option applies to the 2019 and kg layouts; the 2022 release has its own split")
    if isinstance(folds, str) or any(f not in SPLITS for f in folds):
        raise ArtbenchError(f"folds must be a list of {', '.join(SPLITS)} (one per collection file), got {folds!r}")
    return tuple(folds)


def _kg_dataset_table(
    base: Path, export: Path, given: dict, fabric_list_path: str | None, folds: tuple[str, ...]
) -> pd.DataFrame:
    """The kg layout's sample table under the pipeline options ``given`` (the others keep their defaults)."""
    if len(folds) != NUM_CHUNKS:
        raise ArtbenchError(f"the kg layout has {NUM_CHUNKS} chunks: folds needs {NUM_CHUNKS} splits")
    for name in ("museums", "multilabel"):
        if isinstance(given.get(name), str):
            raise ArtbenchError(f"the {name} option is a list of names, got the string {given[name]!r}")
    options = KGOptions(**{k: tuple(v) if k in ("museums", "multilabel") else v for k, v in given.items()})
    fabric = Path(fabric_list_path) if fabric_list_path else base / FABRIC_LIST_FILE
    if fabric_list_path and not fabric.is_file():
        raise ArtbenchError(f"fabric list {fabric_list_path!r} does not exist")
    fabric_list = read_fabric_list(fabric) if fabric.is_file() else set()
    return kg_table(export, base / "img", options, fabric_list, folds)


@register_dataset(INFO, download=download_silknow, default_root=default_root)
def silknow_dataset(
    root: str | None = None,
    layout: str | None = None,
    folds: Sequence[str] | None = None,
    split_path: str | None = None,
    export_path: str | None = None,
    fabric_list_path: str | None = None,
    museums: Sequence[str] | None = None,
    min_samples: int | None = None,
    min_records: int | None = None,
    min_labels: int | None = None,
    multilabel: Sequence[str] | None = None,
    rare: str | None = None,
    seed: int | None = None,
) -> Dataset:
    """SILKNOW in the 2022, 2019 or kg layout (see the module docstring for the files and options of each)."""
    base = Path(root) if root else default_root()
    if layout is not None and layout not in LAYOUTS:
        raise ArtbenchError(f"SILKNOW layout {layout!r} is unknown; valid: {', '.join(LAYOUTS)}")
    found = find_layouts(base, export_path)
    if not found or (layout is not None and layout not in found):
        wanted = [layout] if layout else list(LAYOUTS)
        expected = "; ".join(f"{name}: {LAYOUT_FILES[name]}" for name in wanted)
        raise MissingPrerequisite(
            "data",
            f"SILKNOW{f' ({layout} layout)' if layout else ''} is not in {str(base)!r}: run `artbench datasets "
            "download silknow` (or set ARTBENCH_DATA, or the task's dataset_options.root, to where it is); "
            f"expected {expected}",
        )
    chosen = layout or next(iter(found))
    kg_given = {
        name: value
        for name, value in (
            ("museums", museums), ("min_samples", min_samples), ("min_records", min_records),
            ("min_labels", min_labels), ("multilabel", multilabel), ("rare", rare), ("seed", seed),
        )
        if value is not None
    }  # fmt: skip
    if chosen != "kg" and (kg_given or fabric_list_path):
        raise ArtbenchError(
            f"the options {sorted([*kg_given, *(['fabric_list_path'] if fabric_list_path else [])])} apply to the "
            f"kg layout only; the SILKNOW copy in {str(base)!r} is read as the {chosen} layout"
        )
    fold_splits = _check_folds(folds, chosen)
    if chosen == "2022":
        table = silknow_table(found["2022"], base / "img")
        hint = "run `artbench datasets download silknow`"
    elif chosen == "2019":
        table = folds_table(found["2019"] / FOLD_MASTER_FILE, fold_splits)
        hint = "no public download of the 2019 IMATEX images is known: put them where the collection files name them"
    else:
        table = _kg_dataset_table(base, found["kg"], kg_given, fabric_list_path, fold_splits)
        hint = f"run `artbench datasets download silknow --root {base}` to fetch them from the museums' links"
    if split_path:
        table = apply_split_file(table, Path(split_path))
    duplicated = table["image"].duplicated()
    if duplicated.any():
        raise ArtbenchError(f"SILKNOW collection files list {int(np.sum(duplicated))} images twice")
    return Dataset("silknow", table, missing_images_hint=hint, layout=chosen)
