"""Rijksmuseum Challenge 2014 (Rijks'14; Mensink & van Gemert, ICMR 2014): 112,039 photographs of Rijksmuseum
objects with the challenge's official train/val/test split and four targets.

Source files (figshare article 5660617, DOI 10.21942/uva.5660617; research notes §2.1-2.2):

* ``rijksgt.mat``: MATLAB struct ``gt`` with one row per image: ``set`` (1/2/3 = train/val/test), ``C`` (1-based
  index into ``Cnames``), ``T``/``M`` (multi-hot type and material matrices, 0 = absent, k > 0 = present) with
  their ``Tnames``/``Mnames``, ``Y`` (start and end year). The ``det`` field (a MATLAB ``RandStream`` object,
  read as ``MatlabOpaque``) is ignored.
* ``jpg2/<7-digit 1-based row>_<object number>.jpg``: the images.
* ``xml2/<same stem>.xml`` (optional): the Dublin-Core record of each image (Rijksmuseum OAI-PMH, Dutch values).

Targets, exactly as the challenge's ``rijks_load.m`` builds them (notes §2.3; ``minTstOcc = 10``):

* ``creator`` (multiclass): the 374 creators present in all three sets with at least 10 test images, ``anoniem``
  and ``unknown`` excluded; every other image is in the class ``rest`` (375 classes, none missing). Names are the
  exact ``Cnames`` strings, including the two SUB bytes (``\\x1a\\x1a``) that replace each non-ASCII letter in
  422 names (``abb\\x1a\\x1a, hendrik``).
* ``type`` (multilabel, 103 classes) and ``material`` (multilabel, 81): the columns of ``T``/``M`` with a positive
  in every set and at least 10 in test. The cell lists the image's kept labels joined by ``|``; an image with none
  of them has an empty cell: a known label set with no positive, as in the challenge, which scores every test
  image on every class. (The empty material name, index 1, and the two types without data, ids 207 and 1050,
  never pass the filter.)
* ``year`` (regression): the mean of start and end year, for the images whose ``|start - end| < 100`` (109,903).
  800 images have ``[0 0]``, which means *unknown*; the original baseline keeps them as year 0 (they pass the
  filter). Here they are missing labels unless ``year_zero_as_unknown=False``, which reproduces the baseline.

Every image is its own group. Further columns: ``creator_name`` (the raw ``Cnames`` entry, also for ``rest``),
``year_start``, ``year_end``, ``object_number`` and, read from ``xml2/`` when present (NA otherwise), the title-free
Dublin-Core fields ``dc_creator`` (``role: name`` entries), ``dc_creator_role``, ``dc_type``, ``dc_material``
(the ``materiaal:`` formats), ``dc_technique`` (``techniek:``) and ``dc_date``; several values are joined by ``|``.
These columns give targets away (creator, type, material, year): use them as task metadata with care.
"""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import shutil
import tarfile
import urllib.request
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io

from artbench.core.dataset import Dataset, DatasetInfo, data_home, register_dataset
from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite
from artbench.datasets._download import fetch

ARTICLE_ID = 5660617
API_URL = "https://api.figshare.com/v2"
API_PAGE_SIZE = 100
DOI_URL = "https://doi.org/10.21942/uva.5660617"
GT_FILE = "rijksgt.mat"
IMAGES_DIR = "jpg2"
XML_DIR = "xml2"
SPLIT_NAMES = {1: "train", 2: "val", 3: "test"}
MIN_TEST_OCCURRENCES = 10
"""``minTstOcc`` of the challenge scripts: a class needs this many test images."""
EXCLUDED_CREATORS = ("anoniem", "unknown")
REST = "rest"
MAX_YEAR_SPAN = 100
"""Year target only where ``|start - end| <`` this many years (``rijks_load.m``)."""
TARGETS = {"creator": "multiclass", "type": "multilabel", "material": "multilabel", "year": "regression"}
XML_COLUMNS = ("dc_creator", "dc_creator_role", "dc_type", "dc_material", "dc_technique", "dc_date")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_ROW_FILE = re.compile(r"(\d{7})_(.+)\.(jpg|xml)")
_DC_ELEMENT = re.compile(r"<dc:(creator|type|format|date|identifier)\b[^>]*>(.*?)</dc:\1\s*>", re.DOTALL)


# --------------------------------------------------------------------------------------------------
# Ground truth (rijksgt.mat)


@dataclass(frozen=True)
class GroundTruth:
    """The fields of ``gt`` that define the challenge, with 0-based indices."""

    split: np.ndarray
    """int ``[N]``: 1 train, 2 val, 3 test (``gt.set``)."""
    creator: np.ndarray
    """int ``[N]``: 0-based index into :attr:`creator_names` (``gt.C - 1``)."""
    creator_names: list[str]
    types: np.ndarray
    """uint8 ``[N, 1824]``: > 0 where the image has the type."""
    type_names: list[str]
    materials: np.ndarray
    """uint8 ``[N, 406]``: > 0 where the image has the material."""
    material_names: list[str]
    years: np.ndarray
    """int ``[N, 2]``: start and end year."""

    @property
    def num_images(self) -> int:
        return len(self.split)


def _cell_strings(cell: np.ndarray) -> list[str]:
    """A MATLAB cell array of char rows (loaded as an object array of 1-element string arrays) as strings."""
    return [str(item.ravel()[0]) if item.size else "" for item in cell.ravel()]


def read_ground_truth(path: Path) -> GroundTruth:
    """Read ``rijksgt.mat`` and check that its fields agree in size."""
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise ArtbenchError(f"cannot read {str(path)!r} ({exc}); download the Rijks'14 ground truth again") from None
    if "gt" not in mat or mat["gt"].dtype.names is None:
        raise ArtbenchError(f"{str(path)!r} holds no struct 'gt'; it is not the Rijks'14 ground truth")
    gt = mat["gt"][0, 0]
    absent = sorted({"set", "C", "Cnames", "T", "Tnames", "M", "Mnames", "Y"} - set(gt.dtype.names))
    if absent:
        raise ArtbenchError(f"{str(path)!r}: struct 'gt' lacks the field(s) {absent}")
    truth = GroundTruth(
        split=gt["set"].ravel().astype(np.int64),
        creator=gt["C"].ravel().astype(np.int64) - 1,
        creator_names=_cell_strings(gt["Cnames"]),
        types=gt["T"],
        type_names=_cell_strings(gt["Tnames"]),
        materials=gt["M"],
        material_names=_cell_strings(gt["Mnames"]),
        years=gt["Y"].astype(np.int64),
    )
    n = truth.num_images
    problems = [
        f"C has {len(truth.creator)} rows" if len(truth.creator) != n else "",
        f"T is {truth.types.shape}" if truth.types.shape != (n, len(truth.type_names)) else "",
        f"M is {truth.materials.shape}" if truth.materials.shape != (n, len(truth.material_names)) else "",
        f"Y is {truth.years.shape}" if truth.years.shape != (n, 2) else "",
        f"set has values {sorted(set(np.unique(truth.split)) - set(SPLIT_NAMES))}"
        if not np.isin(truth.split, list(SPLIT_NAMES)).all()
        else "",
        "C points outside Cnames"
        if n and (truth.creator.min() < 0 or truth.creator.max() >= len(truth.creator_names))
        else "",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ArtbenchError(f"{str(path)!r} is inconsistent ({'; '.join(problems)}, for {n} images in 'set')")
    return truth


def challenge_creators(truth: GroundTruth) -> np.ndarray:
    """0-based indices of the creator classes: in every set, >= 10 test images, not anoniem/unknown (rijks_load.m)."""
    counts = np.stack(
        [np.bincount(truth.creator[truth.split == s], minlength=len(truth.creator_names)) for s in SPLIT_NAMES], 1
    )
    keep = (counts > 0).all(axis=1) & (counts[:, 2] >= MIN_TEST_OCCURRENCES)
    keep &= ~np.isin(truth.creator_names, EXCLUDED_CREATORS)
    return np.flatnonzero(keep)


def challenge_columns(split: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Columns of a type/material matrix with a positive in every set and >= 10 in test (rijks_load.m)."""
    counts = np.stack([np.count_nonzero(matrix[split == s], axis=0) for s in SPLIT_NAMES])
    return np.flatnonzero((counts > 0).all(axis=0) & (counts[2] >= MIN_TEST_OCCURRENCES))


def year_targets(years: np.ndarray, *, zero_as_unknown: bool = True) -> np.ndarray:
    """Mean of start and end year where ``|start - end| < 100``, else NaN; ``[0 0]`` is NaN if ``zero_as_unknown``."""
    known = np.abs(years[:, 0] - years[:, 1]) < MAX_YEAR_SPAN
    if zero_as_unknown:
        known &= (years != 0).any(axis=1)
    return np.where(known, years.mean(axis=1), np.nan)


def _joined_labels(hot: np.ndarray, names: list[str]) -> list[str]:
    """Each row's labels (columns where ``hot`` is true), joined by ``|``; empty where there are none."""
    labels = np.asarray(names, dtype=object)
    return ["|".join(labels[row]) for row in hot]


# --------------------------------------------------------------------------------------------------
# Files named by row: jpg2/ and xml2/


def row_files(folder: Path, num_images: int) -> dict[int, Path]:
    """Files ``<7-digit 1-based row>_<object number>.<jpg|xml>`` of ``folder`` by 0-based row (other names ignored)."""
    found: dict[int, Path] = {}
    if not folder.is_dir():
        return found
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _ROW_FILE.fullmatch(entry.name)
            if not match:
                continue
            row = int(match[1]) - 1
            if not 0 <= row < num_images:
                raise ArtbenchError(
                    f"{str(folder)!r} holds {entry.name!r}, but the ground truth has rows 1-{num_images}; "
                    f"the folder does not belong to this {GT_FILE}"
                )
            if row in found:
                raise ArtbenchError(
                    f"{str(folder)!r} holds two files for row {row + 1}: {found[row].name}, {entry.name}"
                )
            found[row] = Path(entry.path)
    return found


def parse_dc_record(text: str) -> dict[str, str | None]:
    """The title-free Dublin-Core fields of one xml2 record (notes §2.2), several values joined by ``|``.

    Reads ``<dc:...>`` elements with a regular expression, as the parsers of the record files do, so the OAI-PMH
    wrapper and undeclared namespace prefixes do not matter.
    """
    values: dict[str, list[str]] = defaultdict(list)
    for element, raw in _DC_ELEMENT.findall(text):
        value = html.unescape(raw).strip()
        if value:
            values[element].append(value)
    creators = values["creator"]
    formats = values["format"]

    def joined(items: list[str]) -> str | None:
        return "|".join(items) if items else None

    def prefixed(prefix: str) -> str | None:
        return joined([value for f in formats if f.startswith(prefix) and (value := f[len(prefix) :].strip())])

    return {
        "object_number": next((i for i in values["identifier"] if not i.startswith("COLLECT.")), None),
        "dc_creator": joined(creators),
        "dc_creator_role": joined([c.partition(": ")[0] for c in creators if ": " in c]),
        "dc_type": joined(values["type"]),
        "dc_material": prefixed("materiaal:"),
        "dc_technique": prefixed("techniek:"),
        "dc_date": joined(values["date"]),
    }


def _xml_fields(records: dict[int, Path], num_images: int) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {c: [None] * num_images for c in ("object_number", *XML_COLUMNS)}
    for row, path in records.items():
        for column, value in parse_dc_record(path.read_bytes().decode("utf-8", errors="replace")).items():
            columns[column][row] = value
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------------------------------
# The sample table


def rijks14_table(root: Path, *, year_zero_as_unknown: bool = True) -> pd.DataFrame:
    """The sample table of every row of ``root/rijksgt.mat`` (see the module docstring).

    An image's path is its file in ``jpg2/`` when present, else the name its ``xml2/`` record implies, else
    ``jpg2/<row>.jpg`` (the object number is unknown without either folder).
    """
    truth = read_ground_truth(root / GT_FILE)
    n = truth.num_images
    images = row_files(root / IMAGES_DIR, n)
    records = row_files(root / XML_DIR, n)
    xml = _xml_fields(records, n)

    rows = [f"{i + 1:07d}" for i in range(n)]
    stems = [images[i].stem if i in images else records[i].stem if i in records else rows[i] for i in range(n)]
    object_numbers = [s.partition("_")[2] or x for s, x in zip(stems, xml["object_number"], strict=True)]

    names = np.asarray(truth.creator_names, dtype=object)
    kept = challenge_creators(truth)
    creator = np.where(np.isin(truth.creator, kept), names[truth.creator], REST)
    type_columns = challenge_columns(truth.split, truth.types)
    material_columns = challenge_columns(truth.split, truth.materials)
    table = pd.DataFrame(
        {
            "image": [str(root / IMAGES_DIR / f"{s}.jpg") for s in stems],
            "group": rows,
            "split": [SPLIT_NAMES[s] for s in truth.split.tolist()],
            "creator": creator,
            "type": _joined_labels(truth.types[:, type_columns] > 0, [truth.type_names[c] for c in type_columns]),
            "material": _joined_labels(
                truth.materials[:, material_columns] > 0, [truth.material_names[c] for c in material_columns]
            ),
            "year": year_targets(truth.years, zero_as_unknown=year_zero_as_unknown),
            "creator_name": names[truth.creator],
            "year_start": truth.years[:, 0],
            "year_end": truth.years[:, 1],
            "object_number": object_numbers,
        }
    )
    for column in XML_COLUMNS:
        table[column] = xml[column].to_numpy()
    return table


# --------------------------------------------------------------------------------------------------
# Download (figshare public API)


def figshare_files(article_id: int = ARTICLE_ID) -> list[dict[str, Any]]:
    """The files of a public figshare article: ``name``, ``size``, ``download_url``, ``computed_md5``, ..."""
    files: list[dict[str, Any]] = []
    seen: set[object] = set()
    page = 1
    while True:
        url = f"{API_URL}/articles/{article_id}/files?page={page}&page_size={API_PAGE_SIZE}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                batch = json.load(response)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ArtbenchError(
                f"cannot list the files of figshare article {article_id} ({url}: {exc}); check the connection, "
                f"or download them from {DOI_URL} by hand"
            ) from None
        if not isinstance(batch, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("download_url"), str)
            for f in batch
        ):
            raise ArtbenchError(f"the figshare API answered {url} with something other than a list of files")
        new = [f for f in batch if f.get("id", f["name"]) not in seen]
        seen.update(f.get("id", f["name"]) for f in new)
        files += new
        if len(batch) < API_PAGE_SIZE or not new:
            return files
        page += 1


def _kind(name: str) -> str | None:
    """Which part of the challenge a figshare file holds, from its name: ``gt``, ``jpg``, ``xml`` or None.

    The ground truth as ``.mat`` or in an archive; the images and XML records in archives. Anything else (the
    Fisher-vector features ``rijksFV16.mat``, several GB, and code) is not needed and skipped.
    """
    lower = name.lower()
    is_archive = lower.endswith(ARCHIVE_SUFFIXES)
    if "rijksgt" in lower and (lower.endswith(".mat") or is_archive):
        return "gt"
    if is_archive and "jpg" in lower:
        return "jpg"
    if is_archive and "xml" in lower:
        return "xml"
    return None


def _installed(root: Path) -> dict[str, bool]:
    return {"gt": (root / GT_FILE).is_file(), "jpg": (root / IMAGES_DIR).is_dir(), "xml": (root / XML_DIR).is_dir()}


def _extract(archive: Path, staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(staging)  # drops absolute paths and '..' (zipfile docs)
        else:
            with tarfile.open(archive, "r:*") as bundle:
                bundle.extractall(staging, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtbenchError(
            f"cannot extract {str(archive)!r} ({type(exc).__name__}: {exc}); delete it and download again"
        ) from None


def _install_from(staging: Path, root: Path) -> None:
    """Move what ``root`` lacks out of an extracted archive: ``rijksgt.mat``, the JPEG folder, the XML folder."""
    if not (root / GT_FILE).is_file():
        found = sorted(staging.rglob(GT_FILE))
        if found:
            found[0].replace(root / GT_FILE)
    for suffix, folder in (("jpg", IMAGES_DIR), ("xml", XML_DIR)):
        if (root / folder).is_dir():
            continue
        parents = {p.parent for p in staging.rglob(f"*.{suffix}")}
        if len(parents) > 1:
            raise ArtbenchError(f"the archive in {str(staging)!r} has .{suffix} files in {len(parents)} folders")
        if parents:
            parents.pop().rename(root / folder)


def download_rijks14(root: Path) -> None:
    """Fetch what ``root`` lacks of the ground truth, ``jpg2/`` and ``xml2/`` from figshare article 5660617.

    The file list, download URLs and md5 checksums come from the figshare public API, so nothing about the
    archives is assumed beyond their names mentioning ``rijksgt``, ``jpg`` or ``xml``. Each file is verified
    (length, md5) before it is unpacked; archives are deleted once unpacked.
    """
    if not hasattr(tarfile, "data_filter"):
        raise ArtbenchError("safe extraction of the archives needs Python >= 3.11.4; upgrade Python")
    root.mkdir(parents=True, exist_ok=True)
    if all(_installed(root).values()):
        return
    files = figshare_files()
    wanted = [(f, kind) for f in files if (kind := _kind(f["name"])) is not None and not f.get("is_link_only")]
    lacking = sorted({"gt", "jpg"} - {kind for _, kind in wanted})
    if lacking:
        listed = ", ".join(f["name"] for f in files) or "none"
        raise ArtbenchError(
            f"figshare article {ARTICLE_ID} lists no {' or '.join(lacking)} file (its files: {listed}); download "
            f"the data from {DOI_URL} by hand and put {GT_FILE} and {IMAGES_DIR}/ into {root}"
        )
    downloads = root / "downloads"
    downloads.mkdir(exist_ok=True)
    for info, kind in wanted:
        if _installed(root)[kind]:
            continue
        name = Path(info["name"]).name
        dest = downloads / name
        if not dest.is_file():
            try:
                fetch(info["download_url"], dest, info.get("computed_md5") or info.get("supplied_md5") or None)
            except ArtbenchError as exc:  # figshare's download URLs do not name the file
                raise ArtbenchError(f"{name}: {exc}") from None
        if name.lower().endswith(".mat"):
            dest.replace(root / GT_FILE)
            continue
        staging = downloads / f"{name}.extracting"
        _extract(dest, staging)
        _install_from(staging, root)
        shutil.rmtree(staging)
        dest.unlink()
    if not any(downloads.iterdir()):
        downloads.rmdir()
    installed = _installed(root)
    missing = [what for what, kind in ((GT_FILE, "gt"), (f"{IMAGES_DIR}/", "jpg")) if not installed[kind]]
    if missing:
        raise ArtbenchError(
            f"the figshare files held no {' and no '.join(missing)}; download the data from {DOI_URL} by hand "
            f"and put {GT_FILE} and {IMAGES_DIR}/ into {root}"
        )


def default_root() -> Path:
    return data_home() / "rijks14"


INFO = DatasetInfo(
    "rijks14",
    description="Rijksmuseum Challenge 2014: 112,039 images of Rijksmuseum objects; creator (374 + rest), "
    "type (103, multi-label), material (81, multi-label), year (regression); official 70/10/20 split",
    license="CC0 (Rijksmuseum metadata and images, per the Rijksmuseum OAI-API terms)",
    citation="Mensink, T., van Gemert, J. (2014). The Rijksmuseum Challenge: Museum-Centered Visual Recognition. "
    "ACM International Conference on Multimedia Retrieval (ICMR)",
    homepage=DOI_URL,
    targets=dict(TARGETS),
    splits="official",
)


@register_dataset(INFO, download=download_rijks14, default_root=default_root)
def rijks14_dataset(root: str | None = None, year_zero_as_unknown: bool = True) -> Dataset:
    """Rijks'14 with the challenge's targets and official split; ``year_zero_as_unknown=False`` keeps the 800
    ``[0 0]`` dates as year 0, as the original baseline did."""
    base = Path(root) if root else default_root()
    if not (base / GT_FILE).is_file():
        raise MissingPrerequisite(
            "data",
            f"Rijks'14 is not in {str(base)!r}: run `artbench datasets download rijks14` "
            "(or set ARTBENCH_DATA, or the task's dataset_options.root, to where it is)",
        )
    table = rijks14_table(base, year_zero_as_unknown=year_zero_as_unknown)
    return Dataset(
        "rijks14", table, missing_images_hint="run `artbench datasets download rijks14`", layout="2014 challenge"
    )
