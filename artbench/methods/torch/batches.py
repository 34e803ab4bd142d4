"""Mini-batches from the prepared cache to the training device.

A background thread gathers the next batch from the memory-mapped cache (and pins it on CUDA) while the device
works on the current one. Images leave the cache as uint8 NHWC; on the device they become float NCHW in [0, 1]
whose memory is already channels_last (a permuted NHWC tensor), so no copy is needed for the CUDA fast path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from artbench.data.cache import ImageCache

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Batch:
    images: torch.Tensor
    """Float ``[N, 3, H, W]`` in [0, 1] (not yet normalised)."""
    labels: list[torch.Tensor]
    """One tensor per target in its kind's encoding (:mod:`artbench.core.targets`)."""
    features: dict[str, torch.Tensor]
    """Per-image features of the cache (e.g. colour features ``[N, G*G]``), by name."""
    index: np.ndarray
    """Row indices of the samples in the sample table."""


def normalise(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``[N, 3, H, W]`` images in [0, 1]."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def _gather(cache: ImageCache, labels: Sequence[np.ndarray], index: np.ndarray, pin: bool) -> tuple:
    index = np.sort(index)  # sequential reads from the memory map; order within a batch is irrelevant
    images = torch.from_numpy(np.ascontiguousarray(cache.images[index]))
    ys = [torch.from_numpy(np.ascontiguousarray(y[index])) for y in labels]
    features = {k: torch.from_numpy(np.ascontiguousarray(v[index])) for k, v in cache.features.items()}
    if pin:
        images = images.pin_memory()
        ys = [y.pin_memory() for y in ys]
        features = {k: v.pin_memory() for k, v in features.items()}
    return images, ys, features, index


def iterate_batches(
    cache: ImageCache,
    labels: Sequence[np.ndarray],
    indices: np.ndarray,
    batch_size: int,
    device: torch.device,
    *,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
    channels_last: bool = True,
) -> Iterator[Batch]:
    """Yield batches over ``indices`` (shuffled when ``rng`` is given), prefetching one batch ahead."""
    order = rng.permutation(indices) if rng is not None else np.asarray(indices)
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    pin = device.type == "cuda"
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_gather, cache, labels, chunks[0], pin) if chunks else None
        for i in range(len(chunks)):
            images, ys, features, index = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(_gather, cache, labels, chunks[i + 1], pin)
            x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
            if not channels_last:
                x = x.contiguous()
            yield Batch(
                x,
                [y.to(device, non_blocking=True) for y in ys],
                {k: v.to(device, non_blocking=True) for k, v in features.items()},
                index,
            )
