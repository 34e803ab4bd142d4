"""Batched augmentation: the geometric training augmentation and the x -> x' of eq. 8 (SilkNet §3.2)."""

import pytest
import torch

from artbench.methods.torch.augment import random_geometric, self_similarity_augment
from artbench.methods.torch.colour import rgb_to_hsv

AUGMENTS = [random_geometric, self_similarity_augment]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(6, 3, 24, 24, generator=gen(0))


def uniform(colours: list[list[float]], size: int = 16) -> torch.Tensor:
    return torch.tensor(colours).view(-1, 3, 1, 1).expand(-1, 3, size, size).contiguous()


@pytest.mark.parametrize("augment", AUGMENTS)
def test_shape_dtype_range(images, augment):
    for dtype in (torch.float32, torch.float64):
        out = augment(images.to(dtype), gen(1))
        assert out.shape == images.shape and out.dtype == dtype
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("augment", AUGMENTS)
def test_reproducible_and_seed_dependent(images, augment):
    assert torch.equal(augment(images, gen(1)), augment(images, gen(1)))
    assert not torch.allclose(augment(images, gen(1)), augment(images, gen(2)))
    assert not torch.allclose(augment(images, gen(1)), images)


def test_geometric_identity(images):
    out = random_geometric(images, gen(3), rot90=False, flips=False, crop_scale=(1.0, 1.0), max_rotation_deg=0.0)
    assert torch.allclose(out, images, atol=1e-5)


def test_geometric_rot90_and_flips_are_exact_permutations(images):
    rotations = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    flips = [images, images.flip(3), images.flip(2), images.flip(2, 3)]
    for options, candidates in (
        ({"rot90": True, "flips": False}, rotations),
        ({"rot90": False, "flips": True}, flips),
    ):
        seen = set()
        for seed in range(4):
            out = random_geometric(images, gen(seed), crop_scale=(1.0, 1.0), max_rotation_deg=0.0, **options)
            for i in range(len(images)):
                matches = [k for k, c in enumerate(candidates) if torch.allclose(out[i], c[i], atol=1e-5)]
                assert matches, f"sample {i} is not a 90° rotation / flip of its input"
                seen.add(matches[0])
        assert seen == {0, 1, 2, 3}


def test_geometric_crop_zooms_in():
    # a horizontal ramp: a crop of side b spans about b of the value range, at a position inside the image
    ramp = torch.linspace(0, 1, 64).expand(4, 3, 64, 64).contiguous()
    out = random_geometric(ramp, gen(4), rot90=False, flips=False, crop_scale=(0.5, 0.5), max_rotation_deg=0.0)
    span = out[:, 0, 0, -1] - out[:, 0, 0, 0]
    assert torch.allclose(span, torch.full((4,), 0.5), atol=0.03)
    assert (out >= 0).all() and (out <= 1).all()


def test_self_similarity_without_colour_change_keeps_colours():
    colours = [[0.9, 0.2, 0.1], [0.1, 0.5, 0.8], [0.5, 0.5, 0.5], [0.3, 0.9, 0.4]]
    images = uniform(colours)
    out = self_similarity_augment(images, gen(5), hue_shift=0.0, saturation=(1.0, 1.0), noise_std=None)
    assert torch.allclose(out, images, atol=1e-5)


def test_self_similarity_colour_change_within_bounds():
    images = uniform([[0.9, 0.2, 0.1], [0.1, 0.5, 0.8], [0.2, 0.9, 0.4], [0.8, 0.3, 0.9]])
    before = rgb_to_hsv(images)[:, :, 0, 0]
    for seed in range(5):
        after = rgb_to_hsv(self_similarity_augment(images, gen(seed), noise_std=None))[:, :, 0, 0]
        d_hue = (after[:, 0] - before[:, 0]).abs()
        assert (torch.minimum(d_hue, 1 - d_hue) <= 0.05 + 1e-5).all()
        ratio = after[:, 1] / before[:, 1]
        assert ((ratio >= 0.9 - 1e-5) & (ratio <= 1.0 + 1e-5)).all()
        assert torch.allclose(after[:, 2], before[:, 2], atol=1e-5)


def test_self_similarity_noise():
    images = torch.full((4, 3, 32, 32), 0.5)
    clean = self_similarity_augment(images, gen(6), noise_std=None)
    noisy = self_similarity_augment(images, gen(6), noise_std=0.1)
    assert (noisy - clean).std().item() == pytest.approx(0.1, rel=0.1)


def test_invalid_arguments(images):
    with pytest.raises(ValueError, match="square"):
        random_geometric(torch.rand(2, 3, 8, 9), gen(0))
    with pytest.raises(ValueError, match="crop_scale"):
        random_geometric(images, gen(0), crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="max_rotation_deg"):
        random_geometric(images, gen(0), max_rotation_deg=-1.0)
    with pytest.raises(ValueError, match="noise_std"):
        self_similarity_augment(images, gen(0), noise_std=-0.1)
