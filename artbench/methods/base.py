"""The method contract: a method owns its training (scikit-learn's fit/predict; WILDS' datasets own evaluation).

A *method family* is a :class:`Method` subclass whose dataclass fields are its hyper-parameters (declared with
:func:`artbench.core.params.param`). ``fit`` learns from a :class:`~artbench.data.task_data.TaskData` for one seed
and returns a :class:`Predictor`; the runner asks the predictor for scores on the validation and test rows and
evaluates them. A *method* is a registered name: a family with its defaults, or a recipe of a family with some
parameters fixed (``mtl_fo`` = the SilkNet family with γ = 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from artbench.core.errors import ArtbenchError
from artbench.core.params import check_params, coerce_params, param_fields
from artbench.core.predictions import Predictions
from artbench.core.registry import Registry
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData

EpochLogger = Callable[[int, Mapping[str, float]], None]


@dataclass
class TrainingCost:
    """What fitting one seed cost, filled in by the training loop (and by a method that compiles or runs
    deterministically); the runner adds wall time, device and peak GPU memory and stores it with the seed."""

    epochs: int = 0
    """Epochs trained, summed over the sub-models of a seed (0 for a method without epochs)."""
    images: int = 0
    """Training images processed (every epoch, every sub-model)."""
    seconds: float = 0.0
    """Time in the training loops, including epochs restored from checkpoints (their time before the restart)."""
    resumed_epochs: int = 0
    """Epochs restored from checkpoints instead of trained in this process."""
    resumed_seconds: float = 0.0
    """The part of ``seconds`` spent before the restart (by the process that wrote the checkpoints)."""
    compiled: bool = False
    """Whether the model ran through ``torch.compile``."""
    compile_error: str | None = None
    """Why ``torch.compile`` was asked for but the model ran eagerly (the compiler failed on this device)."""
    deterministic: bool | None = None
    """Whether deterministic algorithms were enforced (None: not set by the method)."""


@dataclass
class RunContext:
    """Run-level settings and services a method may use while fitting one seed."""

    device: torch.device
    amp: bool = True
    """bf16 autocast on CUDA."""
    seed_dir: Path | None = None
    """A folder of the seed's own (written before the seed is complete) for artefacts."""
    log_epoch: EpochLogger | None = None
    """Per-epoch values (losses) for MLflow; the key prefix names a sub-model where a method trains several."""
    description: str = "training"
    """Label of progress bars (``seed 2``)."""
    checkpoint_dir: Path | None = None
    """Where a method with epochs saves a checkpoint after every epoch and resumes from the latest one it finds
    there (an interrupted seed continues where it stopped); None: no checkpoints."""
    cost: TrainingCost = field(default_factory=TrainingCost)
    """Filled in while fitting; see :class:`TrainingCost`."""
    compile: bool = False
    """Compile the torch models (``torch.compile``, in place) before training them."""
    deterministic: bool = False
    """Deterministic CUDA kernels were enforced for the process (:func:`artbench.core.device.configure_determinism`);
    the torch methods avoid the layers that have none."""

    def log(self, epoch: int, values: Mapping[str, float]) -> None:
        if self.log_epoch is not None:
            self.log_epoch(epoch, values)


class Predictor:
    """What ``Method.fit`` returns: it predicts any rows of the task's data. ``info`` is stored in metrics.json."""

    info: dict[str, Any]

    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        raise NotImplementedError


@dataclass
class Method:
    """Base of every method family; subclasses are dataclasses whose fields are the hyper-parameters."""

    supports: ClassVar[frozenset[str]] = frozenset({"multiclass"})
    """Target kinds the family can learn."""

    def __post_init__(self) -> None:
        check_params(self)

    def check(self, task: TaskSpec) -> None:
        """Checks before any data is prepared (unknown backbone, missing weights file, metadata the method needs).
        Default: none."""

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> Predictor:
        raise NotImplementedError


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: a family and the parameter values its recipe fixes."""

    name: str
    family: type[Method]
    description: str
    reference: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def parameter_names(self) -> set[str]:
        return set(param_fields(self.family))

    def coerce(self, values: Mapping[str, Any], source: str) -> dict[str, Any]:
        """One layer of parameter values checked against this method (keys, types)."""
        return coerce_params(self.family, values, source, owner=f"method {self.name!r}")

    def build(self, *layers: Mapping[str, Any]) -> Method:
        """The family with its defaults, then ``layers`` in order (later wins), already coerced."""
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(layer)
        return self.family(**merged)

    def defaults(self) -> Method:
        return self.build(dict(self.fixed))


METHODS: Registry[MethodEntry] = Registry("method", entry_point_group="artbench.methods", builtins="artbench.methods")


def register_method(
    name: str,
    family: type[Method] | None = None,
    *,
    description: str,
    reference: str = "",
    **fixed: Any,
) -> Any:
    """Register ``family`` (or, without it, decorate a family class) under ``name``; ``fixed`` are the recipe's
    parameter values, which a task's ``[defaults]`` cannot change (``--config`` and ``--set`` can)."""

    def wrap(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method) and dataclasses.is_dataclass(cls)):
            raise ArtbenchError(f"method {name!r}: register a dataclass subclass of artbench.methods.Method")
        entry = MethodEntry(name, cls, description, reference, {})
        entry = dataclasses.replace(entry, fixed=entry.coerce(fixed, f"method {name!r}"))
        METHODS.register(name, entry)
        return cls

    return wrap(family) if family is not None else wrap


def all_parameter_names() -> set[str]:
    """Every parameter of every registered method (what a task's ``[defaults]`` may set)."""
    return {p for name in METHODS.names() for p in METHODS.get(name).parameter_names()}
