"""Training loop: Adam, batched on-device augmentation, early stopping on the validation loss (SilkNet §5.1)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from artbench.config import RunConfig
from artbench.data.cache import ImageCache
from artbench.errors import ArtbenchError
from artbench.methods.objective import Objective
from artbench.progress import console, progress_bar
from artbench.training.augment import random_geometric
from artbench.training.batches import iterate_batches, normalise

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def autocast(device: torch.device, cfg: RunConfig):
    """bf16 autocast on CUDA when ``cfg.amp``; full precision on the CPU."""
    if device.type == "cuda" and cfg.amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class EarlyStopping:
    """Stop when the validation loss has not improved by more than ``min_delta`` for ``patience`` epochs."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0

    def step(self, epoch: int, loss: float) -> bool:
        """Record an epoch's loss; return True when it is the best so far."""
        if loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = loss, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


def validation_loss(
    model: nn.Module,
    objective: Objective,
    cache: ImageCache,
    labels: np.ndarray,
    index: np.ndarray,
    cfg: RunConfig,
    device: torch.device,
) -> float:
    """Classification loss over the validation set, each batch weighted by its number of known labels."""
    model.eval()
    total, weight = 0.0, 0
    with torch.no_grad(), autocast(device, cfg):
        for batch in iterate_batches(
            cache, labels, index, cfg.eval_batch_size, device, channels_last=cfg.channels_last
        ):
            n = int((batch.labels >= 0).sum())
            if n:
                total += float(objective.validation_loss(model, normalise(batch.images), batch.labels)) * n
                weight += n
    return total / weight if weight else math.nan


def fit(
    model: nn.Module,
    objective: Objective,
    cache: ImageCache,
    labels: np.ndarray,
    train_index: np.ndarray,
    val_index: np.ndarray,
    cfg: RunConfig,
    device: torch.device,
    *,
    seed: int,
    description: str = "training",
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train ``model`` in place and restore the weights of the epoch with the lowest validation loss."""
    if len(train_index) < 2:
        raise ArtbenchError(f"{description}: {len(train_index)} labelled training sample(s); training needs at least 2")
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(
        params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    stopper = EarlyStopping(cfg.patience, cfg.min_delta)
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    drop_last = len(train_index) > cfg.batch_size  # a batch of one breaks BatchNorm
    # Without a single validation label there is nothing to stop on: train all epochs and keep the last weights.
    early_stopping = bool((labels[val_index] >= 0).any())
    with progress_bar(transient=True) as bar:
        task = bar.add_task(description, total=cfg.max_epochs)
        for epoch in range(1, cfg.max_epochs + 1):
            model.train()
            sums: dict[str, float] = {}
            steps = 0
            for batch in iterate_batches(
                cache,
                labels,
                train_index,
                cfg.batch_size,
                device,
                rng=rng,
                drop_last=drop_last,
                channels_last=cfg.channels_last,
            ):
                images = random_geometric(batch.images, generator) if cfg.augment else batch.images
                with autocast(device, cfg):
                    loss, parts = objective(model, images, batch, generator)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                steps += 1
            record = {f"train_{k}": v / max(steps, 1) for k, v in sums.items()}
            record["val_loss"] = validation_loss(model, objective, cache, labels, val_index, cfg, device)
            record["epoch"] = epoch
            history.append(record)
            if on_epoch is not None:
                on_epoch(epoch, record)
            if not early_stopping or stopper.step(epoch, record["val_loss"]):  # a NaN loss is never the best
                best_state = copy.deepcopy(model.state_dict())
            bar.update(
                task,
                advance=1,
                description=(
                    f"{description} · epoch {epoch} · train {record.get('train_loss', math.nan):.3f}"
                    f" · val {record['val_loss']:.3f} (best {stopper.best:.3f} @ {stopper.best_epoch})"
                ),
            )
            if early_stopping and stopper.should_stop:
                break
    if early_stopping and stopper.best_epoch == 0:
        console.print(f"[yellow]warning:[/] {description}: the validation loss was never finite; initial weights kept")
    model.load_state_dict(best_state)
    best_epoch = stopper.best_epoch if early_stopping else len(history)
    return FitResult(best_epoch, len(history), history, time.perf_counter() - start)


@torch.no_grad()
def predict(
    model: nn.Module, cache: ImageCache, index: np.ndarray, cfg: RunConfig, device: torch.device
) -> list[np.ndarray]:
    """Softmax class scores ``[len(index), K_m]`` per target for the given rows, in the order of ``index``."""
    model.eval()
    dummy = np.zeros((len(cache.images), 0), dtype=np.int64)
    outputs: list[list[np.ndarray]] = []
    with autocast(device, cfg):
        for batch in iterate_batches(
            cache, dummy, np.sort(index), cfg.eval_batch_size, device, channels_last=cfg.channels_last
        ):
            logits = model(normalise(batch.images)).logits
            outputs.append([torch.softmax(z.float(), dim=1).cpu().numpy() for z in logits])
    if not outputs:
        return []
    rank = np.argsort(np.argsort(index))  # scores come back in sorted row order; restore the caller's order
    return [np.concatenate([o[m] for o in outputs])[rank] for m in range(len(outputs[0]))]
