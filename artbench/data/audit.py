"""Leakage audit of a split: the same picture under different groups (records), which a grouped split cannot see.

A review of the real 2022 SILKNOW split found museum images listed under two record ids that sit in different
splits (research notes review 2026-11, item 4f). Three kinds of pair are reported, always between images of
*different* groups (the images of one group share a split by construction), per pair of splits:

* ``same_name``: the same image name (``name_key`` of the path: by default the file name; a dataset module may
  define ``image_name_key``, e.g. SILKNOW's ``<museum>__<image name>`` without the record id). Needs only the label
  files.
* ``exact``: byte-identical files (BLAKE2b-128 of the bytes).
* ``near``: perceptual hashes within ``threshold`` bits (Hamming distance) and not byte-identical. The hash is the
  64-bit DCT pHash (Zauner 2010, as ``imagehash.phash``): greyscale, 32x32 Lanczos downscale, 2-D DCT-II, the
  8x8 lowest frequencies, one bit per coefficient above their median.

Missing and unreadable image files are skipped and counted. :func:`leak_free_split` moves every connected set of
duplicate groups (union-find over all pairs, so chains are followed) into the earliest split among its members.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
import pandas as pd
import scipy.fft
from PIL import Image, UnidentifiedImageError

from artbench.core.dataset import DATASETS, SPLITS
from artbench.core.progress import progress_bar
from artbench.data.cache import upright

KINDS = ("same_name", "exact", "near")
PAIR_COLUMNS = ("kind", "split_a", "split_b", "group_a", "group_b", "image_a", "image_b", "distance")
DEFAULT_THRESHOLD = 6
HASH_SIZE = 8
"""The pHash keeps HASH_SIZE x HASH_SIZE DCT coefficients: 64 bits."""
DOWNSCALE = 32
SPLIT_PAIRS = tuple(itertools.combinations_with_replacement(SPLITS, 2))
_BLOCK = 256
"""Rows of the Hamming-distance matrix computed at a time (temporary memory about 9 x _BLOCK x N bytes: 110 MB
for 48,000 images; all pairs of 48,000 hashes take about 20 s on one core)."""

NameKey = Callable[[str], str]


def file_name(image: str) -> str:
    return PurePath(image).name


def name_key_for(dataset: str) -> NameKey:
    """The ``image_name_key`` of the module that registered ``dataset``, else the file name."""
    module = importlib.import_module(DATASETS.get(dataset).build.__module__)
    return getattr(module, "image_name_key", file_name)


def phash_of_pixels(grey: np.ndarray) -> int:
    """64-bit pHash of a ``DOWNSCALE x DOWNSCALE`` greyscale array; the first coefficient is the top bit."""
    coefficients = scipy.fft.dctn(np.asarray(grey, dtype=np.float64), type=2)[:HASH_SIZE, :HASH_SIZE]
    bits = (coefficients > np.median(coefficients)).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def phash(image: Image.Image) -> int:
    grey = image.convert("L").resize((DOWNSCALE, DOWNSCALE), Image.Resampling.LANCZOS)
    return phash_of_pixels(np.asarray(grey))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass
class ImageHashes:
    """Per sample-table row: BLAKE2b hex digest (``None`` when the file is missing) and pHash (valid where
    ``decoded``)."""

    digests: list[str | None]
    phashes: np.ndarray
    decoded: np.ndarray
    missing: int
    unreadable: int

    @property
    def hashed(self) -> int:
        return int(self.decoded.sum())


def _hash_file(path: str) -> tuple[str | None, int | None]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, None
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        with Image.open(path) as img:
            img.draft("L", (4 * DOWNSCALE, 4 * DOWNSCALE))  # JPEG: decode at a reduced scale, enough for 32 px
            return digest, phash(upright(img))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return digest, None


def hash_images(paths: Sequence[str], workers: int | None = None) -> ImageHashes:
    """Hash every existing file of ``paths`` (threads; PIL decodes without the GIL)."""
    present = [i for i, p in enumerate(paths) if os.path.isfile(p)]
    results: list[tuple[str | None, int | None]] = [(None, None)] * len(paths)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, progress_bar() as bar:
        task = bar.add_task("hashing images", total=len(present))
        for i, result in zip(present, pool.map(_hash_file, [paths[i] for i in present]), strict=True):
            results[i] = result
            bar.advance(task)
    digests = [d for d, _ in results]
    decoded = np.array([h is not None for _, h in results], dtype=bool)
    phashes = np.array([h or 0 for _, h in results], dtype=np.uint64)
    missing = sum(d is None for d in digests)
    return ImageHashes(digests, phashes, decoded, missing, int(len(paths) - missing - decoded.sum()))


def _ordered(split: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap each pair so that its first image is in the earlier split (train < val < test)."""
    rank = pd.Series(range(len(SPLITS)), index=list(SPLITS)).reindex(split).to_numpy()
    swap = rank[j] < rank[i]
    return np.where(swap, j, i), np.where(swap, i, j)


def _pairs_frame(
    kind: str, table: pd.DataFrame, split: np.ndarray, i: np.ndarray, j: np.ndarray, distance: np.ndarray | None
) -> pd.DataFrame:
    """Pairs ``(i, j)`` of rows in different groups, as :data:`PAIR_COLUMNS`."""
    groups = table["group"].astype(str).to_numpy()
    keep = groups[i] != groups[j]
    i, j = i[keep], j[keep]
    distance = distance[keep] if distance is not None else np.full(len(i), np.nan)
    a, b = _ordered(split, i, j)
    images = table["image"].astype(str).to_numpy()
    return pd.DataFrame(
        {
            "kind": kind,
            "split_a": split[a],
            "split_b": split[b],
            "group_a": groups[a],
            "group_b": groups[b],
            "image_a": images[a],
            "image_b": images[b],
            "distance": pd.array(distance, dtype="Int64"),
        },
        columns=list(PAIR_COLUMNS),
    )


def _pairs_within(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``i < j`` that share a key (NA keys excluded)."""
    valid = keys.dropna()
    positions = valid.index.to_numpy()
    pairs = [
        pair
        for rows in valid.groupby(valid).indices.values()
        if len(rows) > 1
        for pair in itertools.combinations(positions[rows], 2)
    ]
    both = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return both[:, 0], both[:, 1]


def same_name_pairs(table: pd.DataFrame, split: np.ndarray, name_key: NameKey = file_name) -> pd.DataFrame:
    """Images with one name key under different groups."""
    keys = pd.Series([name_key(p) for p in table["image"].astype(str)])
    i, j = _pairs_within(keys)
    return _pairs_frame("same_name", table, split, i, j, None)


def exact_pairs(table: pd.DataFrame, split: np.ndarray, hashes: ImageHashes) -> pd.DataFrame:
    """Byte-identical image files under different groups."""
    i, j = _pairs_within(pd.Series(hashes.digests, dtype=object))
    return _pairs_frame("exact", table, split, i, j, np.zeros(len(i), dtype=np.int64))


def _close_hashes(phashes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All index pairs ``i < j`` of ``phashes`` within ``threshold`` bits, blockwise, with their distances."""
    left, right, distances = [], [], []
    for start in range(0, len(phashes), _BLOCK):
        block = phashes[start : start + _BLOCK]
        rest = phashes[start:]
        distance = np.bitwise_count(block[:, None] ^ rest[None, :])
        rows, cols = np.nonzero(distance <= threshold)
        upper = cols > rows  # j > i within the remaining rows
        left.append(rows[upper] + start)
        right.append(cols[upper] + start)
        distances.append(distance[rows[upper], cols[upper]].astype(np.int64))
    if not left:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(left), np.concatenate(right), np.concatenate(distances)


def near_pairs(table: pd.DataFrame, split: np.ndarray, hashes: ImageHashes, threshold: int) -> pd.DataFrame:
    """Decoded images within ``threshold`` bits of pHash, not byte-identical, under different groups."""
    rows = np.flatnonzero(hashes.decoded)
    i, j, distance = _close_hashes(hashes.phashes[rows], threshold)
    i, j = rows[i], rows[j]
    digests = np.asarray(hashes.digests, dtype=object)
    differ = digests[i] != digests[j]
    return _pairs_frame("near", table, split, i[differ], j[differ], distance[differ])


@dataclass
class AuditReport:
    """The pairs found, and what could be hashed."""

    pairs: pd.DataFrame
    threshold: int
    images: int
    groups: int
    hashed: int = 0
    missing: int = 0
    unreadable: int = 0
    kinds: tuple[str, ...] = field(default=KINDS)
    """Kinds that were checked (``exact`` and ``near`` need image files)."""

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of pairs per kind and ``<split_a>-<split_b>`` (every split pair listed, zeros included)."""
        found = self.pairs.groupby(["kind", "split_a", "split_b"]).size()
        return {kind: {f"{a}-{b}": int(found.get((kind, a, b), 0)) for a, b in SPLIT_PAIRS} for kind in self.kinds}

    def summary(self) -> dict[str, object]:
        return {
            "images": self.images,
            "groups": self.groups,
            "threshold": self.threshold,
            "hashed": self.hashed,
            "missing": self.missing,
            "unreadable": self.unreadable,
            "pairs": self.counts(),
        }


def audit_split(
    table: pd.DataFrame,
    split: Sequence[str] | np.ndarray,
    name_key: NameKey = file_name,
    threshold: int = DEFAULT_THRESHOLD,
    hashes: ImageHashes | None = None,
) -> AuditReport:
    """All three kinds of pair of the sample table under ``split`` (hashes computed unless given; with no image
    file at all only ``same_name`` is checked)."""
    split = np.asarray(split, dtype=str)
    table = table.reset_index(drop=True)
    if hashes is None:
        hashes = hash_images(table["image"].astype(str).tolist())
    parts = [same_name_pairs(table, split, name_key)]
    kinds: tuple[str, ...] = ("same_name",)
    if hashes.missing < len(table):
        parts += [exact_pairs(table, split, hashes), near_pairs(table, split, hashes, threshold)]
        kinds = KINDS
    pairs = pd.concat(parts, ignore_index=True)
    return AuditReport(
        pairs,
        threshold,
        len(table),
        table["group"].nunique(),
        hashes.hashed,
        hashes.missing,
        hashes.unreadable,
        kinds,
    )


def leak_free_split(
    table: pd.DataFrame, split: Sequence[str] | np.ndarray, pairs: pd.DataFrame
) -> tuple[np.ndarray, int]:
    """``split`` with every connected set of duplicate groups moved to the earliest split among its members
    (train < val < test); also the number of images that moved."""
    split = np.asarray(split, dtype=str)
    groups = table["group"].astype(str).to_numpy()
    parent: dict[str, str] = {}

    def root(g: str) -> str:
        parent.setdefault(g, g)
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for a, b in zip(pairs["group_a"].astype(str), pairs["group_b"].astype(str), strict=True):
        parent[root(a)] = root(b)
    rank = {s: r for r, s in enumerate(SPLITS)}
    earliest: dict[str, int] = {}
    for g, s in zip(groups, split, strict=True):
        if g in parent:
            r = root(g)
            earliest[r] = min(earliest.get(r, len(SPLITS)), rank[s])
    fixed = np.array([SPLITS[earliest[root(g)]] if g in parent else s for g, s in zip(groups, split, strict=True)])
    return fixed, int((fixed != split).sum())
