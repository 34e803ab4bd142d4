"""Frozen-feature cache: backbone features computed once per (dataset, backbone, weights, resolution, layer) and
reused by every method and seed that keeps the backbone frozen (``tl_offshelf``, the OmniArt family).

Sabatelli et al. (2018, §2.3) train the off-the-shelf softmax classifier on 𝒳, "retrieved from the different DCNNs
after performing one forward pass of the image through the network"; OmniArt (Strezoski & Worring 2017, §3.3)
back-propagates only into the shared layer and the heads. So one pass over the images is enough for all epochs and
seeds, and the heads then train on the feature tensors alone (:func:`artbench.methods.torch.heads.feature_batches`).

Features are those of the un-augmented images: a frozen-feature method trains without classification augmentation
(OmniArt's horizontal flips, §4.2, are not applied). ``layer = "pool"`` is the global average pooling after the last
convolutional block (Sabatelli's 𝒳; OmniArt §3.4 "the last layer before the classifier").

Layout under ``<data home>/cache/<dataset>/features/``: ``<backbone>-<size>px-<layer>-<key hash>.npy`` (float16
``[N, D]``, rows in sample-table order, memory-mapped when read) and a sidecar ``.json`` holding the cache key,
shape and the file's SHA-256. Both are written under temporary names, fsynced and renamed (the sidecar last, so it
marks a complete file). A file whose sidecar is absent, holds another key or another checksum is rebuilt.
:func:`cached_array` does this for any float16 array; SilkNet's frozen-trunk cache (:mod:`.trunk`) uses it too.
Random weights (``weights=none``) are drawn once with torch seed 0: a fixed random feature extractor shared by
all seeds, so that seeds differ only by the head.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
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
from artbench.methods.torch.backbones import IMAGENET_WEIGHTS, XCEPTION_TIMM_NAME, build_backbone, resolve_weights
from artbench.methods.torch.batches import iterate_batches, normalise
from artbench.methods.torch.trainer import autocast

FORMAT_VERSION = 1
LAYER = "pool"
RANDOM_INIT_SEED = 0
"""Torch seed of the random weights of a frozen ``weights=none`` backbone."""
FLOAT16_MAX = float(np.finfo(np.float16).max)

_verified: dict[Path, tuple[int, int]] = {}
"""Feature files already checked in this process: path → (mtime_ns, size)."""
_digests: dict[tuple[Path, int, int], str] = {}
"""SHA-256 of weight files: (path, mtime_ns, size) → digest."""


@dataclass
class FeatureCache:
    features: np.ndarray
    """float16 ``[N, D]``, memory-mapped, rows in sample-table order."""
    path: Path
    built: bool
    """Whether this call computed the features (False: read from disk)."""
    seconds: float
    """Time spent computing (or verifying) them."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _weights_sha256(path: Path) -> str:
    st = path.stat()
    key = (path.resolve(), st.st_mtime_ns, st.st_size)
    if key not in _digests:
        _digests[key] = file_sha256(path)
    return _digests[key]


def weights_identity(backbone: str, weights: str) -> str:
    """What identifies the backbone's parameters in the cache key: torchvision's weights file (its name carries a
    hash prefix), timm's tag, the fixed random init, or the SHA-256 of a state-dict file (``run:`` resolved)."""
    if weights == "imagenet":
        return f"imagenet:{IMAGENET_WEIGHTS[backbone].url}" if backbone in IMAGENET_WEIGHTS else XCEPTION_TIMM_NAME
    if weights == "none":
        return f"random:torch-seed-{RANDOM_INIT_SEED}"
    return f"sha256:{_weights_sha256(Path(weights))}"


def feature_key(data: TaskData, backbone: str, weights: str, image_size: int) -> dict[str, Any]:
    """The cache key; ``weights`` as resolved by :func:`~artbench.methods.torch.backbones.resolve_weights`."""
    return {
        "format": FORMAT_VERSION,
        "dataset": data.dataset.name,
        "fingerprint": data.dataset.fingerprint,
        "image_cache_format": CACHE_FORMAT,  # how images are decoded (EXIF orientation, alpha) changes the input
        "num_images": len(data.dataset.table),
        "backbone": backbone,
        "weights": weights_identity(backbone, weights),
        "image_size": image_size,
        "layer": LAYER,
    }


def key_hash(key: dict[str, Any]) -> str:
    """A file-name-sized digest of a cache key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _valid(file: Path, sidecar: Path, key: dict[str, Any], what: str) -> dict[str, Any] | None:
    """The sidecar of ``file`` when it is a complete cache for ``key`` (sidecar present with the same key, shape and
    checksum), else None."""
    if not (file.is_file() and sidecar.is_file()):
        return None
    st = file.stat()
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if _verified.get(file) == (st.st_mtime_ns, st.st_size) and meta.get("key") == key:
            return meta
        array = np.load(file, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        console.print(f"[yellow]warning:[/] {what} {file.name} is unreadable; recomputing it")
        return None
    if meta.get("key") != key or list(array.shape) != meta.get("shape") or array.dtype != np.float16:
        console.print(f"[yellow]warning:[/] {what} {file.name} is stale; recomputing it")
        return None
    if file_sha256(file) != meta.get("sha256"):
        console.print(f"[yellow]warning:[/] {what} {file.name} is damaged (checksum mismatch); recomputing it")
        return None
    _verified[file] = (st.st_mtime_ns, st.st_size)
    return meta


def cached_array(
    file: Path, key: dict[str, Any], compute: Callable[[Path], dict[str, Any]], what: str, computed_on: str
) -> tuple[bool, dict[str, Any]]:
    """Make ``file`` (a float16 ``.npy``, with its ``.json`` sidecar) hold the array of ``key``; return whether it
    was computed now (False: the file on disk was sound) and the sidecar. ``compute(tmp)`` writes the array to the
    memory map ``tmp`` and returns its ``shape`` and any other entries for the sidecar; the file and its sidecar are
    written under temporary names, fsynced and renamed, the sidecar last (module docstring)."""
    folder, sidecar = file.parent, file.with_suffix(".json")
    meta = _valid(file, sidecar, key, what)
    if meta is not None:
        return False, meta
    folder.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"  # concurrent runs never write one file together
    tmp, tmp_sidecar = folder / f"{file.stem}.{token}.tmp.npy", folder / f"{file.stem}.{token}.tmp.json"
    try:
        computed = compute(tmp)
        _fsync(tmp)
        meta = {"key": key, **computed, "dtype": "float16", "sha256": file_sha256(tmp), "computed_on": computed_on}
        tmp_sidecar.write_text(json.dumps(meta, indent=2))
        _fsync(tmp_sidecar)
        os.replace(tmp, file)
        os.replace(tmp_sidecar, sidecar)
        _fsync(folder)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_sidecar.unlink(missing_ok=True)
    st = file.stat()
    _verified[file] = (st.st_mtime_ns, st.st_size)
    return True, meta


def check_float16(values: torch.Tensor, what: str) -> None:
    """Fail when ``values`` are not finite or exceed float16's range (they are about to be stored as float16)."""
    if not torch.isfinite(values).all() or values.abs().max() > FLOAT16_MAX:
        raise ArtbenchError(
            f"{what} are not finite or exceed float16's range; check the weights (weights=none is a random backbone)"
        )


@torch.no_grad()
def _compute(
    data: TaskData, backbone: str, weights: str, image_size: int, ctx: RunContext, batch_size: int, tmp: Path
) -> dict[str, Any]:
    """Write the features of every image to the float16 memory map ``tmp``; return its shape."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        net = build_backbone(backbone, weights, 0)
    body = net.body.to(ctx.device).eval()
    channels_last = ctx.device.type == "cuda"
    if channels_last:
        body = body.to(memory_format=torch.channels_last)
    cache = data.images(image_size)
    n = len(cache.images)
    out = np.lib.format.open_memmap(tmp, "w+", np.float16, (n, net.feature_dim))
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"{ctx.description} · features {backbone} {image_size}px", total=n)
        for batch in iterate_batches(cache, [], np.arange(n), batch_size, ctx.device, channels_last=channels_last):
            with autocast(ctx.device, ctx.amp):
                values = body(normalise(batch.images)).float()
            check_float16(values, f"{backbone} features of {data.dataset.name}")
            out[batch.index] = values.cpu().numpy().astype(np.float16)
            bar.advance(task, len(batch.index))
    out.flush()
    shape = out.shape
    del out
    return {"shape": list(shape)}


def cached_features(
    data: TaskData, backbone: str, weights: str, image_size: int, ctx: RunContext, *, seed: int, batch_size: int = 256
) -> FeatureCache:
    """The frozen ``backbone`` features of every image of ``data`` at ``image_size`` px, computed on ``ctx.device``
    on first use and read back (memory-mapped, checksum verified once per process) afterwards.

    ``weights`` may be ``run:<folder>[#seed][@target]``; ``seed`` picks the seed folder when none is pinned.
    """
    start = time.perf_counter()
    resolved = resolve_weights(weights, backbone, seed)
    key = feature_key(data, backbone, resolved, image_size)
    folder = data_home() / "cache" / data.dataset.name / "features"
    stem = f"{backbone}-{image_size}px-{LAYER}-{key_hash(key)}"
    file = folder / f"{stem}.npy"
    bf16 = ctx.device.type == "cuda" and ctx.amp
    built, _ = cached_array(
        file,
        key,
        lambda tmp: _compute(data, backbone, resolved, image_size, ctx, batch_size, tmp),
        "feature cache",
        str(ctx.device) + (" (bf16 autocast)" if bf16 else ""),
    )
    return FeatureCache(np.load(file, mmap_mode="r"), file, built, time.perf_counter() - start)


def features_on_device(cache: FeatureCache, device: torch.device) -> torch.Tensor:
    """All cached features as one float16 tensor on ``device`` (heads convert each batch to float32)."""
    return torch.from_numpy(np.array(cache.features)).to(device)
