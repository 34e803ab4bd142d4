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

from artbench.core.device import resolve_device, seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.progress import progress_bar
from artbench.core.task import TaskSpec
from artbench.data.task_data import prepare_task
from artbench.methods.base import METHODS
from artbench.methods.torch.augment import random_geometric
from artbench.methods.torch.batches import Batch, iterate_batches
from artbench.methods.torch.objective import SilkNetObjective
from artbench.methods.torch.silknet import SilkNetMethod
from artbench.methods.torch.trainer import autocast


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
    *, task: TaskSpec, device: str, backbone: str, image_size: int, batch_size: int, steps: int, warmup: int
) -> dict[str, Any]:
    """Images/s of the ``mtl`` recipe (task defaults applied) through the real pipeline and on one fixed batch."""
    dev = resolve_device(device)
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
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=method.lr)
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
    return {
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)",
        "pipeline_images_per_s": pipeline_ips,
        "model_images_per_s": model_ips,
        "ratio": pipeline_ips / model_ips,
    }
