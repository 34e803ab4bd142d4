"""SIFT descriptors and k-means visual vocabularies (bag of visual words), cached on disk.

The iMet report (seeds/002, §2.1.1) extracts keypoint descriptors from the training images, groups them into a
vocabulary of visual words with k-means and represents an image by the count of each word among its descriptors.
Here: OpenCV's SIFT (Lowe 2004) on the greyscale image of the prepared cache, scikit-learn's MiniBatchKMeans fitted
on a bounded, seeded random sample of the *training* descriptors, and L1-normalised word histograms.

Both steps are cached under ``<data home>/features/sift/<dataset>/``:

* ``<key digest>/``: the descriptors of every image of the dataset at one image size (they do not depend on the
  seed or the task): ``descriptors.u8`` (raw uint8 ``[D, 128]``), ``offsets.npy`` (int64 ``[N + 1]``, image i owns
  rows ``offsets[i]:offsets[i + 1]``) and ``key.json``;
* ``<key digest>/vocabulary-<size>-seed<seed>-<key digest>/``: one vocabulary (``words.npy``, float32 ``[V, 128]``)
  and the histograms of every image (``histograms.npy``, float32 ``[N, V]``), keyed by the vocabulary size, the seed,
  the sample bound and the training rows.

A folder is built under a temporary name and renamed when complete; its sidecar ``key.json`` holds the full key and
the byte size of each file and is compared on every load, so a folder of other settings, or a truncated or
half-written one, is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import scipy.sparse
import sklearn
from joblib import Parallel, delayed
from sklearn.cluster import MiniBatchKMeans
from threadpoolctl import threadpool_limits

from artbench.core.dataset import Dataset, data_home
from artbench.core.errors import ArtbenchError
from artbench.core.progress import progress_bar

DESCRIPTOR_SIZE = 128
FORMAT_VERSION = 1
"""Bumped whenever the cached bytes of either step change."""
EXTRACTION_CHUNK = 64
"""Images per parallel extraction job."""
ASSIGNMENT_CHUNK = 65_536
"""Descriptors assigned to their nearest word at once (bounds the [chunk, V] distance matrix)."""


@dataclass(frozen=True)
class Descriptors:
    """The SIFT descriptors of every image of a dataset, concatenated in sample-table order."""

    values: np.ndarray
    """uint8 ``[D, 128]`` (OpenCV's float SIFT descriptors hold integers 0-255), memory-mapped."""
    offsets: np.ndarray
    """int64 ``[N + 1]``: image i owns ``values[offsets[i]:offsets[i + 1]]``."""
    folder: Path
    """The cache folder; its name is the digest of the cache key, and the vocabularies built on them live in it."""
    loaded: bool
    """Read from the cache rather than computed now."""

    @property
    def counts(self) -> np.ndarray:
        """Descriptors per image ``[N]``."""
        return np.diff(self.offsets)

    def positions(self, rows: np.ndarray, picks: np.ndarray) -> np.ndarray:
        """Row numbers in ``values`` of the ``picks``-th descriptors among those of images ``rows`` (concatenated)."""
        starts, counts = self.offsets[rows], self.counts[rows]
        ends = np.cumsum(counts)
        owner = np.searchsorted(ends, picks, side="right")
        return starts[owner] + picks - (ends[owner] - counts[owner])


@dataclass(frozen=True)
class Vocabulary:
    """A visual vocabulary and the L1-normalised word histograms of every image of the dataset."""

    words: np.ndarray
    """float32 ``[V, 128]``: the k-means centres."""
    histograms: np.ndarray
    """float32 ``[N, V]``: share of each word among an image's descriptors (all zero for an image without any)."""
    sampled: int
    """Training descriptors the k-means was fitted on."""
    loaded: bool


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _is_complete(folder: Path, key: dict[str, Any], files: tuple[str, ...]) -> bool:
    """Whether ``folder``'s sidecar holds ``key`` and every file has the byte size recorded when it was written."""
    try:
        sidecar = json.loads((folder / "key.json").read_text())
        return sidecar["key"] == key and all((folder / f).stat().st_size == sidecar["bytes"][f] for f in files)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _build_once(folder: Path, key: dict[str, Any], files: tuple[str, ...], build: Callable[[Path], None]) -> bool:
    """Make ``folder`` hold ``files`` built for ``key``; return whether it already did (nothing was computed).

    ``build(tmp)`` writes the files into a temporary sibling folder, which gets the sidecar ``key.json`` (the key and
    each file's byte size) and is renamed to ``folder`` when complete; a stale folder (other key, a missing or
    truncated file) is replaced. When a concurrent run finished the same folder first, its result is kept.
    """
    if _is_complete(folder, key, files):
        return True
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        build(tmp)
        sizes = {f: (tmp / f).stat().st_size for f in files}
        (tmp / "key.json").write_text(json.dumps({"key": key, "bytes": sizes}, indent=2, sort_keys=True))
        if folder.exists() and not _is_complete(folder, key, files):
            shutil.rmtree(folder)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _is_complete(folder, key, files):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return False


def sift_folder(dataset: Dataset, image_size: int, max_keypoints: int) -> tuple[Path, dict[str, Any]]:
    """The cache folder and key of a dataset's descriptors at ``image_size`` px."""
    key = {
        "step": "sift-descriptors",
        "format": FORMAT_VERSION,
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint,
        "num_images": len(dataset.table),
        "image_size": image_size,
        "max_keypoints": max_keypoints,
        "opencv": cv2.__version__,
    }
    return data_home() / "features" / "sift" / dataset.name / _digest(key), key


def _extract(images: np.ndarray, max_keypoints: int) -> list[np.ndarray]:
    """SIFT descriptors (uint8 ``[k, 128]``) of RGB uint8 images ``[B, S, S, 3]``."""
    sift = cv2.SIFT_create(nfeatures=max_keypoints)  # one detector per job: OpenCV objects are not shared by threads
    out = []
    for rgb in images:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        _, values = sift.detectAndCompute(grey, None)
        out.append(np.zeros((0, DESCRIPTOR_SIZE), np.uint8) if values is None else values.astype(np.uint8))
    return out


def extract_sift(images: np.ndarray, max_keypoints: int = 0, label: str = "SIFT") -> tuple[np.ndarray, np.ndarray]:
    """Descriptors ``[D, 128]`` uint8 and offsets ``[N + 1]`` of RGB images ``[N, S, S, 3]``, over all CPU cores.

    Jobs are threads: OpenCV releases the GIL while it computes, and threads read the memory-mapped images without
    copying them into worker processes. OpenCV's own threading is off meanwhile, so the cores are not oversubscribed.
    """
    n = len(images)
    chunks = [(start, min(start + EXTRACTION_CHUNK, n)) for start in range(0, n, EXTRACTION_CHUNK)]
    parts: list[np.ndarray] = []
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        jobs = (delayed(_extract)(images[a:b], max_keypoints) for a, b in chunks)
        with progress_bar() as bar:
            task = bar.add_task(label, total=n)
            for descriptors in Parallel(n_jobs=-1, prefer="threads", return_as="generator")(jobs):
                parts += descriptors
                bar.advance(task, len(descriptors))
    finally:
        cv2.setNumThreads(threads)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    values = np.concatenate(parts) if parts else np.zeros((0, DESCRIPTOR_SIZE), np.uint8)
    return values, offsets


def _load_values(path: Path, count: int) -> np.ndarray:
    if count == 0:
        return np.zeros((0, DESCRIPTOR_SIZE), np.uint8)
    return np.memmap(path, np.uint8, "r", shape=(count, DESCRIPTOR_SIZE))


def sift_descriptors(dataset: Dataset, images: np.ndarray, image_size: int, max_keypoints: int = 0) -> Descriptors:
    """The descriptors of every image of ``dataset`` (``images``: its prepared cache at ``image_size`` px), computed
    once per (dataset fingerprint, image size, SIFT settings) and then read from the cache."""
    folder, key = sift_folder(dataset, image_size, max_keypoints)
    files = ("descriptors.u8", "offsets.npy")

    def build(tmp: Path) -> None:
        values, offsets = extract_sift(images, max_keypoints, f"SIFT descriptors of {dataset.name} at {image_size}px")
        values.tofile(tmp / files[0])
        np.save(tmp / files[1], offsets)

    loaded = _build_once(folder, key, files, build)
    offsets = np.load(folder / files[1])
    return Descriptors(_load_values(folder / files[0], int(offsets[-1])), offsets, folder, loaded)


def word_histograms(descriptors: Descriptors, kmeans: MiniBatchKMeans) -> np.ndarray:
    """float32 ``[N, V]``: per image, the share of its descriptors nearest to each word (rows of zeros where an image
    has no descriptor)."""
    n, size = len(descriptors.offsets) - 1, kmeans.n_clusters
    words = np.empty(len(descriptors.values), np.int64)
    for start in range(0, len(words), ASSIGNMENT_CHUNK):
        chunk = np.asarray(descriptors.values[start : start + ASSIGNMENT_CHUNK], np.float32)
        words[start : start + len(chunk)] = kmeans.predict(chunk)
    owners = np.repeat(np.arange(n), descriptors.counts)
    counts = scipy.sparse.coo_matrix((np.ones(len(words), np.float32), (owners, words)), shape=(n, size)).toarray()
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def visual_vocabulary(
    descriptors: Descriptors, train_rows: np.ndarray, size: int, max_sample: int, seed: int
) -> Vocabulary:
    """A ``size``-word vocabulary fitted on at most ``max_sample`` descriptors of the ``train_rows`` images, drawn at
    random with ``seed`` (which also seeds k-means), and the histograms of every image; cached per key.

    Raises ArtbenchError when fewer descriptors than ``size`` would be sampled (before any clustering).
    """
    train_rows = np.sort(np.asarray(train_rows, np.int64))
    available = int(descriptors.counts[train_rows].sum())
    sampled = min(available, max_sample)
    if sampled < size:
        raise ArtbenchError(
            f"vocabulary_size={size} is larger than the {sampled} SIFT descriptors sampled from the {len(train_rows)} "
            "training images; lower vocabulary_size, or raise image_size so that SIFT finds more keypoints"
        )
    key = {
        "step": "visual-vocabulary",
        "format": FORMAT_VERSION,
        "descriptors": descriptors.folder.name,
        "vocabulary_size": size,
        "max_sample": max_sample,
        "seed": seed,
        "train_rows": hashlib.sha256(train_rows.tobytes()).hexdigest(),
        "scikit-learn": sklearn.__version__,
    }
    files = ("words.npy", "histograms.npy")
    folder = descriptors.folder / f"vocabulary-{size}-seed{seed}-{_digest(key)}"

    def build(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        picks = np.sort(rng.choice(available, size=sampled, replace=False))
        sample = np.asarray(descriptors.values[descriptors.positions(train_rows, picks)], np.float32)
        # One thread: mini-batch steps are too small to share, and OpenMP threads spin-waiting for each other made a
        # 64-word fit 20 times slower on a busy 2-core machine.
        with threadpool_limits(1, user_api="openmp"):
            kmeans = MiniBatchKMeans(n_clusters=size, random_state=seed, n_init="auto").fit(sample)
        np.save(tmp / files[0], kmeans.cluster_centers_.astype(np.float32))
        np.save(tmp / files[1], word_histograms(descriptors, kmeans))

    loaded = _build_once(folder, key, files, build)
    return Vocabulary(np.load(folder / files[0]), np.load(folder / files[1], mmap_mode="r"), sampled, loaded)
