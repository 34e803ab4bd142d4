"""Prepared image cache: every image decoded and resized once into a memory-mapped uint8 array.

Layout under ``<data home>/cache/<dataset>/<fingerprint>-<size>px/``: ``images.npy`` (``[N, S, S, 3]``, RGB,
shorter side resized to S then centre-cropped), one ``<feature>.npy`` per requested :class:`ImageFeature` (a
per-image vector a method computes from the full image while it is decoded, e.g. SilkNet's colour features) and
``meta.json``. Files are written under a temporary name and renamed when complete, so an interrupted preparation is
never mistaken for a finished one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from artbench.core.dataset import Dataset, data_home
from artbench.core.errors import ArtbenchError
from artbench.core.progress import progress_bar


@dataclass(frozen=True)
class ImageFeature:
    """A per-image vector computed while decoding: ``fn`` maps uint8 ``[B, size, size, 3]`` (the whole image resized
    to a square, no crop) to float32 ``[B, D]``. ``name`` keys the cache file, so it must encode every setting."""

    name: str
    size: int
    fn: Callable[[np.ndarray], np.ndarray]


@dataclass
class ImageCache:
    images: np.ndarray
    """``[N, S, S, 3]`` uint8, memory-mapped, rows in sample-table order."""
    features: dict[str, np.ndarray] = field(default_factory=dict)
    """``[N, D]`` float32 per requested :class:`ImageFeature`, by name."""


def _decode(path: str, size: int, feature_sizes: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG DCT down-scaling: decode no larger than needed
            rgb = img.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise ArtbenchError(f"cannot read image {path!r}: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ArtbenchError(
            f"image {path!r} is too large to decode safely ({exc}); downscale it, or raise PIL's limit in a plugin "
            "(PIL.Image.MAX_IMAGE_PIXELS)"
        ) from None
    w, h = rgb.size
    scale = size / min(w, h)
    resized = rgb.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    square = np.asarray(resized.crop((left, top, left + size, top + size)))
    return square, [np.asarray(rgb.resize((s, s), Image.BILINEAR)) for s in feature_sizes]


def require_images(dataset: Dataset) -> None:
    """Fail before any decoding when image files are absent, saying how many and how to get them."""
    missing = [p for p in dataset.table["image"] if not os.path.isfile(p)]
    if missing:
        raise ArtbenchError(
            f"{len(missing)} of {len(dataset.table)} images of dataset {dataset.name!r} are missing "
            f"(first: {missing[0]}); {dataset.missing_images_hint}"
        )


def _cache_dir(dataset: Dataset, size: int) -> Path:
    return data_home() / "cache" / dataset.name / f"{dataset.fingerprint}-{size}px"


def _decode_all(
    dataset: Dataset, image_file: Path, image_size: int, features: Sequence[ImageFeature], workers: int | None
) -> list[np.ndarray]:
    """Decode every image into the memory-mapped ``image_file``; return the requested features."""
    n = len(dataset.table)
    images = np.lib.format.open_memmap(image_file, "w+", np.uint8, (n, image_size, image_size, 3))
    computed: list[list[np.ndarray]] = [[] for _ in features]
    sizes = [f.size for f in features]
    paths = dataset.table["image"].tolist()
    chunk = 256
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, progress_bar() as bar:
        task = bar.add_task(f"preparing {dataset.name} at {image_size}px", total=n)
        for start in range(0, n, chunk):
            batch = list(pool.map(lambda p: _decode(p, image_size, sizes), paths[start : start + chunk]))
            images[start : start + len(batch)] = np.stack([b[0] for b in batch])
            for i, feature in enumerate(features):
                computed[i].append(np.asarray(feature.fn(np.stack([b[1][i] for b in batch])), dtype=np.float32))
            bar.advance(task, len(batch))
    images.flush()
    del images
    return [np.concatenate(parts) for parts in computed]


def prepare_cache(
    dataset: Dataset, image_size: int, *, features: Sequence[ImageFeature] = (), workers: int | None = None
) -> ImageCache:
    """Decode every image of ``dataset`` once (in parallel threads) and return the memory-mapped cache with the
    requested per-image ``features``; parts already prepared are reused."""
    folder = _cache_dir(dataset, image_size)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(dataset.table)
    image_file = folder / "images.npy"
    feature_files = {f.name: folder / f"{f.name}.npy" for f in features}
    need_images = not image_file.exists()
    missing = [f for f in features if not feature_files[f.name].exists()]
    if need_images or missing:
        require_images(dataset)
        # Per-process temporary names: concurrent runs preparing the same cache never write one file together.
        token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        image_tmp = folder / f"images.{token}.tmp.npy"
        feature_tmp = {f.name: folder / f"{f.name}.{token}.tmp.npy" for f in missing}
        try:
            computed = _decode_all(dataset, image_tmp, image_size, missing, workers)
            if need_images:
                os.replace(image_tmp, image_file)
            for feature, values in zip(missing, computed, strict=True):
                np.save(feature_tmp[feature.name], values)
                os.replace(feature_tmp[feature.name], feature_files[feature.name])
        finally:
            for tmp in (image_tmp, *feature_tmp.values()):
                tmp.unlink(missing_ok=True)
        meta = {
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint,
            "num_images": n,
            "image_size": image_size,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    images = np.load(image_file, mmap_mode="r")
    return ImageCache(images, {name: np.load(path, mmap_mode="r") for name, path in feature_files.items()})
