"""The prepared image cache: every Pillow mode as RGB, JPEG draft sizes, skipped images, damaged files rebuilt,
parallel decoding equal to in-process decoding."""

from __future__ import annotations

import colorsys
import csv
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.core.dataset import Dataset
from artbench.core.errors import ArtbenchError
from artbench.data import cache as cache_module
from artbench.data.cache import ImageFeature, as_rgb, prepare_cache, require_images
from tests.conftest import SHARED

RIJKS_JPEGS = SHARED / "samples" / "rijks14" / "jpg2"


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "home"))


def _dataset(paths: list[Path | str], name: str = "toy") -> Dataset:
    table = pd.DataFrame({"image": [str(p) for p in paths], "group": [f"g{i}" for i in range(len(paths))]})
    return Dataset(name, table, missing_images_hint="run `artbench datasets download toy`")


def _images(folder: Path, count: int, size: tuple[int, int] = (12, 8)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


MEAN_FEATURE = ImageFeature("mean-rgb", 8, lambda batch: batch.reshape(len(batch), -1, 3).mean(axis=1))
ONES_FEATURE = ImageFeature("ones", 4, lambda batch: np.ones((len(batch), 2)))


# --------------------------------------------------------------------------------------------------
# Every mode Pillow opens reaches the cache as sensible RGB


def _half(mode: str, left, right, size: int = 8) -> Image.Image:
    image = Image.new(mode, (size, size), left)
    image.paste(right, (size // 2, 0, size, size))
    return image


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.paste(1, (4, 0, 8, 8))
    image.info["transparency"] = 0
    return image


MODES = {  # mode: (image, file format, RGB expected on the left half, on the right half)
    "1": (_half("1", 0, 1), "PNG", (0, 0, 0), (255, 255, 255)),
    "L": (_half("L", 30, 220), "PNG", (30, 30, 30), (220, 220, 220)),
    "LA": (_half("LA", (0, 0), (100, 255)), "PNG", (255, 255, 255), (100, 100, 100)),  # transparent -> white
    "P": (_palette_with_transparency(), "PNG", (255, 255, 255), (200, 100, 50)),
    "RGBA": (_half("RGBA", (255, 0, 0, 128), (0, 0, 255, 255)), "PNG", (255, 127, 127), (0, 0, 255)),
    "I;16": (_half("I;16", 257 * 40, 65535), "PNG", (40, 40, 40), (255, 255, 255)),
    "I": (_half("I", 257 * 40, 65535), "TIFF", (40, 40, 40), (255, 255, 255)),  # 16-bit values held in 32 bits
    "F": (_half("F", 0.25, 1.0), "TIFF", (64, 64, 64), (255, 255, 255)),
    "CMYK": (_half("CMYK", (0, 0, 0, 0), (0, 255, 255, 0)), "TIFF", (255, 255, 255), (255, 0, 0)),
}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_reaches_the_cache_as_rgb(mode: str, tmp_path: Path) -> None:
    image, file_format, left, right = MODES[mode]
    path = tmp_path / f"image.{file_format.lower()}"
    image.save(path, format=file_format)
    with Image.open(path) as reopened:
        assert reopened.mode == mode  # the file really holds this mode
    pixels = prepare_cache(_dataset([path]), 8, workers=1).images[0]
    assert pixels.dtype == np.uint8 and pixels.shape == (8, 8, 3)
    np.testing.assert_allclose(pixels[:, 0], [left] * 8, atol=1)
    np.testing.assert_allclose(pixels[:, -1], [right] * 8, atol=1)


def test_greyscale_ranges() -> None:
    assert np.asarray(as_rgb(Image.new("I", (1, 1), 200)))[0, 0].tolist() == [200] * 3  # 8-bit values in 32 bits
    stretched = np.asarray(as_rgb(_half("I", -1000, 3000)))  # neither 8 nor 16 bits: min..max
    assert (stretched[0, 0].tolist(), stretched[0, -1].tolist()) == ([0] * 3, [255] * 3)
    assert np.asarray(as_rgb(_half("F", -2.0, 2.0)))[0, -1].tolist() == [255] * 3
    assert np.asarray(as_rgb(Image.new("F", (1, 1), 100.0)))[0, 0].tolist() == [100] * 3


# Independent references (NumPy and the standard library, not Pillow's conversions) for the colour modes.
_RNG = np.random.default_rng(1)
D50_XYZ_TO_LINEAR_SRGB = np.array(  # Bradford-adapted D50 -> sRGB (D65), Lindbloom
    [[3.1338561, -1.6168667, -0.4906146], [-0.9787684, 1.9161415, 0.0334540], [0.0719453, -0.2289914, 1.4052427]]
)


def _lab_reference(px: np.ndarray) -> np.ndarray:
    """Pillow's 8-bit LAB (L* scaled to 0-255, a* and b* offset by 128; D50) to sRGB."""
    fy = (px[..., 0] * 100 / 255 + 16) / 116
    f = np.stack([fy + (px[..., 1] - 128) / 500, fy, fy - (px[..., 2] - 128) / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.96422, 1.0, 0.82521]
    linear = np.clip(xyz @ D50_XYZ_TO_LINEAR_SRGB.T, 0, 1)
    return 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _premultiplied(channels: int) -> np.ndarray:
    alpha = _RNG.integers(1, 256, (4, 4, 1))
    return np.concatenate([_RNG.integers(0, alpha + 1, (4, 4, channels)), alpha], axis=-1)


REFERENCE_MODES = {  # mode: (pixels (bands last), tolerance against the reference)
    "YCbCr": (_RNG.integers(64, 192, (4, 4, 3)), 2),
    "HSV": (_RNG.integers(0, 256, (4, 4, 3)), 1),
    "LAB": (np.stack([_RNG.integers(80, 200, (4, 4)), *_RNG.integers(108, 148, (2, 4, 4))], axis=-1), 3),
    "CMYK": (_RNG.integers(0, 256, (4, 4, 4)), 1),
    "RGBa": (_premultiplied(3), 2),
    "La": (_premultiplied(1), 2),
}


def _reference(mode: str, px: np.ndarray) -> np.ndarray:
    p = px.astype(float)
    if mode == "YCbCr":  # JFIF / ITU-R BT.601, full range
        y, cb, cr = p[..., 0], p[..., 1] - 128, p[..., 2] - 128
        return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    if mode == "HSV":
        return 255 * np.array([colorsys.hsv_to_rgb(*(v / 255)) for v in p.reshape(-1, 3)]).reshape(p.shape)
    if mode == "LAB":
        return _lab_reference(p)
    if mode == "CMYK":
        return (255 - p[..., :3]) * (255 - p[..., 3:]) / 255
    colour = np.repeat(p[..., :1], 3, axis=-1) if mode == "La" else p[..., :3]
    return colour + 255 - p[..., -1:]  # premultiplied colour over white


@pytest.mark.parametrize("mode", REFERENCE_MODES)
def test_colour_modes_match_an_independent_reference(mode: str) -> None:
    pixels, tolerance = REFERENCE_MODES[mode]
    image = Image.merge(mode, [Image.fromarray(band) for band in pixels.astype(np.uint8).transpose(2, 0, 1)])
    got = np.asarray(as_rgb(image)).astype(float)
    np.testing.assert_allclose(got, np.clip(_reference(mode, pixels), 0, 255), atol=tolerance)


def test_an_rgb_image_with_a_transparent_colour_is_composited_over_white(tmp_path: Path) -> None:
    pixels = np.array([[[10, 20, 30], [200, 100, 50]]], dtype=np.uint8)
    path = tmp_path / "key.png"
    Image.fromarray(pixels).save(path, transparency=(10, 20, 30))
    with Image.open(path) as image:
        assert image.mode == "RGB" and "transparency" in image.info
        assert np.asarray(as_rgb(image)).tolist() == [[[255, 255, 255], [200, 100, 50]]]


def _png48(pixels: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_a_48_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    pixels = _RNG.integers(0, 65536, (8, 8, 3)).astype(np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(_png48(pixels))
    got = prepare_cache(_dataset([path]), 8, workers=1).images[0].astype(float)
    np.testing.assert_allclose(got, pixels / 257, atol=1)


ORIENTATIONS = {  # EXIF orientation: the displayed image from the stored pixels (TIFF 6.0 / Exif 2.3 definitions)
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_exif_orientation_turns_the_image_upright(orientation: int, tmp_path: Path) -> None:
    stored = _RNG.integers(0, 256, (8, 16, 3)).astype(np.uint8)  # 16 wide, 8 high
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "camera.png"
    image.save(path, exif=exif)
    shown = ORIENTATIONS[orientation](stored)
    h, w = shown.shape[:2]
    expected = shown[(h - 8) // 2 : (h + 8) // 2, (w - 8) // 2 : (w + 8) // 2]  # the centre square
    np.testing.assert_array_equal(prepare_cache(_dataset([path]), 8, workers=1).images[0], expected)


def test_a_portrait_jpeg_stored_sideways_is_cached_upright(tmp_path: Path) -> None:
    stored = np.zeros((64, 128, 3), dtype=np.uint8)
    stored[:, 64:] = 255  # stored: black left half, white right half; orientation 6 shows it black on top
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    image.save(path, exif=exif, quality=95)
    row = prepare_cache(_dataset([path]), 16, workers=1).images[0].astype(int)
    assert row[:7].mean() < 10 and row[9:].mean() > 245


def test_jpeg_draft_keeps_the_largest_size_needed(tmp_path: Path) -> None:
    """A 16 px crop with a 96 px feature: the JPEG is decoded at >= 96 px, not at the crop's scale."""
    y, x = np.mgrid[0:400, 0:600]
    stripes = ((np.sin(x / 3.0) + np.sin(y / 5.0)) * 60 + 128).astype(np.uint8)
    path = tmp_path / "stripes.jpg"
    Image.fromarray(np.stack([stripes, stripes[::-1], 255 - stripes], axis=-1)).save(path, quality=95)
    square, (whole,) = cache_module._decode(str(path), 16, (96,))
    with Image.open(path) as full:
        expected = np.asarray(full.convert("RGB").resize((96, 96), Image.BILINEAR)).astype(int)
        crop = np.asarray(full.convert("RGB").resize((16, 16), Image.BILINEAR, box=(100, 0, 500, 400)))
    assert np.abs(whole.astype(int) - expected).mean() < 4  # decoded at 1/8 scale it would be ~20 off
    assert np.abs(square.astype(int) - crop.astype(int)).mean() < 6


def test_real_rijks14_jpegs(tmp_path: Path) -> None:
    if not RIJKS_JPEGS.is_dir():
        pytest.skip(f"real sample JPEGs not found in {RIJKS_JPEGS} (the shared/ folder beside the checkout)")
    paths = sorted(RIJKS_JPEGS.glob("*.jpg"))
    cache = prepare_cache(_dataset(paths, "rijks"), 64, features=[MEAN_FEATURE], workers=1)
    assert len(paths) == 5 and cache.images.shape == (5, 64, 64, 3) and len(cache.skipped) == 0
    for path, row, mean in zip(paths, cache.images, cache.features["mean-rgb"], strict=True):
        with Image.open(path) as image:
            reference = np.asarray(image.convert("RGB").resize((8, 8), Image.BILINEAR)).reshape(-1, 3).mean(axis=0)
            assert min(image.size) > 64  # really scaled down
        assert row.std() > 5  # a picture, not a blank row
        np.testing.assert_allclose(mean, reference, atol=3)


# --------------------------------------------------------------------------------------------------
# Missing and unreadable images are skipped, listed and zeroed


def test_missing_and_unreadable_images_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _images(tmp_path / "img", 6)
    paths[2].write_bytes(b"not an image")
    truncated = paths[4].read_bytes()
    paths[4].write_bytes(truncated[: len(truncated) // 2])
    absent = tmp_path / "img" / "absent.png"
    dataset = _dataset([*paths, absent])

    assert require_images(dataset) == [str(absent)]
    assert "1 of 7 images of dataset 'toy' are missing and will be skipped" in capsys.readouterr().err
    cache = prepare_cache(dataset, 8, features=[ONES_FEATURE], workers=1)
    err = capsys.readouterr().err
    assert cache.skipped.tolist() == [2, 4, 6]
    assert "skipped 3 of 7 images of dataset 'toy' that are missing or unreadable" in err
    assert not cache.images[[2, 4, 6]].any() and cache.features["ones"].sum(axis=1).tolist() == [2, 2, 0, 2, 0, 2, 0]
    assert cache.images[[0, 1, 3, 5]].reshape(4, -1).any(axis=1).all()

    folder = next((tmp_path / "home" / "cache" / "toy").iterdir())
    with open(folder / "skipped.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image", "reason"]
    assert [(Path(image).name, reason.split(" ")[0]) for image, reason in rows[1:]] == [
        ("002.png", "unreadable"),
        ("004.png", "unreadable"),
        ("absent.png", "missing"),
    ]
    assert "UnidentifiedImageError" in rows[1][1]
    again = prepare_cache(dataset, 8, features=[ONES_FEATURE], workers=1)  # from disk: no decoding, same rows
    assert again.skipped.tolist() == [2, 4, 6] and "prepared" not in capsys.readouterr().err


def test_a_dataset_without_any_image_is_an_error(tmp_path: Path) -> None:
    dataset = _dataset([tmp_path / "a.png", tmp_path / "b.png"])
    with pytest.raises(ArtbenchError, match=r"all 2 images of dataset 'toy' are missing .*artbench datasets download"):
        prepare_cache(dataset, 8, workers=1)
    for path in dataset.table["image"]:
        Path(path).write_text("<html>404</html>")  # what a broken download leaves
    with pytest.raises(ArtbenchError, match=r"none of the 2 images of dataset 'toy' can be read .*a\.png: unreadable"):
        prepare_cache(dataset, 8, workers=1)
    assert not list((tmp_path / "home").rglob("*.npy"))


def test_images_per_second_line(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = _dataset(_images(tmp_path / "img", 3))
    prepare_cache(dataset, 8, workers=1)  # ARTBENCH_QUIET=1 (tests/conftest.py)
    assert "images/s" not in capsys.readouterr().err
    monkeypatch.delenv("ARTBENCH_QUIET")
    prepare_cache(dataset, 10, workers=1)
    assert next(line for line in capsys.readouterr().err.splitlines() if "images/s" in line).startswith(
        "prepared 3 images of toy in "
    )


# --------------------------------------------------------------------------------------------------
# Damaged cache files are rebuilt, never trained on


def _prepared(tmp_path: Path) -> tuple[Dataset, Path, np.ndarray, np.ndarray]:
    dataset = _dataset(_images(tmp_path / "img", 20))
    cache = prepare_cache(dataset, 8, features=[MEAN_FEATURE], workers=1)
    folder = next((tmp_path / "home" / "cache" / "toy").iterdir())
    return dataset, folder, np.array(cache.images), np.array(cache.features["mean-rgb"])


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


def _random_row(path: Path) -> None:
    array = np.load(path, mmap_mode="r+")
    array[-1] = np.random.default_rng(2).integers(0, 255, array[-1].shape)  # the last row is always checked
    array.flush()


@pytest.mark.parametrize("damage", [_truncate, _random_bytes, _random_row])
@pytest.mark.parametrize("file", ["images.npy", "mean-rgb.npy"])
def test_damaged_files_are_prepared_again(damage, file: str, tmp_path: Path, capsys) -> None:
    dataset, folder, images, feature = _prepared(tmp_path)
    other = folder / ("mean-rgb.npy" if file == "images.npy" else "images.npy")
    untouched = other.stat().st_mtime_ns
    damage(folder / file)
    cache = prepare_cache(dataset, 8, features=[MEAN_FEATURE], workers=1)
    err = " ".join(capsys.readouterr().err.split())
    assert f"image cache file {folder / file} is unusable" in err and "preparing it again" in err
    np.testing.assert_array_equal(cache.images, images)
    np.testing.assert_array_equal(cache.features["mean-rgb"], feature)
    assert other.stat().st_mtime_ns == untouched  # only the damaged file was written again
    prepare_cache(dataset, 8, features=[MEAN_FEATURE], workers=1)
    assert "unusable" not in capsys.readouterr().err


def test_a_cache_without_checksums_is_prepared_again(tmp_path: Path, capsys) -> None:
    dataset, folder, images, _ = _prepared(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["files"]["images.npy"]["shape"] == [20, 8, 8, 3] and meta["skipped_rows"] == []
    (folder / "meta.json").unlink()  # as an older artbench left it, or a crash before meta.json
    cache = prepare_cache(dataset, 8, workers=1)
    assert "not recorded in meta.json" in capsys.readouterr().err
    np.testing.assert_array_equal(cache.images, images)


# --------------------------------------------------------------------------------------------------
# Parallel decoding


def test_worker_processes_give_the_same_cache(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img", 150, size=(20, 14))
    paths[70].write_bytes(b"broken")
    serial = prepare_cache(_dataset(paths, "serial"), 8, features=[MEAN_FEATURE], workers=1)
    parallel = prepare_cache(_dataset(paths, "parallel"), 8, features=[MEAN_FEATURE], workers=2)
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.features["mean-rgb"], serial.features["mean-rgb"])
    assert parallel.skipped.tolist() == serial.skipped.tolist() == [70]
    assert not list((tmp_path / "home").rglob("*.tmp*"))
    (folder,) = (tmp_path / "home" / "cache" / "parallel").iterdir()
    assert (folder / "skipped.csv").read_text().count("\n") == 2
