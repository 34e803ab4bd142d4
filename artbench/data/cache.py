"""Prepared image cache: every image decoded and resized once into a memory-mapped uint8 array.

Layout under ``<data home>/cache/<dataset>/<fingerprint>-<size>px/``: ``images.npy`` (``[N, S, S, 3]``, RGB,
shorter side resized to S then centre-cropped), ``colour-g<G>.npy`` (the colour features h(x) of SilkNet §3.2,
``[N, G*G]``, computed on the image resized to 224 × 224) and ``meta.json``. Files are written under a temporary
name and renamed when complete, so an interrupted preparation is never mistaken for a finished one.
"""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from artbench.data.colour import COLOUR_SIZE, colour_features
from artbench.data.dataset import Dataset, data_home
from artbench.errors import ArtbenchError
from artbench.progress import progress_bar


@dataclass
class ImageCache:
    images: np.ndarray
    """``[N, S, S, 3]`` uint8, memory-mapped, rows in sample-table order."""
    colour: np.ndarray | None = None
    """``[N, G*G]`` float32 colour features, when requested."""


def _decode(path: str, size: int, colour: bool) -> tuple[np.ndarray, np.ndarray | None]:
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
    full = np.asarray(rgb.resize((COLOUR_SIZE, COLOUR_SIZE), Image.BILINEAR)) if colour else None
    return square, full


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
    dataset: Dataset, image_file: Path, image_size: int, colour_grid: int | None, workers: int | None
) -> np.ndarray | None:
    """Decode every image into the memory-mapped ``image_file``; return the colour features when asked for."""
    n = len(dataset.table)
    images = np.lib.format.open_memmap(image_file, "w+", np.uint8, (n, image_size, image_size, 3))
    colours = np.zeros((n, colour_grid**2), np.float32) if colour_grid else None
    paths = dataset.table["image"].tolist()
    chunk = 256
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool, progress_bar() as bar:
        task = bar.add_task(f"preparing {dataset.name} at {image_size}px", total=n)
        for start in range(0, n, chunk):
            batch = list(pool.map(lambda p: _decode(p, image_size, colours is not None), paths[start : start + chunk]))
            images[start : start + len(batch)] = np.stack([b[0] for b in batch])
            if colours is not None:
                full = torch.from_numpy(np.stack([b[1] for b in batch]))
                colours[start : start + len(batch)] = colour_features(full, grid=colour_grid).numpy()
            bar.advance(task, len(batch))
    images.flush()
    del images
    return colours


def prepare_cache(
    dataset: Dataset, image_size: int, *, colour_grid: int | None = None, workers: int | None = None
) -> ImageCache:
    """Decode every image of ``dataset`` once (in parallel threads) and return the memory-mapped cache."""
    folder = _cache_dir(dataset, image_size)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(dataset.table)
    image_file = folder / "images.npy"
    colour_file = folder / f"colour-g{colour_grid}.npy" if colour_grid else None
    need_images = not image_file.exists()
    need_colour = colour_file is not None and not colour_file.exists()
    if need_images or need_colour:
        require_images(dataset)
        # Per-process temporary names: concurrent runs preparing the same cache never write one file together.
        token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        image_tmp, colour_tmp = folder / f"images.{token}.tmp.npy", folder / f"colour.{token}.tmp.npy"
        try:
            colours = _decode_all(dataset, image_tmp, image_size, colour_grid if need_colour else None, workers)
            if need_images:
                os.replace(image_tmp, image_file)
            if colours is not None:
                np.save(colour_tmp, colours)
                os.replace(colour_tmp, colour_file)
        finally:
            image_tmp.unlink(missing_ok=True)
            colour_tmp.unlink(missing_ok=True)
        meta = {
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint,
            "num_images": n,
            "image_size": image_size,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    images = np.load(image_file, mmap_mode="r")
    colour = np.load(colour_file, mmap_mode="r") if colour_file else None
    return ImageCache(images, colour)
