"""Colour features h(x) of SilkNet §3.2 (input of eq. 7) and the HSV conversions, checked against colorsys."""

import colorsys
import math

import numpy as np
import pytest
import torch

from artbench.methods.torch.colour import colour_feature, colour_features, hsv_to_rgb, rgb_to_hsv

PIXELS = 224 * 224


def pixels_as_image(values: torch.Tensor) -> torch.Tensor:
    """``[P, 3]`` pixel triples as a ``[3, 1, P]`` image."""
    return values.T.reshape(3, 1, -1)


def special_rgb() -> torch.Tensor:
    """Greys, black, white, primaries, secondaries and ties between the maximal channels."""
    rows = [
        [0, 0, 0],
        [1, 1, 1],
        [0.5, 0.5, 0.5],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [0, 1, 1],
        [1, 0, 1],
        [0.8, 0.8, 0.2],
        [0.2, 0.8, 0.8],
        [0.8, 0.2, 0.8],
        [0.3, 0.1, 0.3000001],
    ]
    return torch.tensor(rows, dtype=torch.float64)


def test_rgb_to_hsv_matches_colorsys():
    g = torch.Generator().manual_seed(0)
    rgb = torch.cat([torch.rand(2000, 3, generator=g, dtype=torch.float64), special_rgb()])
    hsv = rgb_to_hsv(pixels_as_image(rgb)).reshape(3, -1).T
    assert ((hsv[:, 0] >= 0) & (hsv[:, 0] < 1)).all()
    for (r, g_, b), (h, s, v) in zip(rgb.tolist(), hsv.tolist(), strict=True):
        eh, es, ev = colorsys.rgb_to_hsv(r, g_, b)
        assert min(abs(h - eh), 1 - abs(h - eh)) < 1e-9  # hue is circular
        assert s == pytest.approx(es, abs=1e-12) and v == pytest.approx(ev, abs=1e-12)


def test_rgb_to_hsv_hue_stays_below_one_in_float32():
    # (g - b) / delta slightly negative: the float32 remainder would round to 1.0
    hsv = rgb_to_hsv(pixels_as_image(torch.tensor([[1.0, 0.0, 1e-8]])))
    assert 0 <= hsv[0].item() < 1


def test_hsv_to_rgb_matches_colorsys():
    g = torch.Generator().manual_seed(1)
    hsv = torch.rand(2000, 3, generator=g, dtype=torch.float64)
    hsv[:50, 1] = 0  # grey
    hsv[50:100, 0] = torch.arange(50, dtype=torch.float64) / 6 % 1  # sector boundaries
    rgb = hsv_to_rgb(pixels_as_image(hsv)).reshape(3, -1).T
    for (h, s, v), got in zip(hsv.tolist(), rgb.tolist(), strict=True):
        assert got == pytest.approx(colorsys.hsv_to_rgb(h, s, v), abs=1e-12)


def test_hsv_round_trip_batched():
    rgb = torch.rand(2, 4, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-6)


def uniform_images(rgb: list[tuple[int, int, int]], size: int = 224) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).view(-1, 1, 1, 3).expand(-1, size, size, 3).contiguous()


def test_uniform_colours_fall_into_expected_bins():
    # grid 8: bin = floor((v + 1) * 4), with 8 -> 7; index = iy * 8 + ix
    images = uniform_images([(255, 0, 0), (128, 128, 128), (0, 0, 0), (255, 255, 255)])
    h = colour_features(images)
    assert h.dtype == torch.float32 and h.shape == (4, 64)
    expected = [
        4 * 8 + 7,  # red: (x, y) = (1, 0); the upper edge x = 1 goes into the last bin
        4 * 8 + 4,  # grey (S = 0): (0, 0) lies on a bin edge; half-open bins put it into (iy, ix) = (4, 4)
        4 * 8 + 4,  # black (S = 0)
        4 * 8 + 4,  # white (S = 0)
    ]
    for row, index in zip(h, expected, strict=True):
        assert row[index] == PIXELS and row.sum() == PIXELS


def test_odd_grid_bins():
    # grid 3: edges at ±1/3. green (-0.5, 0.87) -> (iy, ix) = (2, 0), blue (-0.5, -0.87) -> (0, 0),
    # red (1, 0) -> (1, 2), grey (0, 0) -> the centre (1, 1)
    h = colour_features(uniform_images([(0, 255, 0), (0, 0, 255), (255, 0, 0), (128, 128, 128)]), grid=3)
    assert h.shape == (4, 9)
    for row, index in zip(h, [6, 0, 5, 4], strict=True):
        assert row[index] == PIXELS


def reference_counts(palette: np.ndarray, labels: np.ndarray, grid: int) -> np.ndarray:
    """Histogram from colorsys in float64, one palette colour at a time."""
    counts = np.zeros(grid * grid)
    for colour, k in zip(palette, np.bincount(labels.ravel(), minlength=len(palette)), strict=True):
        h, s, _ = colorsys.rgb_to_hsv(*(colour / 255.0))
        x, y = s * math.cos(2 * math.pi * h), s * math.sin(2 * math.pi * h)
        ix, iy = (min(int((c + 1) / 2 * grid), grid - 1) for c in (x, y))
        counts[iy * grid + ix] += k
    return counts


@pytest.mark.parametrize("grid", [4, 8])
def test_palette_images_match_reference(grid):
    palette = np.array([[200, 30, 40], [20, 180, 60], [90, 90, 200], [250, 240, 20], [140, 60, 180], [60, 60, 60]])
    rng = np.random.default_rng(grid)
    labels = rng.integers(0, len(palette), size=(3, 224, 224))
    images = torch.from_numpy(palette[labels].astype(np.uint8))
    h = colour_features(images, grid=grid)
    for row, lab in zip(h, labels, strict=True):
        np.testing.assert_array_equal(row.numpy(), reference_counts(palette, lab, grid))


def test_resize_and_chunking():
    small = uniform_images([(255, 0, 0)], size=32)
    assert colour_features(small)[0, 39] == PIXELS  # resized to 224 x 224 first
    images = torch.randint(0, 256, (5, 40, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    h = colour_features(images)
    assert torch.equal(h.sum(1), torch.full((5,), float(PIXELS)))
    assert torch.equal(colour_features(images, chunk_size=2), h)
    assert colour_features(images[:0]).shape == (0, 64)


def test_rejects_other_layouts():
    with pytest.raises(ValueError, match="uint8"):
        colour_features(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="uint8"):
        colour_features(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_the_cache_feature_runs_on_the_given_device_with_the_reference_counts():
    palette = np.array([[200, 30, 40], [20, 180, 60], [90, 90, 200], [60, 60, 60]])
    labels = np.random.default_rng(5).integers(0, len(palette), size=(2, 224, 224))
    batch = palette[labels].astype(np.uint8)
    feature = colour_feature(8, torch.device("cpu"))
    h = feature.fn(batch)
    assert feature.name == colour_feature(8).name and h.dtype == np.float32
    for row, lab in zip(h, labels, strict=True):
        np.testing.assert_array_equal(row, reference_counts(palette, lab, 8))
    if torch.cuda.is_available():  # the same counts on the GPU, up to pixels on a bin edge within float32 rounding
        natural = np.random.default_rng(6).integers(0, 256, size=(16, 40, 40, 3), dtype=np.uint8)
        np.testing.assert_array_equal(colour_feature(8, torch.device("cuda")).fn(batch), h)
        cpu, gpu = feature.fn(natural), colour_feature(8, torch.device("cuda")).fn(natural)
        assert np.abs(cpu - gpu).sum() <= 1e-4 * cpu.sum()
