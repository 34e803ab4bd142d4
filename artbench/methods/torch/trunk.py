"""SilkNet's frozen trunk computed once per image (issue 14, "the biggest lever").

With NB_RN blocks trained (Dorozynski 2023, §3.2 and §5.1: NB_RN = 3), the backbone's stages before the first
trainable block are frozen, run with their BatchNorm layers on running statistics (:mod:`.network`) and, without
classification augmentation (the paper uses none, §5.1), see the same image at every epoch: their output for an
image never changes. It is computed once, stored as float16, and the trainable blocks and the heads train on it for
every epoch, method and seed that share the trunk; the validation criterion and the predictions read it too. Only
the x' of L_slf (eq. 8), a fresh random transform of each image, still goes through the trunk, forward only.

This is an implementation choice (SilkNet's ``precompute_trunk``): it changes the numbers only by the float16
rounding of the trunk's outputs (ResNet-152 at 224 px: ``[1024, 14, 14]``, 392 KiB per image). Outputs beyond
float16's range (a randomly initialised ResNet-152 whose frozen BatchNorm layers keep their initial statistics
reaches 1e8) are stored divided by a power of two, ``scale`` in the sidecar, the smallest that brings them under
:data:`FLOAT16_LIMIT`; dividing by a power of two is exact, only values below ``scale``·2^-14 lose relative
precision (absolute error at most ``scale``·2^-25).

Cache: ``<data home>/cache/<dataset>/trunk/<backbone>-<size>px-d<depth>-<key hash>.npy`` (float16 ``[N, H, W, C]``,
rows in sample-table order) with the checksummed sidecar of :func:`.features.cached_array` (temporary names, fsync,
rename; a damaged or stale file is computed again). The key holds the dataset's fingerprint, the image size, the
backbone, the trunk's stages and a SHA-256 of its parameters and buffers, and the device and precision that computed
it. So ImageNet weights give one trunk for every method and seed, and ``weights=none`` one per seed (its random init
depends on the seed): at most ``ARTBENCH_TRUNK_CACHE_GB`` gigabytes (default 40) of trunks are kept per dataset, the
least recently used removed first.

Where a run reads it from: GPU memory when the whole array takes at most half of the free device memory (the rest
is left to training), else the memory map, read by the batch thread (host memory through the page cache).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artbench.core.dataset import data_home
from artbench.core.errors import ArtbenchError
from artbench.core.progress import console, progress_bar
from artbench.data.cache import CACHE_FORMAT
from artbench.data.task_data import TaskData
from artbench.methods.base import RunContext
from artbench.methods.torch.batches import TrunkSource, iterate_batches, normalise
from artbench.methods.torch.features import cached_array, key_hash
from artbench.methods.torch.network import SilkNet
from artbench.methods.torch.trainer import autocast

FORMAT_VERSION = 1
BUDGET_VARIABLE = "ARTBENCH_TRUNK_CACHE_GB"
DEFAULT_BUDGET_GB = 40.0
GPU_SHARE = 0.5
"""Largest share of the free GPU memory that a resident trunk may take."""
DISK_MARGIN = 1 << 30
"""Free disk space left after a trunk file is written."""
FLOAT16_LIMIT = 2.0**15
"""Largest magnitude stored (float16's largest finite value is 65504)."""

_resident: dict[str, Any] = {}
"""The trunk loaded for training in this process: ``path``, ``device`` and ``source`` (one at a time)."""


@dataclass
class TrunkCache:
    path: Path
    """The float16 ``[N, H, W, C]`` file."""
    scale: float
    """The stored values times ``scale`` (a power of two, 1 unless the outputs exceed float16's range)."""
    built: bool
    """Whether this call computed it (False: read from disk)."""
    seconds: float
    """Time spent computing (or verifying) it."""


def trunk_identity(model: SilkNet) -> str:
    """SHA-256 of the names, dtypes, shapes and values of the trunk's parameters and buffers."""
    digest = hashlib.sha256()
    for path in (model.stages or ())[: model.trunk_depth]:
        for name, tensor in model.backbone.get_submodule(path).state_dict().items():
            value = tensor.detach().cpu().reshape(-1)
            digest.update(f"{path}.{name}|{value.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _computed_on(ctx: RunContext) -> str:
    return ctx.device.type + (" (bf16 autocast)" if ctx.device.type == "cuda" and ctx.amp else "")


def trunk_key(data: TaskData, model: SilkNet, backbone: str, image_size: int, ctx: RunContext) -> dict[str, Any]:
    """The cache key of ``model``'s trunk over ``data`` at ``image_size`` px (module docstring)."""
    return {
        "format": FORMAT_VERSION,
        "dataset": data.dataset.name,
        "fingerprint": data.dataset.fingerprint,
        "image_cache_format": CACHE_FORMAT,  # how images are decoded (EXIF orientation, alpha) changes the input
        "num_images": len(data.dataset.table),
        "image_size": image_size,
        "backbone": backbone,
        "stages": list((model.stages or ())[: model.trunk_depth]),
        "parameters": trunk_identity(model),
        "computed_on": _computed_on(ctx),
    }


def _budget() -> float:
    raw = os.environ.get(BUDGET_VARIABLE, "")
    try:
        budget = float(raw) if raw else DEFAULT_BUDGET_GB
    except ValueError:
        budget = -1.0
    if not budget >= 0:
        raise ArtbenchError(f"{BUDGET_VARIABLE}={raw!r}: must be a number of gigabytes >= 0")
    return budget * 1e9


def _make_room(folder: Path, keep: Path, nbytes: int) -> None:
    """Remove the least recently used trunk files of ``folder`` (other than ``keep``) until those left and a new
    one of ``nbytes`` fit the budget; fail when the disk cannot take the new file."""
    others = sorted(
        (p for p in folder.glob("*.npy") if p != keep and ".tmp." not in p.name),
        key=lambda p: p.with_suffix(".json").stat().st_mtime if p.with_suffix(".json").exists() else 0.0,
    )
    total = sum(p.stat().st_size for p in others)
    budget = _budget()
    while others and total + nbytes > budget:
        oldest = others.pop(0)
        total -= oldest.stat().st_size
        oldest.with_suffix(".json").unlink(missing_ok=True)  # the sidecar first: a file without one is incomplete
        oldest.unlink(missing_ok=True)  # a run still reading it keeps its mapping (POSIX)
    free = shutil.disk_usage(folder).free
    if nbytes + DISK_MARGIN > free:
        raise ArtbenchError(
            f"the frozen-trunk cache needs {nbytes / 1e9:.1f} GB in {str(folder)!r} and {free / 1e9:.1f} GB are free; "
            "free some space, or set precompute_trunk=false (the trunk then runs for every batch)"
        )


@torch.no_grad()
def _compute(
    data: TaskData, model: SilkNet, image_size: int, ctx: RunContext, batch_size: int, channels_last: bool, tmp: Path
) -> dict[str, Any]:
    """Write the trunk output of every image to the float16 memory map ``tmp`` (NHWC), divided by the power of two
    ``scale`` (module docstring); return its shape and ``scale``."""
    cache = data.images(image_size)
    n = len(cache.images)
    probe = torch.from_numpy(np.array(cache.images[:1])).to(ctx.device).permute(0, 3, 1, 2).float()
    with autocast(ctx.device, ctx.amp):
        c, h, w = model.trunk(normalise(probe / 255)).shape[1:]
    shape = (n, h, w, c)
    _make_room(tmp.parent, tmp, int(np.prod(shape)) * 2)
    out = np.lib.format.open_memmap(tmp, "w+", np.float16, shape)
    scale = 1.0
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"{ctx.description} · frozen trunk {image_size}px", total=n)
        for batch in iterate_batches(cache, [], np.arange(n), batch_size, ctx.device, channels_last=channels_last):
            with autocast(ctx.device, ctx.amp):
                values = model.trunk(normalise(batch.images)).permute(0, 2, 3, 1).float()
            if not torch.isfinite(values).all():
                raise ArtbenchError(
                    f"the frozen-trunk outputs of {data.dataset.name} are not finite; check the weights, or set "
                    "precompute_trunk=false"
                )
            needed = scale
            while float(values.abs().max()) / needed > FLOAT16_LIMIT:
                needed *= 2.0
            if needed > scale:  # rows written so far (batches come in row order): divide them too, exactly
                for s in range(0, int(batch.index[0]), batch_size):
                    rows = slice(s, min(s + batch_size, int(batch.index[0])))
                    out[rows] = (out[rows].astype(np.float32) * (scale / needed)).astype(np.float16)
                scale = needed
            out[batch.index] = (values / scale).half().cpu().numpy()
            bar.advance(task, len(batch.index))
    out.flush()
    del out
    return {"shape": list(shape), "scale": scale}


def cached_trunk(
    data: TaskData,
    model: SilkNet,
    backbone: str,
    image_size: int,
    ctx: RunContext,
    *,
    batch_size: int = 256,
    channels_last: bool = True,
) -> TrunkCache:
    """The outputs of ``model``'s frozen trunk for every image of ``data``, computed on ``ctx.device`` on first use
    and read back (checksum verified once per process) afterwards."""
    if not model.trunk_depth:
        raise ValueError("this SilkNet has no frozen trunk to precompute")
    start = time.perf_counter()
    key = trunk_key(data, model, backbone, image_size, ctx)
    folder = data_home() / "cache" / data.dataset.name / "trunk"
    file = folder / f"{backbone}-{image_size}px-d{model.trunk_depth}-{key_hash(key)}.npy"
    built, meta = cached_array(
        file,
        key,
        lambda tmp: _compute(data, model, image_size, ctx, batch_size, channels_last, tmp),
        "frozen-trunk cache",
        _computed_on(ctx),
    )
    os.utime(file.with_suffix(".json"))  # last use, for the budget
    seconds = time.perf_counter() - start
    if built and os.environ.get("ARTBENCH_QUIET") != "1":
        size = file.stat().st_size
        amount = f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"
        console.print(f"frozen trunk of {data.dataset.name}: {amount} in {seconds:.1f} s", highlight=False)
    return TrunkCache(file, float(meta.get("scale", 1.0)), built, seconds)


def trunk_source(trunk: TrunkCache, device: torch.device) -> TrunkSource:
    """The trunk as training reads it: copied to GPU memory when it fits (module docstring), else memory-mapped.
    One trunk is resident at a time; loading another releases the previous one."""
    if _resident.get("path") == trunk.path and _resident.get("device") == device:
        return _resident["source"]
    _resident.clear()
    values = np.load(trunk.path, mmap_mode="r")
    source = TrunkSource(values, trunk.scale)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info(device)
        if values.nbytes <= GPU_SHARE * free:
            resident = torch.empty(values.shape, dtype=torch.float16, device=device)
            step = max(1, (256 << 20) // max(values[0].nbytes, 1))  # 256 MiB at a time through host memory
            for s in range(0, len(values), step):
                resident[s : s + step].copy_(torch.from_numpy(np.ascontiguousarray(values[s : s + step])))
            source = TrunkSource(resident, trunk.scale)
    _resident.update(path=trunk.path, device=device, source=source)
    return source
