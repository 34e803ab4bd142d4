"""Training loop of the torch methods: Adam, optional batched on-device augmentation, early stopping on a
validation criterion with the best epoch restored (SilkNet §5.1)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from artbench.core.errors import ArtbenchError
from artbench.core.progress import console, progress_bar
from artbench.data.cache import ImageCache
from artbench.methods.base import RunContext
from artbench.methods.torch.augment import random_geometric
from artbench.methods.torch.batches import iterate_batches, normalise
from artbench.methods.torch.objective import Objective


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; full precision on the CPU."""
    if device.type == "cuda" and amp:
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


class TrainingParams(Protocol):
    """The parameters the loop reads (a family's params dataclass provides them)."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    batch_size: int
    eval_batch_size: int
    max_epochs: int
    patience: int
    min_delta: float
    augment: bool
    channels_last: bool


def fit(
    model: nn.Module,
    objective: Objective,
    cache: ImageCache,
    labels: Sequence[np.ndarray],
    train_index: np.ndarray,
    criterion: Callable[[nn.Module], float],
    params: TrainingParams,
    ctx: RunContext,
    *,
    seed: int,
    early_stopping: bool = True,
    prefix: str = "",
) -> FitResult:
    """Train ``model`` in place and restore the weights of the epoch with the lowest ``criterion``.

    ``criterion`` evaluates the model on the validation rows (lower is better) and is the same for every method
    of a family, so that early stopping compares methods under one rule. Without ``early_stopping`` (no validation
    label) every epoch runs and the last weights are kept.
    """
    description = ctx.description + (f" · {prefix.rstrip('.')}" if prefix else "")
    if len(train_index) < 2:
        raise ArtbenchError(f"{description}: {len(train_index)} labelled training sample(s); training needs at least 2")
    device = ctx.device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(
        trainable, lr=params.lr, betas=(params.beta1, params.beta2), eps=params.eps, weight_decay=params.weight_decay
    )
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    stopper = EarlyStopping(params.patience, params.min_delta)
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    drop_last = len(train_index) > params.batch_size  # a batch of one breaks BatchNorm
    with progress_bar(transient=True) as bar:
        task = bar.add_task(description, total=params.max_epochs)
        for epoch in range(1, params.max_epochs + 1):
            model.train()
            sums: dict[str, float] = {}
            steps = 0
            for batch in iterate_batches(
                cache,
                labels,
                train_index,
                params.batch_size,
                device,
                rng=rng,
                drop_last=drop_last,
                channels_last=params.channels_last,
            ):
                images = random_geometric(batch.images, generator) if params.augment else batch.images
                with autocast(device, ctx.amp):
                    loss, parts = objective(model, images, batch, generator)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                steps += 1
            record = {f"train_{k}": v / max(steps, 1) for k, v in sums.items()}
            record["val_criterion"] = criterion(model)
            history.append({"epoch": epoch, **record})
            ctx.log(epoch, {prefix + k: v for k, v in record.items()})
            if not early_stopping or stopper.step(epoch, record["val_criterion"]):  # NaN is never the best
                best_state = copy.deepcopy(model.state_dict())
            bar.update(
                task,
                advance=1,
                description=(
                    f"{description} · epoch {epoch} · train {record.get('train_loss', math.nan):.3f}"
                    f" · val {record['val_criterion']:.3f} (best {stopper.best:.3f} @ {stopper.best_epoch})"
                ),
            )
            if early_stopping and stopper.should_stop:
                break
    if early_stopping and stopper.best_epoch == 0:
        console.print(
            f"[yellow]warning:[/] {description}: the validation criterion was never finite; initial weights kept"
        )
    model.load_state_dict(best_state)
    best_epoch = stopper.best_epoch if early_stopping else len(history)
    return FitResult(best_epoch, len(history), history, time.perf_counter() - start)


@torch.no_grad()
def predict_outputs(
    model: nn.Module, cache: ImageCache, index: np.ndarray, params: TrainingParams, ctx: RunContext
) -> list[np.ndarray]:
    """Raw network outputs (float32) per target for the rows ``index``, in the order of ``index``."""
    model.eval()
    outputs: list[list[np.ndarray]] = []
    with autocast(ctx.device, ctx.amp):
        for batch in iterate_batches(
            cache, [], np.sort(index), params.eval_batch_size, ctx.device, channels_last=params.channels_last
        ):
            outputs.append([z.float().cpu().numpy() for z in model(normalise(batch.images)).logits])
    if not outputs:
        return []
    rank = np.argsort(np.argsort(index))  # outputs come back in sorted row order; restore the caller's order
    return [np.concatenate([o[m] for o in outputs])[rank] for m in range(len(outputs[0]))]
