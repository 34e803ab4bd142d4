"""Prepared image cache: every image decoded and resized once into a memory-mapped uint8 array.

Layout under ``<data home>/cache/<dataset>/<fingerprint>-<size>px/``: ``images.npy`` (``[N, S, S, 3]``, RGB,
turned upright by its EXIF orientation, shorter side resized to S then centre-cropped), one ``<feature>.npy`` per
requested :class:`ImageFeature` (a per-image vector a method computes from the full image while it is decoded, e.g.
SilkNet's colour features), ``meta.json`` (shape, size and checksum of every file, the skipped rows) and
``skipped.csv`` (image, reason) when some images are missing or unreadable: their rows are zeros and
:attr:`ImageCache.skipped` lists them so that a caller can drop them.

Files are written under a temporary name and renamed when complete, and one preparation at a time holds the
folder's lock, so an interrupted or concurrent preparation is never mistaken for a finished one. On load every
file is checked cheaply against ``meta.json`` (byte size, shape, a checksum of up to :data:`CHECKSUM_ROWS`
evenly spaced rows): a truncated or overwritten file is prepared again, with a warning, never trained on.

Every mode Pillow opens becomes 8-bit RGB with its information kept (:func:`as_rgb`): pixels are first turned as
the file's EXIF orientation tag says (a camera's portrait JPEG is stored sideways); transparency is composited over
white (:data:`WHITE`), premultiplied modes (``RGBa``, ``La``) included; 16-bit samples are scaled to 8 bits, never
clipped (``I;16*`` by 1/257, a 48-bit PNG by Pillow's high byte); 32-bit integer and float greyscale by their range;
palette, bilevel, CMYK, YCbCr, LAB (D50, to sRGB) and HSV through Pillow's colour conversions.

Decoding runs in worker processes, one per core, on chunks of :data:`CHUNK_IMAGES` images written straight into
the memory map. Threads would not scale: profiled, a 64-px silknow-synth PNG spends 57 % of its decode holding the
GIL (file parsing in Python) and a real 500-px Rijks'14 JPEG 22-24 %, which caps threads at about 1.8x and 4x
whatever the cores. JPEGs are decoded at a reduced scale (``draft``) no smaller than the largest size needed.
Features are computed here, in the parent, from the whole images the workers send back.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import multiprocessing
import os
import stat
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from rich.markup import escape

from artbench.core.dataset import Dataset, data_home
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console, progress_bar

CACHE_FORMAT = 3
"""Version of ``meta.json`` and of the decoding (3: EXIF orientation applied); a cache without it (or with another)
is prepared again."""
CHUNK_IMAGES = 64
"""Images per worker task."""
CHECKSUM_ROWS = 64
"""Rows (evenly spaced, first and last included) whose bytes the checksum of a cache file covers."""
SHOWN_PROBLEMS = 3
"""Missing or unreadable images named in a warning."""
WHITE = (255, 255, 255)
"""What transparent pixels are composited over."""


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
    skipped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Sorted rows whose image was missing or unreadable: zeros in ``images`` and ``features``; drop them."""


# --------------------------------------------------------------------------------------------------
# Decoding (runs in worker processes)


class _Unreadable(Exception):
    """An image that is missing or cannot be decoded; its row is skipped."""


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned and mirrored as its EXIF orientation tag says (itself when there is none)."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def as_rgb(image: Image.Image) -> Image.Image:
    """Any mode Pillow opens as 8-bit RGB.

    Transparency (LA, La, PA, RGBA, RGBa, a palette, greyscale or RGB with a transparent colour) is composited over
    white; 16-bit greyscale (``I;16*``) is scaled by 1/257; 32-bit integer (``I``) and float (``F``) greyscale are
    read by their range: 0-255 as is, 0-65535 (``I``) or 0-1 (``F``) scaled to 0-255, anything else stretched from
    its minimum to its maximum; bilevel, palette, CMYK, YCbCr, LAB and HSV go through Pillow's conversions.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_greyscale_to_uint8(np.asarray(image), mode)).convert("RGB")
    if mode == "La":  # premultiplied: Pillow converts it to LA only
        image = image.convert("LA")
    if image.mode in ("LA", "PA", "RGBA", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (*WHITE, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def _greyscale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    values = np.nan_to_num(values.astype(np.float64))
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        scale, offset = 1.0 / 257.0, 0.0
    elif low >= 0 and high <= 255 and (mode == "I" or high > 1):
        scale, offset = 1.0, 0.0
    elif low >= 0 and high <= (65535 if mode == "I" else 1):
        scale, offset = 255.0 / (65535 if mode == "I" else 1), 0.0
    else:
        scale, offset = 255.0 / max(high - low, 1e-12), low
    return np.clip(np.rint((values - offset) * scale), 0, 255).astype(np.uint8)


def _decode(path: str, size: int, feature_sizes: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The centre-cropped ``[size, size, 3]`` square and the whole image at each feature size.

    Only regular files are opened: a folder is unreadable and a named pipe would block the decoder for ever; a
    symlink loop or a forbidden file is unreadable with the system's reason (issue 14, "Hardening")."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise _Unreadable("unreadable (not a regular file)")
        with Image.open(path) as img:
            needed = max((size, *feature_sizes))
            img.draft("RGB", (needed, needed))  # JPEG DCT scaling: both sides stay >= needed
            rgb = as_rgb(upright(img))
            rgb.load()
    except FileNotFoundError:
        raise _Unreadable("missing") from None
    except Image.DecompressionBombError as exc:
        raise ArtbenchError(
            f"image {path!r} is too large to decode safely ({exc}); downscale it, or raise PIL's limit in a plugin "
            "(PIL.Image.MAX_IMAGE_PIXELS)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # PIL raises all of these
        raise _Unreadable(f"unreadable ({type(exc).__name__}: {exc})") from None
    w, h = rgb.size
    side = min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    square = np.asarray(rgb.resize((size, size), Image.BILINEAR, box=box))
    return square, [np.asarray(rgb.resize((s, s), Image.BILINEAR)) for s in feature_sizes]


@dataclass(frozen=True)
class _Chunk:
    """One worker task: decode ``paths`` into rows ``start:`` of ``image_file``."""

    paths: list[str]
    start: int
    image_file: str
    size: int
    feature_sizes: tuple[int, ...]
    max_image_pixels: int | None
    """The parent's ``PIL.Image.MAX_IMAGE_PIXELS`` (a plugin may have changed it)."""


def _decode_chunk(chunk: _Chunk) -> tuple[int, list[np.ndarray], list[tuple[int, str]]]:
    """Decode ``chunk`` into rows ``start:`` of the memory-mapped image file; return the feature inputs and the
    (row, reason) of every image skipped (its rows stay zero)."""
    Image.MAX_IMAGE_PIXELS = chunk.max_image_pixels
    images = np.load(chunk.image_file, mmap_mode="r+")
    inputs = [np.zeros((len(chunk.paths), s, s, 3), np.uint8) for s in chunk.feature_sizes]
    problems = []
    for i, path in enumerate(chunk.paths):
        try:
            square, resized = _decode(path, chunk.size, chunk.feature_sizes)
        except _Unreadable as exc:
            problems.append((chunk.start + i, str(exc)))
            continue
        images[chunk.start + i] = square
        for k, array in enumerate(resized):
            inputs[k][i] = array
    del images
    return chunk.start, inputs, problems


def _pool(workers: int) -> Executor:
    """Worker processes: forked on Linux (they start at once, and a user's script without a ``__main__`` guard is
    not run again in each of them; the children only decode with PIL and NumPy), spawned elsewhere."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def _decoded(chunks: list[_Chunk], workers: int) -> Iterator[tuple[int, list[np.ndarray], list[tuple[int, str]]]]:
    """Results of ``chunks`` in order, at most ``2 * workers`` in flight (the parent consumes the feature inputs)."""
    if workers == 1 or len(chunks) == 1:
        yield from map(_decode_chunk, chunks)
        return
    pool = _pool(workers)
    try:
        todo = iter(chunks)
        running = deque(pool.submit(_decode_chunk, c) for c in itertools.islice(todo, 2 * workers))
        while running:
            result = running.popleft().result()
            if (following := next(todo, None)) is not None:
                running.append(pool.submit(_decode_chunk, following))
            yield result
    except BrokenProcessPool:
        raise ArtbenchError(
            "an image-decoding process died (killed, or out of memory); free some memory and run again"
        ) from None
    finally:
        pool.shutdown(cancel_futures=True)


# --------------------------------------------------------------------------------------------------
# Preparation


def require_images(dataset: Dataset) -> list[str]:
    """Fail when none of the dataset's image files exists (the dataset is not there), with the dataset's hint;
    when some are missing, warn with their count and the first few (preparation skips them). Returns them."""
    paths = dataset.table["image"].tolist()
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing and len(missing) == len(paths):
        raise ArtbenchError(
            f"all {len(paths)} images of dataset {dataset.name!r} are missing (first: {missing[0]}); "
            f"{dataset.missing_images_hint}"
        )
    if missing:
        console.print(
            f"[yellow]warning:[/] {len(missing)} of {len(paths)} images of dataset {escape(repr(dataset.name))} are "
            f"missing and will be skipped (first: {escape(', '.join(missing[:SHOWN_PROBLEMS]))}); "
            f"{escape(dataset.missing_images_hint)}",
            soft_wrap=True,
            highlight=False,
        )
    return missing


def _cache_dir(dataset: Dataset, size: int) -> Path:
    return data_home() / "cache" / dataset.name / f"{dataset.fingerprint}-{size}px"


def _default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One preparation of ``folder`` at a time (an advisory ``flock``; none where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: temporary names and atomic renames still keep files whole
        yield
        return
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _checksum(array: np.ndarray) -> str:
    """Checksum of an array's shape, dtype and up to :data:`CHECKSUM_ROWS` evenly spaced rows."""
    digest = hashlib.blake2b(f"{array.shape}|{array.dtype}".encode(), digest_size=16)
    if len(array):
        for row in np.unique(np.linspace(0, len(array) - 1, min(len(array), CHECKSUM_ROWS)).round().astype(int)):
            digest.update(np.ascontiguousarray(array[row]).tobytes())
    return digest.hexdigest()


def _file_record(path: Path) -> dict[str, object]:
    array = np.load(path, mmap_mode="r")
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "bytes": path.stat().st_size,
        "checksum": _checksum(array),
    }


def _damage(path: Path, record: dict | None, shape: tuple[int, ...]) -> str | None:
    """Why ``path`` cannot be used (absent, unrecorded, truncated, overwritten, stale), or None when it is sound."""
    if not path.is_file():
        return "absent"
    if record is None:
        return "not recorded in meta.json (prepared by an older artbench, or interrupted)"
    size = path.stat().st_size
    if size != record.get("bytes"):
        return f"{size} bytes where meta.json records {record.get('bytes')} (truncated or overwritten)"
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    if list(array.shape[: len(shape)]) != list(shape) or list(array.shape) != record.get("shape"):
        return f"shape {list(array.shape)} where {record.get('shape')} is expected"
    if _checksum(array) != record.get("checksum"):
        return "its checksum differs from meta.json (overwritten)"
    return None


def _read_meta(folder: Path, dataset: Dataset, size: int) -> dict:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    expected = {"format": CACHE_FORMAT, "fingerprint": dataset.fingerprint, "image_size": size}
    if any(meta.get(k) != v for k, v in expected.items()) or meta.get("num_images") != len(dataset.table):
        return {}
    return meta


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _decode_all(
    dataset: Dataset, image_file: Path, image_size: int, features: Sequence[ImageFeature], workers: int
) -> tuple[list[np.ndarray], list[tuple[int, str]]]:
    """Decode every image into the memory-mapped ``image_file``; return the requested features and the skipped
    (row, reason) pairs."""
    n = len(dataset.table)
    np.lib.format.open_memmap(image_file, "w+", np.uint8, (n, image_size, image_size, 3)).flush()  # zeros
    paths = dataset.table["image"].astype(str).tolist()
    sizes = tuple(f.size for f in features)
    chunks = [
        _Chunk(paths[s : s + CHUNK_IMAGES], s, str(image_file), image_size, sizes, Image.MAX_IMAGE_PIXELS)
        for s in range(0, n, CHUNK_IMAGES)
    ]
    computed: list[list[np.ndarray]] = [[] for _ in features]
    skipped: list[tuple[int, str]] = []
    with progress_bar() as bar:
        task = bar.add_task(f"preparing {dataset.name} at {image_size}px", total=n)
        for start, inputs, problems in _decoded(chunks, workers):
            skipped += problems
            local = [row - start for row, _ in problems]
            for k, feature in enumerate(features):
                values = np.array(feature.fn(inputs[k]), dtype=np.float32)
                values[local] = 0.0
                computed[k].append(values)
            bar.advance(task, min(CHUNK_IMAGES, n - start))
    return [np.concatenate(parts) for parts in computed], skipped


def prepare_cache(
    dataset: Dataset, image_size: int, *, features: Sequence[ImageFeature] = (), workers: int | None = None
) -> ImageCache:
    """Decode every image of ``dataset`` once (``workers`` processes, default one per core; 1 decodes in this
    process) and return the memory-mapped cache with the requested per-image ``features``; sound parts already
    prepared are reused, damaged ones prepared again. Missing or unreadable images are skipped (module docstring);
    a dataset whose images are all missing is an error."""
    folder = _cache_dir(dataset, image_size)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(dataset.table)
    files = {"images": folder / "images.npy"} | {f.name: folder / f"{f.name}.npy" for f in features}
    shapes = {"images": (n, image_size, image_size, 3)} | {f.name: (n,) for f in features}
    with _locked(folder):
        meta = _read_meta(folder, dataset, image_size)
        records = meta.get("files", {})
        damage = {name: _damage(path, records.get(path.name), shapes[name]) for name, path in files.items()}
        for name, why in damage.items():
            if why not in (None, "absent"):
                console.print(
                    f"[yellow]warning:[/] image cache file {escape(str(files[name]))} is unusable: {escape(why)}; "
                    "preparing it again",
                    soft_wrap=True,
                    highlight=False,
                )
        todo = [f for f in features if damage[f.name]]
        if damage["images"] or todo:
            require_images(dataset)
            token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
            image_tmp = folder / f"images.{token}.tmp.npy"
            feature_tmp = {f.name: folder / f"{f.name}.{token}.tmp.npy" for f in todo}
            try:
                start = time.perf_counter()
                computed, skipped = _decode_all(dataset, image_tmp, image_size, todo, workers or _default_workers())
                elapsed = time.perf_counter() - start
                if n and len(skipped) == n:
                    first = dataset.table["image"].iloc[skipped[0][0]]
                    raise ArtbenchError(
                        f"none of the {n} images of dataset {dataset.name!r} can be read (first: {first}: "
                        f"{skipped[0][1]}); {dataset.missing_images_hint}"
                    )
                outputs = {"images": image_tmp} if damage["images"] else {}
                for feature, values in zip(todo, computed, strict=True):
                    np.save(feature_tmp[feature.name], values)
                    outputs[feature.name] = feature_tmp[feature.name]
                for name, tmp in outputs.items():
                    records[files[name].name] = _file_record(tmp)
                    os.replace(tmp, files[name])
            finally:
                for tmp in (image_tmp, *feature_tmp.values()):
                    tmp.unlink(missing_ok=True)
            skipped.sort()
            _write_skipped(folder, dataset, skipped)
            meta = {
                "format": CACHE_FORMAT,
                "dataset": dataset.name,
                "fingerprint": dataset.fingerprint,
                "num_images": n,
                "image_size": image_size,
                "files": records,
                "skipped_rows": [row for row, _ in skipped],
            }
            _write_atomically(folder / "meta.json", json.dumps(meta, indent=2))
            _report(dataset, folder, n, elapsed, skipped)
    return ImageCache(
        np.load(files["images"], mmap_mode="r"),
        {f.name: np.load(files[f.name], mmap_mode="r") for f in features},
        np.asarray(meta.get("skipped_rows", []), dtype=np.int64),
    )


def _write_skipped(folder: Path, dataset: Dataset, skipped: list[tuple[int, str]]) -> None:
    target = folder / "skipped.csv"
    if not skipped:
        target.unlink(missing_ok=True)
        return
    paths = dataset.table["image"].astype(str)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image", "reason"])
        writer.writerows([paths.iloc[row], reason] for row, reason in skipped)


def _report(dataset: Dataset, folder: Path, n: int, elapsed: float, skipped: list[tuple[int, str]]) -> None:
    """The preparation speed (silent with ``ARTBENCH_QUIET=1``) and the skipped images (always)."""
    if os.environ.get("ARTBENCH_QUIET") != "1":
        console.print(
            f"prepared {n} images of {escape(dataset.name)} in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.0f} images/s)",
            highlight=False,
        )
    if skipped:
        paths = dataset.table["image"].astype(str)
        first = "; ".join(f"{paths.iloc[row]}: {reason}" for row, reason in skipped[:SHOWN_PROBLEMS])
        console.print(
            f"[yellow]warning:[/] skipped {len(skipped)} of {n} images of dataset {escape(repr(dataset.name))} that "
            f"are missing or unreadable; their rows are zeros (first: {escape(first)}); all are listed in "
            f"{escape(str(folder / 'skipped.csv'))}",
            soft_wrap=True,
            highlight=False,
        )
