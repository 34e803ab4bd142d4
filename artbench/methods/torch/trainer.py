"""Training loop of the torch methods: :func:`train_epochs` is the epoch loop of every family (any optimiser and
batch source, early stopping on a validation criterion with the best epoch restored, SilkNet §5.1, and a checkpoint
after every epoch); :func:`fit` runs it with Adam on batches of the image cache (optionally augmented on the device
or read as precomputed trunk outputs).

Checkpoints (issue 14, "Resume"): with ``ctx.checkpoint_dir`` set, every epoch ends by writing
``<model>-epoch-<e>.pt`` atomically (temporary file, flush, rename; in a background thread while the next epoch
trains) with the model, the optimiser, the early-stopping state, the history, the time and images so far and every
random state the loop draws from (the shuffling NumPy generator, the augmentation generator, torch's CPU and CUDA
generators for dropout, NumPy's and Python's global ones). Only the latest checkpoint and the best epoch's are kept.
A later :func:`train_epochs` of the same model finds the latest readable one and continues from the next epoch, so
on the CPU a resumed seed ends with the weights of an uninterrupted one, whatever the family. Frozen parameters are
not stored: they never change, and the method rebuilds them identically from its seed.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from artbench.core.errors import ArtbenchError
from artbench.core.progress import console, progress_bar
from artbench.data.cache import ImageCache
from artbench.methods.base import RunContext
from artbench.methods.torch.acceleration import adam, prepare_model
from artbench.methods.torch.augment import random_geometric
from artbench.methods.torch.batches import Batch, TrunkSource, iterate_batches, normalise
from artbench.methods.torch.objective import Objective

CHECKPOINT_FORMAT = 1


class SizedBatch(Protocol):
    """What the epoch loop needs of a batch (an image :class:`~artbench.methods.torch.batches.Batch` or a
    :class:`~artbench.methods.torch.heads.FeatureBatch`): its number of samples."""

    @property
    def size(self) -> int: ...


AnyBatch = TypeVar("AnyBatch", bound=SizedBatch)


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    """Time in the loop, including that of epochs restored from a checkpoint."""
    images: int = 0
    """Training images processed over all epochs."""
    resumed_epochs: int = 0
    """Epochs restored from a checkpoint rather than trained by this call."""


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

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


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


def _random_states(rng: np.random.Generator, generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "numpy": rng.bit_generator.state,
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "numpy_global": [name, keys.tolist(), pos, has_gauss, cached],
        "python": random.getstate(),
    }


def _restore_random_states(states: dict[str, Any], rng: np.random.Generator, generator: torch.Generator) -> None:
    rng.bit_generator.state = states["numpy"]
    generator.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, pos, has_gauss, cached = states["numpy_global"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


class Checkpoints:
    """The per-epoch checkpoints of one model of one seed in ``folder`` (see the module docstring).

    ``signature`` identifies the training (seed, training rows, loop parameters): a checkpoint written under another
    signature is ignored with a warning rather than resumed.
    """

    def __init__(self, folder: Path, prefix: str, signature: dict[str, Any], description: str) -> None:
        name = prefix.rstrip(".")
        slug, digest = re.sub(r"[^\w.-]", "_", name)[:40], hashlib.sha1(name.encode()).hexdigest()[:8]
        self.stem = f"model-{slug}-{digest}" if name else "model"
        self.folder, self.signature, self.description = folder, signature, description
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._pending: Future[None] | None = None

    def path(self, epoch: int) -> Path:
        return self.folder / f"{self.stem}-epoch-{epoch:04d}.pt"

    def epochs(self) -> list[int]:
        found = (re.fullmatch(rf"{re.escape(self.stem)}-epoch-(\d+)\.pt", p.name) for p in self.folder.glob("*.pt"))
        return sorted((int(m.group(1)) for m in found if m), reverse=True)

    def _read(self, epoch: int) -> dict[str, Any] | None:
        try:
            state = torch.load(self.path(epoch), map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or damaged file: fall back to an older checkpoint
            console.print(
                f"[yellow]warning:[/] {self.description}: checkpoint {self.path(epoch).name} is unreadable "
                f"({type(exc).__name__}); trying an older one",
                soft_wrap=True,
            )
            return None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or state.get("epoch") != epoch:
            return None
        return state

    def latest(self) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """The latest readable checkpoint with this signature and the one of its best epoch (None when the best
        is the latest or no epoch was the best), or None when there is nothing to resume."""
        for epoch in self.epochs():
            state = self._read(epoch)
            if state is None:
                continue
            if state["signature"] != self.signature:
                console.print(
                    f"[yellow]warning:[/] {self.description}: checkpoints in {str(self.folder)!r} belong to other "
                    "training settings; training from the start",
                    soft_wrap=True,
                )
                return None
            best_epoch = state["best_epoch"]
            if best_epoch in (0, epoch):
                return state, None
            best = self._read(best_epoch)
            if best is not None and best["signature"] == self.signature:
                return state, best
        return None

    def save(self, state: dict[str, Any], keep: set[int]) -> None:
        """Copy ``state`` to host memory now and write it in the background (temporary file, flush, rename; then the
        checkpoints other than ``keep`` are deleted), so that the next epoch trains while it is written; a write
        waits for the previous one. A ResNet-152 checkpoint (NB_RN = 3) is about 175 MiB."""
        snapshot = _host_copy({"format": CHECKPOINT_FORMAT, "signature": self.signature, **state})
        self.wait()
        self._pending = self._writer.submit(self._write, snapshot, keep)

    def wait(self) -> None:
        """Wait for the checkpoint being written (its error, if any, is raised here)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Wait for the last write and stop the writer thread."""
        try:
            self.wait()
        finally:
            self._writer.shutdown()

    def _write(self, state: dict[str, Any], keep: set[int]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(state["epoch"])
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        for epoch in self.epochs():
            if epoch not in keep:
                self.path(epoch).unlink(missing_ok=True)


@contextmanager
def _written_on_exit(checkpoints: Checkpoints | None) -> Iterator[None]:
    """However the loop ends (Ctrl-C, SIGTERM, a pre-emption's SystemExit), the last epoch's checkpoint is on disk."""
    try:
        yield
    finally:
        if checkpoints is not None:
            checkpoints.close()


def _host_copy(obj: Any) -> Any:
    """``obj`` with every tensor copied to host memory (training goes on changing the originals in place)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _host_copy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_host_copy(v) for v in obj)
    return obj


def _signature(
    model: nn.Module, seed: int, train_index: np.ndarray, params: LoopParams, early_stopping: bool
) -> dict[str, Any]:
    """What a checkpoint must have been trained under to be resumed: the architecture (state names and shapes,
    trainable or not), the seed, the training rows and the loop's parameters."""
    layout = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    layout += [(k, p.requires_grad) for k, p in model.named_parameters()]
    rows = hashlib.sha1(np.ascontiguousarray(train_index, dtype=np.int64).tobytes()).hexdigest()
    loop = {k: getattr(params, k, None) for k in ("lr", "batch_size", "max_epochs", "patience", "min_delta", "augment")}
    return {
        "model": hashlib.sha1(repr(layout).encode()).hexdigest(),
        "seed": seed,
        "train_rows": rows,
        "early_stopping": early_stopping,
        **loop,
    }


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
    trunk: TrunkSource | None = None,
    trunk_images: bool = False,
) -> FitResult:
    """Train ``model`` with Adam on batches of the image cache and restore the weights of the epoch with the lowest
    ``criterion`` (:func:`train_epochs`).

    With ``trunk`` (precomputed frozen-trunk outputs, :mod:`artbench.methods.torch.trunk`) every batch carries them
    and its images only with ``trunk_images``; classification augmentation cannot apply then.

    ``criterion`` evaluates the model on the validation rows (lower is better) and is the same for every method
    of a family, so that early stopping compares methods under one rule. Without ``early_stopping`` (no validation
    label) every epoch runs and the last weights are kept.
    """
    if trunk is not None and params.augment:
        raise ValueError("precomputed trunk outputs are those of the un-augmented images; augment must be off")
    optimiser = adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=params.lr,
        betas=(params.beta1, params.beta2),
        eps=params.eps,
        weight_decay=params.weight_decay,
    )
    drop_last = len(train_index) > params.batch_size  # a batch of one breaks BatchNorm

    def batches(rng: np.random.Generator) -> Iterator[Batch]:
        return iterate_batches(
            cache,
            labels,
            train_index,
            params.batch_size,
            ctx.device,
            rng=rng,
            drop_last=drop_last,
            channels_last=params.channels_last,
            trunk=trunk,
            images=trunk is None or trunk_images,
        )

    def loss_fn(model: nn.Module, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        images = random_geometric(batch.images, generator) if params.augment else batch.images
        return objective(model, images, batch, generator)

    return train_epochs(
        model,
        optimiser,
        batches,
        loss_fn,
        criterion,
        params,
        ctx,
        seed=seed,
        train_rows=train_index,
        early_stopping=early_stopping,
        prefix=prefix,
    )


class LoopParams(Protocol):
    """The parameters :func:`train_epochs` reads; ``lr``, ``batch_size`` and ``augment``, where a family has them,
    also go into the checkpoints' signature."""

    max_epochs: int
    patience: int
    min_delta: float


def train_epochs(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    batches: Callable[[np.random.Generator], Iterable[AnyBatch]],
    loss_fn: Callable[[nn.Module, AnyBatch, torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    criterion: Callable[[nn.Module], float],
    params: LoopParams,
    ctx: RunContext,
    *,
    seed: int,
    train_rows: np.ndarray,
    early_stopping: bool = True,
    prefix: str = "",
) -> FitResult:
    """The epoch loop of every torch family: train ``model`` in place with ``optimiser``, evaluate ``criterion``
    after each epoch (lower is better), stop after ``patience`` epochs without improvement and keep the best epoch's
    weights; write a checkpoint after every epoch and continue from the latest one (module docstring).

    ``batches(rng)`` yields one epoch of batches shuffled by the NumPy generator ``rng`` (each with a ``size``);
    ``loss_fn(model, batch, generator)`` returns the loss and its named parts (``loss`` the total), drawing any
    randomness (augmentation, x' of L_slf) from the torch ``generator``. Both generators are seeded with ``seed``
    and checkpointed, so a resumed seed continues the same random sequences. ``train_rows`` (the training rows)
    identify the training in the checkpoints. The epochs, images and time add to ``ctx.cost``.
    """
    description = ctx.description + (f" · {prefix.rstrip('.')}" if prefix else "")
    if len(train_rows) < 2:
        raise ArtbenchError(f"{description}: {len(train_rows)} labelled training sample(s); training needs at least 2")
    device = ctx.device
    prepare_model(model, ctx)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    stopper = EarlyStopping(params.patience, params.min_delta)
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    images_seen, seconds_before, first_epoch = 0, 0.0, 1
    signature = _signature(model, seed, train_rows, params, early_stopping)
    checkpoints = (
        Checkpoints(ctx.checkpoint_dir, prefix, signature, description) if ctx.checkpoint_dir is not None else None
    )
    found = checkpoints.latest() if checkpoints is not None else None
    if found is not None:
        state, best = found
        initial = best_state
        model.load_state_dict({**initial, **state["model"]})
        optimiser.load_state_dict(state["optimiser"])
        stopper.load_state_dict(state["stopper"])
        _restore_random_states(state["random"], rng, generator)
        history, images_seen, seconds_before = list(state["history"]), state["images"], state["seconds"]
        first_epoch = state["epoch"] + 1
        if not early_stopping or state["best_epoch"] == state["epoch"]:
            best_state = copy.deepcopy(model.state_dict())
        elif best is not None:
            best_state = {**initial, **best["model"]}
        for record in history:  # the new MLflow seed run gets the whole curve
            ctx.log(record["epoch"], {prefix + k: v for k, v in record.items() if k != "epoch"})
    resumed_epochs = len(history)
    start = time.perf_counter() - seconds_before
    with progress_bar(transient=True) as bar, _written_on_exit(checkpoints):
        task = bar.add_task(description, total=params.max_epochs, completed=first_epoch - 1)
        for epoch in range(first_epoch, params.max_epochs + 1):
            if early_stopping and stopper.should_stop:  # a resumed model that had already stopped
                break
            model.train()
            sums: dict[str, float] = {}
            steps = 0
            for batch in batches(rng):
                with autocast(device, ctx.amp):
                    loss, parts = loss_fn(model, batch, generator)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                steps += 1
                images_seen += batch.size
            record = {f"train_{k}": v / max(steps, 1) for k, v in sums.items()}
            record["val_criterion"] = criterion(model)
            history.append({"epoch": epoch, **record})
            ctx.log(epoch, {prefix + k: v for k, v in record.items()})
            if not early_stopping or stopper.step(epoch, record["val_criterion"]):  # NaN is never the best
                best_state = copy.deepcopy(model.state_dict())
            if checkpoints is not None:
                best_epoch = stopper.best_epoch if early_stopping else epoch
                checkpoints.save(
                    {
                        "epoch": epoch,
                        "best_epoch": best_epoch,
                        "model": {k: v for k, v in model.state_dict().items() if k not in frozen},
                        "optimiser": optimiser.state_dict(),
                        "stopper": stopper.state_dict(),
                        "random": _random_states(rng, generator, device),
                        "history": history,
                        "images": images_seen,
                        "seconds": time.perf_counter() - start,
                    },
                    keep={epoch, best_epoch},
                )
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
    result = finish_fit(
        model, stopper, early_stopping, best_state, history, start, images_seen, ctx, description, resumed_epochs
    )
    ctx.cost.resumed_epochs += result.resumed_epochs
    ctx.cost.resumed_seconds += seconds_before
    return result


def finish_fit(
    model: nn.Module,
    stopper: EarlyStopping,
    early_stopping: bool,
    best_state: dict,
    history: list[dict[str, float]],
    start: float,
    images: int,
    ctx: RunContext,
    description: str,
    resumed_epochs: int = 0,
) -> FitResult:
    """End of a training loop: restore the best epoch's weights (warn when no criterion was ever finite), and add
    the epochs, images and seconds to the seed's cost."""
    if early_stopping and stopper.best_epoch == 0:
        console.print(
            f"[yellow]warning:[/] {description}: the validation criterion was never finite; initial weights kept"
        )
    model.load_state_dict(best_state)
    best_epoch = stopper.best_epoch if early_stopping else len(history)
    result = FitResult(best_epoch, len(history), history, time.perf_counter() - start, images, resumed_epochs)
    ctx.cost.epochs += result.epochs_run
    ctx.cost.images += result.images
    ctx.cost.seconds += result.seconds
    return result


def batch_outputs(model: nn.Module, batch: Batch) -> Any:
    """``model`` on a batch for evaluation: from its precomputed trunk outputs when it carries them (a SilkNet's
    ``from_trunk``), else from its normalised images."""
    return model(batch.trunk, from_trunk=True) if batch.trunk is not None else model(normalise(batch.images))


@torch.no_grad()
def predict_outputs(
    model: nn.Module,
    cache: ImageCache,
    index: np.ndarray,
    params: TrainingParams,
    ctx: RunContext,
    trunk: TrunkSource | None = None,
) -> list[np.ndarray]:
    """Raw network outputs (float32) per target for the rows ``index``, in the order of ``index``; with ``trunk``,
    computed from the precomputed trunk outputs (a SilkNet's ``from_trunk``)."""
    model.eval()
    outputs: list[list[np.ndarray]] = []
    with autocast(ctx.device, ctx.amp):
        for batch in iterate_batches(
            cache,
            [],
            np.sort(index),
            params.eval_batch_size,
            ctx.device,
            channels_last=params.channels_last,
            trunk=trunk,
            images=trunk is None,
        ):
            outputs.append([z.float().cpu().numpy() for z in batch_outputs(model, batch).logits])
    if not outputs:
        return []
    rank = np.argsort(np.argsort(index))  # outputs come back in sorted row order; restore the caller's order
    return [np.concatenate([o[m] for o in outputs])[rank] for m in range(len(outputs[0]))]
