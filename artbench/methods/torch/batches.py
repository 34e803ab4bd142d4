"""Mini-batches from the prepared cache to the training device.

A background thread gathers the next batch from the memory-mapped cache (and pins it on CUDA) while the device
works on the current one. Images leave the cache as uint8 NHWC; on the device they become float NCHW in [0, 1]
whose memory is already channels_last (a permuted NHWC tensor), so no copy is needed for the CUDA fast path.
With a :class:`TrunkSource`, each batch also carries the precomputed outputs of SilkNet's frozen trunk (float16
NHWC, gathered on the device when they are resident there, else read from the memory map by the same thread), and
the images are read only when asked for (the x' of L_slf needs them).
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
class TrunkSource:
    """Frozen-trunk outputs of every image (:mod:`artbench.methods.torch.trunk`), rows in sample-table order."""

    values: torch.Tensor | np.ndarray
    """float16 ``[N, H, W, C]``: a tensor on the training device, or a memory-mapped array on disk."""
    scale: float = 1.0
    """The outputs are ``values`` times ``scale`` (a power of two)."""

    def resident_on(self, device: torch.device) -> bool:
        """Whether the values are a tensor in ``device``'s memory (else they are read from the memory map)."""
        return isinstance(self.values, torch.Tensor) and self.values.device == device

    def on_device(self, index: np.ndarray, device: torch.device) -> torch.Tensor | None:
        """The rows ``index`` as an NHWC tensor when the values are resident on ``device``, else None."""
        return self.values[torch.from_numpy(index).to(device)] if self.resident_on(device) else None


@dataclass
class Batch:
    images: torch.Tensor | None
    """Float ``[N, 3, H, W]`` in [0, 1] (not yet normalised); None when the batches were asked for without images."""
    labels: list[torch.Tensor]
    """One tensor per target in its kind's encoding (:mod:`artbench.core.targets`)."""
    features: dict[str, torch.Tensor]
    """Per-image features of the cache (e.g. colour features ``[N, G*G]``), by name."""
    index: np.ndarray
    """Row indices of the samples in the sample table."""
    trunk: torch.Tensor | None = None
    """Float32 ``[N, C, H, W]`` outputs of the frozen trunk, when batches come with a :class:`TrunkSource`."""

    @property
    def size(self) -> int:
        """Number of samples."""
        return len(self.index)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``[N, 3, H, W]`` images in [0, 1]."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def _host_rows(array: np.ndarray, index: np.ndarray, pin: bool) -> torch.Tensor:
    rows = torch.from_numpy(np.ascontiguousarray(array[index]))
    return rows.pin_memory() if pin else rows


def _gather(
    cache: ImageCache,
    labels: Sequence[np.ndarray],
    index: np.ndarray,
    pin: bool,
    with_images: bool,
    trunk: np.ndarray | None,
) -> tuple:
    index = np.sort(index)  # sequential reads from the memory map; order within a batch is irrelevant
    images = _host_rows(cache.images, index, pin) if with_images else None
    ys = [_host_rows(y, index, pin) for y in labels]
    features = {k: _host_rows(v, index, pin) for k, v in cache.features.items()}
    return images, ys, features, index, None if trunk is None else _host_rows(trunk, index, pin)


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
    trunk: TrunkSource | None = None,
    images: bool = True,
) -> Iterator[Batch]:
    """Yield batches over ``indices`` (shuffled when ``rng`` is given), prefetching one batch ahead; with ``trunk``,
    each with its trunk outputs, and with its images only when ``images``."""
    order = rng.permutation(indices) if rng is not None else np.asarray(indices)
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    pin = device.type == "cuda"
    with_images = images or trunk is None
    host_trunk = None if trunk is None or trunk.resident_on(device) else np.asarray(trunk.values)
    with ThreadPoolExecutor(1) as pool:
        args = (cache, labels)
        pending = pool.submit(_gather, *args, chunks[0], pin, with_images, host_trunk) if chunks else None
        for i in range(len(chunks)):
            pixels, ys, features, index, trunk_rows = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(_gather, *args, chunks[i + 1], pin, with_images, host_trunk)
            if trunk is not None and trunk_rows is None:
                trunk_rows = trunk.on_device(index, device)
            yield Batch(
                None if pixels is None else _nchw(pixels.to(device, non_blocking=True), channels_last).div_(255),
                [y.to(device, non_blocking=True) for y in ys],
                {k: v.to(device, non_blocking=True) for k, v in features.items()},
                index,
                None if trunk_rows is None else _trunk_input(trunk_rows, trunk.scale, device, channels_last),
            )


def _trunk_input(rows: torch.Tensor, scale: float, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Float16 NHWC trunk rows as the float32 NCHW input of the trainable layers (times ``scale``)."""
    x = _nchw(rows.to(device, non_blocking=True), channels_last)
    return x * scale if scale != 1.0 else x


def _nchw(nhwc: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """An NHWC tensor as float32 NCHW: channels_last memory (a permuted view), or contiguous."""
    x = nhwc.permute(0, 3, 1, 2).float()
    return x if channels_last else x.contiguous()
