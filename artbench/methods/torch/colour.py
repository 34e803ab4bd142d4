"""Colour features h(x) of SilkNet §3.2 (input of the colour similarity loss, eq. 7) and HSV conversion."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from artbench.data.cache import ImageFeature

COLOUR_SIZE = 224


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` RGB in [0, 1] to HSV (H in [0, 1), S, V in [0, 1]), as in :mod:`colorsys`."""
    r, g, b = rgb.unbind(-3)
    maxc = rgb.amax(-3)
    delta = maxc - rgb.amin(-3)
    safe = torch.where(delta > 0, delta, 1.0)
    hue = torch.where(r == maxc, (g - b) / safe, torch.where(g == maxc, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(delta > 0, torch.remainder(hue / 6.0, 1.0), 0.0)
    hue = torch.where(hue >= 1.0, 0.0, hue)  # remainder of a tiny negative value can round up to 1
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, 1.0), 0.0)
    return torch.stack([hue, sat, maxc], dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` HSV (H in [0, 1], periodic) to RGB in [0, 1], as in :mod:`colorsys`.

    Uses the closed form c_n = V - V·S·clamp(min(k, 4 - k), 0, 1) with k = (n + 6H) mod 6 and n = 5, 3, 1 for
    R, G, B, which equals the sector-wise formula of :func:`colorsys.hsv_to_rgb`.
    """
    h, s, v = hsv.unbind(-3)
    n = hsv.new_tensor([5.0, 3.0, 1.0]).view(3, 1, 1)
    k = torch.remainder(n + 6.0 * h.unsqueeze(-3), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return v.unsqueeze(-3) * (1.0 - s.unsqueeze(-3) * ramp)


def colour_features(images: torch.Tensor, grid: int = 8, *, chunk_size: int = 64) -> torch.Tensor:
    """Colour feature vectors h(x) of SilkNet §3.2.

    Each image is resized to 224 x 224 (bilinear, skipped if already that size) and converted to HSV; every
    pixel becomes the point (x, y) = (S·cos 2πH, S·sin 2πH) of the unit disc. Points are counted on a
    regular ``grid`` x ``grid`` grid over [-1, 1]^2 with half-open bins [lo, hi), except that a point on the
    upper edge 1 goes into the last bin. Rows of the grid are concatenated: feature index = iy·grid + ix
    (iy: y bin, ix: x bin). With an even grid, the centre (0, 0) (grey pixels, S = 0) falls into the bin
    iy = ix = grid/2, i.e. index (grid/2)·(grid + 1).

    Args:
        images: ``[N, H, W, 3]`` uint8 RGB (NHWC, the layout of the image cache).
        grid: number of bins per axis.
        chunk_size: images converted at once (bounds memory for large N).

    Returns:
        ``[N, grid*grid]`` float32 counts on the images' device; each row sums to 224·224.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {tuple(images.shape)}")
    if grid < 1 or chunk_size < 1:
        raise ValueError(f"grid and chunk_size must be >= 1, got {grid} and {chunk_size}")
    out = []
    for chunk in images.split(chunk_size):
        rgb = chunk.permute(0, 3, 1, 2).float() / 255.0
        if rgb.shape[-2:] != (COLOUR_SIZE, COLOUR_SIZE):
            rgb = F.interpolate(rgb, size=(COLOUR_SIZE, COLOUR_SIZE), mode="bilinear", align_corners=False)
            rgb = rgb.clamp(0.0, 1.0)
        hue, sat, _ = rgb_to_hsv(rgb).unbind(1)
        angle = 2.0 * math.pi * hue
        ix = ((sat * torch.cos(angle) + 1.0) * (grid / 2.0)).floor().long().clamp(0, grid - 1)
        iy = ((sat * torch.sin(angle) + 1.0) * (grid / 2.0)).floor().long().clamp(0, grid - 1)
        offset = torch.arange(len(chunk), device=images.device).view(-1, 1, 1) * grid * grid
        counts = torch.bincount((offset + iy * grid + ix).flatten(), minlength=len(chunk) * grid * grid)
        out.append(counts.view(len(chunk), grid * grid).float())
    if not out:
        return torch.zeros(0, grid * grid, device=images.device)
    return torch.cat(out)


def colour_feature(grid: int, device: torch.device | None = None) -> ImageFeature:
    """h(x) as a per-image cache feature, computed on the whole image resized to 224 × 224 (§3.2), once per dataset
    while the cache is prepared: in batches (the decoder's chunks) on ``device``, a run's CUDA device where it has
    one (issue 14: one-time preparation on the device), else on the CPU. The name does not depend on the device: the
    counts are the same up to pixels whose (x, y) lies on a bin edge within float32 rounding."""
    where = device or torch.device("cpu")

    def compute(batch: np.ndarray) -> np.ndarray:
        return colour_features(torch.from_numpy(batch).to(where), grid=grid).cpu().numpy()

    return ImageFeature(f"colour-hs-g{grid}", COLOUR_SIZE, compute)
