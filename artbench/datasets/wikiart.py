"""WikiArt paintings with style, genre and artist labels, in two layouts (research notes §5).

``artgan`` (Tan et al., ICIP 2016; the "WikiArt (Refined)" split of ``cs-chan/ArtGAN``, §5.1), under ``root``:
``artgan/{Style,Genre,Artist}/`` holds the split files as published (class lists ``<idx> <Name>``; ``style_*.csv``
and ``genre_*.csv`` with ``path,idx`` rows and CRLF line ends; ``artist_train``/``artist_val`` with a
``(Path to image),, (Groundtruth class)`` header line, a blank line and ``path,,idx`` rows with LF line ends), and
``wikiart/<Style folder>/<file>.jpg`` the images of ``wikiart.zip``. Quirks handled here:

* paths are taken as exact strings: some are mojibake (double-encoded UTF-8, ``grã©goire-michonze_birds.jpg``)
  and name the files on disk that way, so nothing is re-encoded or normalised; lines are split at ``\\n`` only
  (``str.splitlines`` would also split at characters such as ``\\x85`` that mojibake can produce);
* labels come from the class lists, never from folder names: the ``Art_Nouveau_Modern`` folder holds the style
  ``Art_Nouveau``;
* one path is listed twice in ``genre_val.csv`` with two genres (cityscape, landscape): contradicting labels of one
  image become a missing label.

The sample table holds the union of the images of all split files (81,446) with the targets ``style`` (every
image), ``genre`` and ``artist`` (the images of their files; elsewhere missing). Each image is its own group.
ArtGAN ships train and val only, and val is what papers report on, so: an image in any ``*_val`` file is
``test``; of the others a fixed ``val_fraction`` (15 %, about 10 % of all images) is carved out as ``val`` by a
hash of ``val_seed`` and the path (reproducible without a saved file and independent of library versions), the
rest is ``train``. 566 images are in one target's train file and another's val file; they go to ``test`` and keep
only the labels of the files where they are val, so every target's test images are exactly its ArtGAN val file
(without the contradicting genre) and no test image is trained on through another target.

``huggan`` (Hugging Face ``huggan/wikiart``, §5.2): parquet shards ``data/train-*-of-*.parquet`` with the images'
bytes and ``artist``/``genre``/``style`` ClassLabel ids, whose names come from the shards' ``huggingface`` schema
metadata. The images are extracted once into ``hf-images/`` (atomically, with ``hf-images/labels.csv``) so the
image cache can read files. Labels are mapped by name: ``Unknown Artist``/``Unknown Genre`` are missing, the 23
ArtGAN artists get their ArtGAN names (``albrecht-durer`` -> ``Albrecht_Durer``; the ids differ), other artists
keep the Hugging Face name. This layout has no official split (a task on it needs ``protocol = "grouped"``) and
needs ``pyarrow``.

Neither layout has a media field: the metadata columns for multimodal methods are ``style`` and ``genre`` (a task
may use as metadata any of them that is not one of its targets). ``labelled_for`` keeps only the images with a
label for at least one of the named targets (the artist task needs 19,052 of the 81,446 images).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pandas as pd

from artbench.core.dataset import DataFile, Dataset, DatasetInfo, data_home, register_dataset
from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite
from artbench.datasets._download import fetch

ARTGAN_COMMIT = "27876da69ef538fd2bc90eb044e3231d4006f8e5"
ARTGAN_URL = f"https://raw.githubusercontent.com/cs-chan/ArtGAN/{ARTGAN_COMMIT}/WikiArt%20Dataset"
IMAGES_URL = "http://web.fsktm.um.edu.my/~cschan/source/ICIP2017/wikiart.zip"
TARGETS = ("style", "genre", "artist")
SPLIT_FILES = {  # target -> (folder, class list, ArtGAN split -> file)
    "style": ("Style", "style_class.txt", {"train": "style_train.csv", "val": "style_val.csv"}),
    "genre": ("Genre", "genre_class", {"train": "genre_train.csv", "val": "genre_val.csv"}),
    "artist": ("Artist", "artist_class", {"train": "artist_train", "val": "artist_val"}),
}
SPLIT_MD5 = {  # of the files at the pinned commit (shared/samples/wikiart/PROVENANCE.md)
    "Style/style_class.txt": "9822310543e5378cc7525f2fc47f45af",
    "Style/style_train.csv": "f3869bdd70322d82ff2f9853b5f145ac",
    "Style/style_val.csv": "fddd816dc6aed5cb11bfd3b84790fbad",
    "Genre/genre_class": "a153adbdb92e26c6920b2bf8f3512362",
    "Genre/genre_train.csv": "202b91aca8d1458fd18ea28e03441bb1",
    "Genre/genre_val.csv": "c926bff9e2919c4f0333e3fbaae194c7",
    "Artist/artist_class": "1255d8b0109fa4afac4ff6485cef4b84",
    "Artist/artist_train": "a58827c7833117bceba063b22287beef",
    "Artist/artist_val": "c987cbc056e88747cd61dce1a3c157d4",
}
ARTIST_HEADER = "(Path to image),, (Groundtruth class)"
ARTGAN_ARTISTS = (
    "Albrecht_Durer", "Boris_Kustodiev", "Camille_Pissarro", "Childe_Hassam", "Claude_Monet", "Edgar_Degas",
    "Eugene_Boudin", "Gustave_Dore", "Ilya_Repin", "Ivan_Aivazovsky", "Ivan_Shishkin", "John_Singer_Sargent",
    "Marc_Chagall", "Martiros_Saryan", "Nicholas_Roerich", "Pablo_Picasso", "Paul_Cezanne", "Pierre_Auguste_Renoir",
    "Pyotr_Konchalovsky", "Raphael_Kirchner", "Rembrandt", "Salvador_Dali", "Vincent_van_Gogh",
)  # fmt: skip
"""``artist_class`` in order; the Hugging Face names of these artists are their lower-case, hyphenated slugs."""
HF_UNKNOWN = {"artist": "Unknown Artist", "genre": "Unknown Genre"}
HF_IMAGES = "hf-images"
HF_LABELS = "labels.csv"
HF_SOURCE = "SOURCE.json"


# --------------------------------------------------------------------------------------------------
# ArtGAN layout


def _lines(path: Path) -> list[str]:
    """The file's lines split at LF only, a trailing CR removed (the files mix CRLF and LF)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtbenchError(f"{str(path)!r} is not UTF-8 ({exc}); download the ArtGAN split files again") from None
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_class_list(path: Path) -> list[str]:
    """Class names of an ArtGAN class list (``<idx> <Name>`` per line, indices 0..K-1 in order)."""
    names = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        index, _, name = line.partition(" ")
        if index != str(len(names)) or not name:
            raise ArtbenchError(f"{str(path)!r} line {number}: expected '{len(names)} <name>', got {line!r}")
        names.append(name)
    return names


def read_split_file(path: Path) -> list[tuple[str, int]]:
    """``(relative image path, class index)`` rows of an ArtGAN split file.

    Both row formats (``path,idx`` and the artist files' ``path,,idx``) split at the last comma (paths hold no
    commas); the artist files' header line and blank lines are skipped.
    """
    rows = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip() or line.rstrip() == ARTIST_HEADER:
            continue
        image, comma, index = line.rpartition(",")
        image = image.removesuffix(",")
        if not comma or not image or not re.fullmatch(r"\d+", index.strip()):
            raise ArtbenchError(f"{str(path)!r} line {number}: expected 'path,index' or 'path,,index', got {line!r}")
        rows.append((image, int(index)))
    return rows


def in_validation(path: str, fraction: float, seed: int) -> bool:
    """Whether a training image is carved out for validation: a hash of ``seed`` and the path below ``fraction``."""
    digest = hashlib.md5(f"{seed}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def split_of(files: dict[str, dict[str, set[str]]], image: str, val_fraction: float, val_seed: int) -> str:
    """``test`` for an image in any val file, else ``val`` or ``train`` by :func:`in_validation`."""
    if any("val" in by_split for by_split in files.values()):
        return "test"
    return "val" if in_validation(image, val_fraction, val_seed) else "train"


def artgan_table(root: Path, val_fraction: float = 0.15, val_seed: int = 0) -> pd.DataFrame:
    """The sample table of the ArtGAN split files in ``root/artgan`` (see the module docstring)."""
    listed: dict[str, dict[str, dict[str, set[str]]]] = {}  # image -> target -> ArtGAN split -> labels
    for target, (folder, class_file, files) in SPLIT_FILES.items():
        classes = read_class_list(root / "artgan" / folder / class_file)
        for artgan_split, name in files.items():
            path = root / "artgan" / folder / name
            for image, index in read_split_file(path):
                if index >= len(classes):
                    raise ArtbenchError(f"{str(path)!r}: class index {index} of {image!r} is not in {class_file}")
                listed.setdefault(image, {}).setdefault(target, {}).setdefault(artgan_split, set()).add(classes[index])
    images = list(listed)
    splits = [split_of(listed[image], image, val_fraction, val_seed) for image in images]
    table = pd.DataFrame({"image": [str(root / "wikiart" / image) for image in images], "group": images})
    table["split"] = splits
    for target in TARGETS:
        cells = []
        for image, split in zip(images, splits, strict=True):
            # a test image keeps only the labels of the files where it is val (see the module docstring)
            labels = listed[image].get(target, {}).get("val" if split == "test" else "train", set())
            cells.append(next(iter(labels)) if len(labels) == 1 else None)
        table[target] = cells
    return table


# --------------------------------------------------------------------------------------------------
# Hugging Face layout


def hf_shards(root: Path) -> list[Path]:
    return sorted((root / "data").glob("*.parquet"))


def _pyarrow_parquet() -> ModuleType:
    """``pyarrow.parquet``, imported when the parquet layout is read (pyarrow comes with mlflow, not with artbench)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ArtbenchError("reading the huggan/wikiart parquet layout needs pyarrow: `pip install pyarrow`") from None
    return pq


def hf_class_names(schema_metadata: dict[bytes, bytes] | None, shard: Path) -> dict[str, list[str]]:
    """ClassLabel names of ``artist``/``genre``/``style`` from a shard's ``huggingface`` schema metadata."""
    try:
        features = json.loads((schema_metadata or {})[b"huggingface"])["info"]["features"]
        return {target: list(features[target]["names"]) for target in TARGETS}
    except (KeyError, TypeError, ValueError):
        raise ArtbenchError(
            f"{str(shard)!r} lacks the Hugging Face feature metadata naming the artist/genre/style classes; "
            "download the huggan/wikiart shards again"
        ) from None


def _image_suffix(data: bytes) -> str:
    return ".jpg" if data[:2] == b"\xff\xd8" else ".png" if data[:4] == b"\x89PNG" else ".img"


def extract_hf_images(shards: Sequence[Path], dest: Path) -> None:
    """Write every image of the shards to ``dest`` with ``labels.csv`` (file, class names) and the shards' list.

    Everything is written to a staging folder that replaces ``dest`` when complete.
    """
    pq = _pyarrow_parquet()
    staging = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rows = []
    try:
        for shard in shards:
            parquet = pq.ParquetFile(shard)
            names = hf_class_names(parquet.schema_arrow.metadata, shard)
            number = 0
            for batch in parquet.iter_batches(batch_size=64, columns=["image", *TARGETS]):
                blobs = batch.column("image").field("bytes").to_pylist()
                ids = {target: batch.column(target).to_pylist() for target in TARGETS}
                for i, blob in enumerate(blobs):
                    if not blob:
                        raise ArtbenchError(f"{str(shard)!r} row {number} has no image bytes")
                    file = f"{shard.stem}-{number:05d}{_image_suffix(blob)}"
                    (staging / file).write_bytes(blob)
                    try:
                        rows.append([file] + [names[t][ids[t][i]] for t in TARGETS])
                    except (IndexError, TypeError):
                        raise ArtbenchError(f"{str(shard)!r} row {number}: a class id outside its names") from None
                    number += 1
        pd.DataFrame(rows, columns=["image", *TARGETS]).to_csv(staging / HF_LABELS, index=False)
        (staging / HF_SOURCE).write_text(json.dumps({s.name: s.stat().st_size for s in shards}, indent=1))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


def hf_table(root: Path) -> pd.DataFrame:
    """The sample table of the parquet shards in ``root/data``, extracting the images first when needed."""
    shards = hf_shards(root)
    images = root / HF_IMAGES
    source = images / HF_SOURCE
    extracted = json.loads(source.read_text()) if source.is_file() else None
    if extracted != {s.name: s.stat().st_size for s in shards}:
        extract_hf_images(shards, images)
    raw = pd.read_csv(images / HF_LABELS, dtype=str, keep_default_na=False)
    table = pd.DataFrame({"image": [str(images / f) for f in raw["image"]], "group": raw["image"]})
    artgan_artist = {name.lower().replace("_", "-"): name for name in ARTGAN_ARTISTS}
    table["style"] = raw["style"]
    table["genre"] = raw["genre"].mask(raw["genre"] == HF_UNKNOWN["genre"])
    table["artist"] = raw["artist"].map(lambda a: artgan_artist.get(a, a)).mask(raw["artist"] == HF_UNKNOWN["artist"])
    return table


# --------------------------------------------------------------------------------------------------
# Download


def _open_zip(path: Path) -> zipfile.ZipFile:
    """Names without the zip's UTF-8 flag are read as UTF-8 (as written on Linux), else as the standard's cp437."""
    try:
        return zipfile.ZipFile(path, metadata_encoding="utf-8")
    except UnicodeDecodeError:
        return zipfile.ZipFile(path)


def extract_images(archive: Path, root: Path) -> None:
    """Extract ``wikiart.zip`` and move its folder of style folders to ``root/wikiart``.

    A member whose path would leave the extraction folder (``../``, absolute) stops the extraction; macOS
    ``__MACOSX/`` resource forks are skipped.
    """
    staging = root / "wikiart.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    base = staging.resolve()
    try:
        with _open_zip(archive) as zf:
            members = [m for m in zf.infolist() if not m.filename.startswith("__MACOSX/")]
            unsafe = [m.filename for m in members if not (base / m.filename).resolve().is_relative_to(base)]
            if unsafe:
                raise ArtbenchError(f"{str(archive)!r} holds a path outside its folder ({unsafe[0]!r}); not extracted")
            zf.extractall(staging, members)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtbenchError(
            f"cannot extract {str(archive)!r} ({type(exc).__name__}: {exc}); delete it and download again"
        ) from None
    except ArtbenchError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    folders = {p.parent.parent for p in staging.rglob("*.jpg")}
    if len(folders) != 1:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtbenchError(f"{str(archive)!r} has style folders of JPEGs in {len(folders)} places; expected one")
    folders.pop().rename(root / "wikiart")
    shutil.rmtree(staging, ignore_errors=True)  # gone already when the style folders sat at the archive's top


def download_wikiart(root: Path) -> None:
    """Fetch the ArtGAN split files (GitHub, pinned commit) and the images (``wikiart.zip``) that ``root`` lacks."""
    for name, md5 in SPLIT_MD5.items():
        dest = root / "artgan" / name
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fetch(f"{ARTGAN_URL}/{name}", dest, md5)
    if (root / "wikiart").is_dir():
        return
    archive = root / "wikiart.zip"
    if not archive.is_file():
        fetch(IMAGES_URL, archive)
    extract_images(archive, root)
    archive.unlink()


# --------------------------------------------------------------------------------------------------
# Registration


def default_root() -> Path:
    return data_home() / "wikiart"


INFO = DatasetInfo(
    "wikiart",
    description="WikiArt paintings, ArtGAN split (Tan et al. 2016): 81,446 images, style 27, genre 10, artist 23",
    license="non-commercial research only (ArtGAN README); images: WikiArt.org terms",
    citation="Tan, W. R., Chan, C. S., Aguirre, H. E., Tanaka, K. (2016). Ceci n'est pas une pipe: a deep "
    "convolutional network for fine-art paintings classification. ICIP 2016",
    homepage="https://github.com/cs-chan/ArtGAN/tree/master/WikiArt%20Dataset",
    targets={t: "multiclass" for t in TARGETS},
    splits="official",
    files=(
        *(DataFile(f"artgan/{n}", f"{ARTGAN_URL}/{n}", md5) for n, md5 in SPLIT_MD5.items()),
        DataFile("wikiart.zip", IMAGES_URL),
    ),
)


@register_dataset(INFO, download=download_wikiart, default_root=default_root)
def wikiart_dataset(
    root: str | None = None,
    layout: str | None = None,
    val_fraction: float = 0.15,
    val_seed: int = 0,
    labelled_for: Sequence[str] | None = None,
) -> Dataset:
    """WikiArt in the ``artgan`` or ``huggan`` layout (found from the files unless ``layout`` names one)."""
    base = Path(root) if root else default_root()
    found = [
        name
        for name, present in (
            ("artgan", (base / "artgan" / "Style" / "style_train.csv").is_file()),
            ("huggan", bool(hf_shards(base))),
        )
        if present
    ]
    if layout not in (None, "artgan", "huggan"):
        raise ArtbenchError(f"WikiArt layout {layout!r} is unknown; valid: artgan, huggan")
    if not found or (layout is not None and layout not in found):
        raise MissingPrerequisite(
            "data",
            f"WikiArt{f' ({layout} layout)' if layout else ''} is not in {str(base)!r}: run `artbench datasets "
            f"download wikiart` (ArtGAN split files and images), or put the huggan/wikiart parquet shards in "
            f"{str(base / 'data')!r} (`huggingface-cli download huggan/wikiart --repo-type dataset --local-dir ROOT`)",
        )
    chosen = layout or found[0]
    if not 0 < val_fraction < 1:
        raise ArtbenchError(f"WikiArt val_fraction must be between 0 and 1, got {val_fraction}")
    table = artgan_table(base, val_fraction, val_seed) if chosen == "artgan" else hf_table(base)
    if labelled_for is not None:
        unknown = sorted(set(labelled_for) - set(TARGETS))
        if unknown or not labelled_for:
            raise ArtbenchError(f"WikiArt labelled_for names {unknown or 'no target'}; valid: {', '.join(TARGETS)}")
        table = table[table[list(labelled_for)].notna().any(axis=1)].reset_index(drop=True)
    hint = (
        "run `artbench datasets download wikiart`"
        if chosen == "artgan"
        else f"delete {str(base / HF_IMAGES)!r} to extract the images from the parquet shards again"
    )
    return Dataset("wikiart", table, missing_images_hint=hint, layout=chosen)
