"""``artbench bench``: training throughput of the real pipeline against a model-only loop, same process.

The pipeline loop reads batches from the prepared cache, augments them on the device and runs
forward/backward/step of the MTL objective; the model-only loop repeats forward/backward/step on one batch
already on the device. The ratio pipeline/model-only tells how much the input pipeline costs (1.0 = free). With
``compile``, the same model is then compiled in place (:mod:`artbench.methods.torch.acceleration`) and the model-only
loop timed again on the same batch: the ratio compiled/eager is torch.compile's gain (its one-off compile time is
reported apart).

Protocol mode (:func:`time_epochs`): one method's real ``fit`` for a few epochs; the epochs after the first (which
also holds compilation and autotuning) give the steady time per epoch, from which ``artbench bench --protocol``
estimates the GPU-hours of a recipe's whole protocol.

Head-only mode (:func:`run_head_bench`): a frozen-backbone method (``omniart_mtl``, ``tl_offshelf``) trains its head
either on the cached features (:mod:`artbench.methods.torch.features`) or, without the cache, on features recomputed
by a frozen forward pass of every batch of images; the ratio cached/recomputed is the cache's speed-up per epoch.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from artbench.core.device import configure_determinism, resolve_device, seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.progress import progress_bar
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData, prepare_task
from artbench.methods.base import METHODS, Method, RunContext
from artbench.methods.torch.acceleration import adam, compile_error
from artbench.methods.torch.augment import random_geometric
from artbench.methods.torch.backbones import build_backbone
from artbench.methods.torch.batches import Batch, iterate_batches, normalise
from artbench.methods.torch.features import cached_features, features_on_device
from artbench.methods.torch.heads import (
    MultiHead,
    feature_batches,
    make_optimiser,
    standardisation,
    training_labels,
    weighted_loss,
)
from artbench.methods.torch.objective import SilkNetObjective
from artbench.methods.torch.omniart import OmniArtMethod
from artbench.methods.torch.silknet import SilkNetMethod
from artbench.methods.torch.trainer import autocast


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"


def _timed(step: Callable[[], None], steps: int, warmup: int, device: torch.device, label: str) -> float:
    with progress_bar(transient=True) as bar:
        task = bar.add_task(label, total=warmup + steps)
        for _ in range(warmup):
            step()
            bar.advance(task)
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
            bar.advance(task)
        _sync(device)
    return time.perf_counter() - start


def require_compiler(device: torch.device) -> None:
    """``--compile`` where torch.compile cannot work (no C compiler for the CPU backend, no Triton, ...) is a one-line
    error."""
    error = compile_error(device.type)
    if error is not None:
        hint = "install a C compiler (gcc) or " if device.type == "cpu" else ""
        raise ArtbenchError(
            f"--compile: torch.compile does not work on {device.type} here ({error}); {hint}leave out --compile"
        )


def run_bench(
    *,
    task: TaskSpec,
    device: str,
    backbone: str,
    image_size: int,
    batch_size: int,
    steps: int,
    warmup: int,
    compile: bool = False,
) -> dict[str, Any]:
    """Images/s of the ``mtl`` recipe (task defaults applied) through the real pipeline and on one fixed batch, and
    with ``compile`` on the same batch after compiling the model."""
    dev = resolve_device(device)
    configure_determinism(False)  # as a default run: cuDNN autotuning on CUDA
    if compile:
        require_compiler(dev)
    entry = METHODS.get("mtl")
    defaults = {k: v for k, v in task.defaults.items() if k in entry.parameter_names()}
    method = entry.build(
        entry.coerce(defaults, "task defaults"),
        entry.fixed,
        {"backbone": backbone, "image_size": image_size, "batch_size": batch_size, "weights": "none"},
    )
    assert isinstance(method, SilkNetMethod)
    data = prepare_task(task)
    cache = data.images(image_size)
    seed_everything(0)
    model = method.build_network(data.targets, dev).train()
    objective = SilkNetObjective(method, [t.kind for t in data.targets])
    optimiser = adam([p for p in model.parameters() if p.requires_grad], lr=method.lr)
    generator = torch.Generator(device=dev).manual_seed(0)
    rng = np.random.default_rng(0)
    train = data.index("train")
    if batch_size > len(train):
        raise ArtbenchError(
            f"--batch-size {batch_size} is larger than the {len(train)} training images of task {task.name!r}; "
            "pass a smaller batch size or a larger task"
        )

    def batches():
        while True:
            yield from iterate_batches(
                cache, data.labels, train, batch_size, dev, rng=rng, drop_last=True, channels_last=method.channels_last
            )

    stream = batches()

    def train_step(batch: Batch, augment: bool) -> None:
        images = random_geometric(batch.images, generator) if augment else batch.images
        with autocast(dev, True):
            loss, _ = objective(model, images, batch, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    fixed = next(stream)
    pipeline_s = _timed(lambda: train_step(next(stream), method.augment), steps, warmup, dev, "pipeline")
    model_s = _timed(lambda: train_step(fixed, False), steps, warmup, dev, "model only")
    pipeline_ips, model_ips = steps * batch_size / pipeline_s, steps * batch_size / model_s
    result = {
        "device_name": _device_name(dev),
        "pipeline_images_per_s": pipeline_ips,
        "model_images_per_s": model_ips,
        "ratio": pipeline_ips / model_ips,
    }
    if compile:
        model.compile()
        started = time.perf_counter()
        train_step(fixed, False)  # compiles
        _sync(dev)
        compile_s = time.perf_counter() - started
        compiled_s = _timed(lambda: train_step(fixed, False), steps, warmup, dev, "model only, compiled")
        compiled_ips = steps * batch_size / compiled_s
        result.update(
            compiled_images_per_s=compiled_ips, compile_ratio=compiled_ips / model_ips, compile_seconds=compile_s
        )
    return result


def run_head_bench(
    *,
    task: TaskSpec,
    device: str,
    backbone: str,
    image_size: int,
    batch_size: int,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    """Images/s of the ``omniart_mtl`` head (its defaults: 6144 shared units; random backbone weights) trained on
    cached features and on features recomputed from the images every step, the frozen forward pass alone, and the
    one-off time of computing the cache."""
    dev = resolve_device(device)
    data = prepare_task(task)
    train = data.index("train")
    if batch_size > len(train):
        raise ArtbenchError(
            f"--batch-size {batch_size} is larger than the {len(train)} training images of task {task.name!r}; "
            "pass a smaller batch size or a larger task"
        )
    method = METHODS.get("omniart_mtl").defaults()
    assert isinstance(method, OmniArtMethod)
    ctx = RunContext(dev, description="bench")
    cache = data.images(image_size)
    features = features_on_device(cached_features(data, backbone, "none", image_size, ctx, seed=1), dev)
    seed_everything(0)
    body = build_backbone(backbone, "none", 0).body.to(dev).eval()
    head = MultiHead(features.shape[1], [t.num_outputs for t in data.targets], method.shared_units).to(dev)
    optimiser = make_optimiser(method, head.parameters())
    scaling = {m: standardisation(y[train]) for m, y in enumerate(data.labels) if data.targets[m].kind == "regression"}
    labels = [training_labels(y, scaling.get(m)) for m, y in enumerate(data.labels)]
    device_labels = [torch.from_numpy(np.ascontiguousarray(y)).to(dev) for y in labels]
    kinds, factors = [t.kind for t in data.targets], [method.factor(t) for t in data.targets]
    rng = np.random.default_rng(0)

    def head_step(x: torch.Tensor, ys: list[torch.Tensor]) -> None:
        with autocast(dev, True):
            loss, _ = weighted_loss(head(x), ys, kinds, factors)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    def forever(make: Callable[[], Any]) -> Any:
        while True:
            yield from make()

    cached = forever(lambda: feature_batches(features, device_labels, train, batch_size, rng))
    images = forever(lambda: iterate_batches(cache, labels, train, batch_size, dev, rng=rng, drop_last=True))

    @torch.no_grad()
    def frozen_forward(batch: Batch) -> torch.Tensor:
        with autocast(dev, True):
            return body(normalise(batch.images)).float()

    def recompute_step() -> None:
        batch = next(images)
        head_step(frozen_forward(batch), batch.labels)

    cached_s = _timed(lambda: head_step(*next(cached)), steps, warmup, dev, "head on cached features")
    recompute_s = _timed(recompute_step, steps, warmup, dev, "frozen forward + head")
    forward_s = _timed(lambda: frozen_forward(next(images)), steps, warmup, dev, "frozen forward only")
    cached_ips, recompute_ips = steps * batch_size / cached_s, steps * batch_size / recompute_s
    forward_ips = steps * batch_size / forward_s
    return {
        "device_name": _device_name(dev),
        "feature_dim": int(features.shape[1]),
        "num_images": len(features),
        "train_images": len(train),
        "cached_images_per_s": cached_ips,
        "recompute_images_per_s": recompute_ips,
        "forward_images_per_s": forward_ips,
        "shared_units": method.shared_units,
        "speedup": cached_ips / recompute_ips,
        "cache_seconds": len(features) / forward_ips,
    }


@dataclass
class EpochTiming:
    """What :func:`time_epochs` measured of one method."""

    seconds_per_epoch: float | None
    """Steady time of one epoch of one model (training and validation), from the epochs after each model's first;
    None for a method without epochs."""
    models: int
    """Models trained per seed (one per target for ``stl``)."""
    fit_seconds: float
    """The whole fit: one-off preparation (caches, features), compilation and every epoch."""
    first_epoch_seconds: float
    """From the start of the fit to the end of the first epoch: one-off preparation, compilation and autotuning,
    and one epoch (the whole fit for a method without epochs)."""


def time_epochs(
    method: Method, data: TaskData, device: torch.device, *, epochs: int = 2, amp: bool = True, compile: bool = False
) -> EpochTiming:
    """Fit ``method`` for seed 1 with ``max_epochs`` = ``epochs`` and a patience that never stops it, and time its
    epochs from the per-epoch log: the interval between two consecutive epochs of the same model."""
    names = {f.name for f in dataclasses.fields(method)}
    method = dataclasses.replace(method, **{k: epochs for k in ("max_epochs", "patience") if k in names})
    stamps: dict[frozenset[str], list[float]] = {}

    def log(epoch: int, values: Mapping[str, float]) -> None:
        stamps.setdefault(frozenset(values), []).append(time.perf_counter())

    configure_determinism(False)
    ctx = RunContext(device, amp, log_epoch=log, description=f"bench · {type(method).__name__}", compile=compile)
    seed_everything(1)
    started = time.perf_counter()
    method.fit(data, 1, ctx)
    fit_seconds = time.perf_counter() - started
    intervals = [b - a for times in stamps.values() for a, b in itertools.pairwise(times)]
    first = min((times[0] for times in stamps.values()), default=started + fit_seconds) - started
    return EpochTiming(sum(intervals) / len(intervals) if intervals else None, max(len(stamps), 1), fit_seconds, first)
