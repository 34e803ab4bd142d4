"""Batched on-device image augmentation: geometric training augmentation and the x -> x' of eq. 8 (§3.2).

Images are float ``[N, 3, H, W]`` in [0, 1] with H = W. Random numbers are drawn on the generator's device and
moved to the images' device, so any generator works; a generator on the images' device avoids the transfer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from artbench.methods.torch.colour import hsv_to_rgb, rgb_to_hsv


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be square [N, 3, H, H], got {tuple(images.shape)}")


def _uniform(n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``[n]`` samples of U(low, high) drawn on the generator's device, returned on ``like``'s device."""
    u = torch.rand(n, generator=generator, device=generator.device).to(like.device, like.dtype)
    return low + (high - low) * u


def random_geometric(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    rot90: bool = True,
    flips: bool = True,
    crop_scale: tuple[float, float] = (0.7, 1.0),
    max_rotation_deg: float = 5.0,
) -> torch.Tensor:
    """Random geometric augmentation, one affine warp per sample.

    Per sample: a rotation by k·90° (k uniform in 0..3), horizontal and vertical flips (p = 0.5 each), a
    square crop of side b·H (b uniform in ``crop_scale``) at a uniform position inside the image, resized
    back to H x W, and a rotation by ω uniform in [-max_rotation_deg, max_rotation_deg]. In normalised
    coordinates an output point u samples the input at b·R(ω)·F·R(k·90°)·u + c (F: the flips, c: the crop
    centre); all samples are warped by a single bilinear ``grid_sample`` with reflection padding
    (align_corners=False). Disabled options keep their random draws, so the generator advances identically.
    """
    _check_images(images)
    low, high = crop_scale
    if not 0 < low <= high <= 1:
        raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
    if max_rotation_deg < 0:
        raise ValueError(f"max_rotation_deg must be >= 0, got {max_rotation_deg}")
    n, dtype = len(images), images.dtype
    u = torch.rand(n, 7, generator=generator, device=generator.device).to(images.device, dtype)
    k = (u[:, 0] * 4).long().clamp(max=3) * rot90
    cos_k = images.new_tensor([1.0, 0.0, -1.0, 0.0])[k]
    sin_k = images.new_tensor([0.0, 1.0, 0.0, -1.0])[k]
    flip = 1 - 2 * ((u[:, 1:3] < 0.5) & flips).to(dtype)
    b = low + (high - low) * u[:, 3]
    centre = (2 * u[:, 4:6] - 1) * (1 - b).unsqueeze(1)
    omega = math.radians(max_rotation_deg) * (2 * u[:, 6] - 1)
    rot_k = torch.stack([torch.stack([cos_k, -sin_k], -1), torch.stack([sin_k, cos_k], -1)], -2)
    rot_w = torch.stack([torch.stack([omega.cos(), -omega.sin()], -1), torch.stack([omega.sin(), omega.cos()], -1)], -2)
    linear = b.view(n, 1, 1) * rot_w @ torch.diag_embed(flip) @ rot_k
    theta = torch.cat([linear, centre.unsqueeze(2)], dim=2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return warped.clamp(0.0, 1.0)


def self_similarity_augment(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    hue_shift: float = 0.05,
    saturation: tuple[float, float] = (0.9, 1.0),
    noise_std: float | None = 0.1,
) -> torch.Tensor:
    """The augmentation x_i -> x'_i of the self-similarity loss (eq. 8, §3.2).

    :func:`random_geometric` with its defaults (k·90° rotation, flips, crop b ∈ [0.7, 1], ω ∈ [-5°, 5°]),
    then per sample a hue shift H <- (H + Δ_H) mod 1 with Δ_H uniform in [-hue_shift, hue_shift], a
    saturation factor S <- δ_S·S with δ_S uniform in ``saturation``, optional zero-mean Gaussian noise of
    standard deviation ``noise_std`` (σ_G; None disables it) and clamping to [0, 1].
    """
    if hue_shift < 0 or not 0 <= saturation[0] <= saturation[1] or (noise_std is not None and noise_std < 0):
        raise ValueError(f"invalid hue_shift={hue_shift}, saturation={saturation} or noise_std={noise_std}")
    n = len(images)
    out = random_geometric(images, generator)
    hue, sat, val = rgb_to_hsv(out).unbind(1)
    d_hue = _uniform(n, -hue_shift, hue_shift, generator, out).view(n, 1, 1)
    d_sat = _uniform(n, saturation[0], saturation[1], generator, out).view(n, 1, 1)
    hsv = torch.stack([torch.remainder(hue + d_hue, 1.0), (sat * d_sat).clamp(0.0, 1.0), val], dim=1)
    out = hsv_to_rgb(hsv)
    if noise_std is not None:
        noise = torch.randn(out.shape, generator=generator, device=generator.device)
        out = out + noise_std * noise.to(out.device, out.dtype)
    return out.clamp(0.0, 1.0)
