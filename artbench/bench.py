"""``artbench bench``: training throughput of the real pipeline against a model-only loop, same process.

The pipeline loop reads batches from the prepared cache, augments them on the device and runs
forward/backward/step of the MTL objective; the model-only loop repeats forward/backward/step on one batch
already on the device. The ratio pipeline/model-only tells how much the input pipeline costs (1.0 = free).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from artbench.config import resolve_config
from artbench.data.task_data import prepare_task
from artbench.errors import ArtbenchError
from artbench.methods import METHODS
from artbench.progress import progress_bar
from artbench.runner import build_model
from artbench.tasks import load_task
from artbench.training.augment import random_geometric
from artbench.training.batches import Batch, iterate_batches
from artbench.training.device import resolve_device, seed_everything
from artbench.training.loop import autocast


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def run_bench(
    *, task: str, device: str, backbone: str, image_size: int, batch_size: int, steps: int, warmup: int
) -> dict[str, Any]:
    dev = resolve_device(device)
    spec = load_task(task)
    method = METHODS.get("mtl")
    cfg = resolve_config(
        spec.defaults,
        method.config,
        {"backbone": backbone, "image_size": image_size, "batch_size": batch_size, "weights": "none"},
    )
    data = prepare_task(spec, image_size)
    seed_everything(0)
    model = build_model(cfg, [t.num_outputs for t in data.targets], dev).train()
    objective = method.objective(cfg)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    generator = torch.Generator(device=dev).manual_seed(0)
    rng = np.random.default_rng(0)
    train = data.index("train")
    if batch_size > len(train):
        raise ArtbenchError(
            f"--batch-size {batch_size} is larger than the {len(train)} training images of task {spec.name!r}; "
            "pass a smaller batch size or a larger task"
        )

    def batches():
        while True:
            yield from iterate_batches(
                data.cache,
                data.labels,
                train,
                batch_size,
                dev,
                rng=rng,
                drop_last=True,
                channels_last=cfg.channels_last,
            )

    stream = batches()

    def train_step(batch: Batch, augment: bool) -> None:
        images = random_geometric(batch.images, generator) if augment else batch.images
        with autocast(dev, cfg):
            loss, _ = objective(model, images, batch, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    fixed = next(stream)
    pipeline_s = _timed(lambda: train_step(next(stream), cfg.augment), steps, warmup, dev, "pipeline")
    model_s = _timed(lambda: train_step(fixed, False), steps, warmup, dev, "model only")
    pipeline_ips, model_ips = steps * batch_size / pipeline_s, steps * batch_size / model_s
    return {
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)",
        "pipeline_images_per_s": pipeline_ips,
        "model_images_per_s": model_ips,
        "ratio": pipeline_ips / model_ips,
    }
