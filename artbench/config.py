"""The run configuration: one flat, validated set of hyper-parameters.

It is resolved from layers, later ones winning: built-in defaults (SilkNet §5.1) < the task's ``[defaults]`` <
the method's recipe < ``--config FILE`` < ``--set key=value``. Every value is logged to MLflow as a parameter.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from artbench.errors import ArtbenchError

MAX_IMAGE_SIZE = 2048
"""Largest square input size: the prepared cache holds every image at this size (uint8 RGB)."""


@dataclass(frozen=True)
class RunConfig:
    """Hyper-parameters of one training run (defaults: SilkNet §5.1 and Table 3, row MTL)."""

    # model (SilkNet §3.1)
    backbone: str = "resnet152"
    weights: str = "imagenet"
    finetune_blocks: int = 3
    joint_layers: tuple[int, ...] = (128,)
    target_layers: tuple[int, ...] = ()
    dropout: float = 0.3
    # data
    image_size: int = 224
    augment: bool = True
    batch_size: int = 32
    eval_batch_size: int = 256
    # optimisation (§5.1: Adam, lr 1e-4, early stopping on the validation loss)
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    max_epochs: int = 100
    patience: int = 10
    min_delta: float = 0.0
    # loss (eq. 1-8)
    gamma: float = 0.0
    normalize: str = "all"
    lambda_c: float = 1.0
    lambda_aux: float = 0.0
    alpha_sem: float = 0.0
    alpha_co: float = 0.0
    alpha_slf: float = 0.0
    max_triplets: int = 200_000
    colour_grid: int = 8
    selfsim_noise: float = 0.1
    # execution
    amp: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        checks = {  # key: (valid?, what a valid value is)
            "finetune_blocks": (self.finetune_blocks >= -1, ">= 0, or -1 for all blocks"),
            "dropout": (0.0 <= self.dropout < 1.0, "in [0, 1)"),
            "image_size": (8 <= self.image_size <= MAX_IMAGE_SIZE, f"in [8, {MAX_IMAGE_SIZE}]"),
            "batch_size": (self.batch_size >= 2, ">= 2"),
            "eval_batch_size": (self.eval_batch_size >= 1, ">= 1"),
            "lr": (self.lr > 0, "> 0"),
            "beta1": (0.0 <= self.beta1 < 1.0, "in [0, 1)"),
            "beta2": (0.0 <= self.beta2 < 1.0, "in [0, 1)"),
            "eps": (self.eps > 0, "> 0"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "max_epochs": (self.max_epochs >= 1, ">= 1"),
            "patience": (self.patience >= 1, ">= 1"),
            "min_delta": (self.min_delta >= 0, ">= 0"),
            "gamma": (self.gamma >= 0, ">= 0"),
            "normalize": (self.normalize in ("all", "per_target"), "'all' or 'per_target'"),
            "lambda_c": (self.lambda_c >= 0, ">= 0"),
            "lambda_aux": (self.lambda_aux >= 0, ">= 0"),
            "alpha_sem": (self.alpha_sem >= 0, ">= 0"),
            "alpha_co": (self.alpha_co >= 0, ">= 0"),
            "alpha_slf": (self.alpha_slf >= 0, ">= 0"),
            "selfsim_noise": (self.selfsim_noise >= 0, ">= 0"),
            "colour_grid": (self.colour_grid >= 2, ">= 2"),
            "max_triplets": (self.max_triplets >= 1, ">= 1"),
            "joint_layers": (len(self.joint_layers) >= 1 and all(n > 0 for n in self.joint_layers), "positive sizes"),
            "target_layers": (all(n > 0 for n in self.target_layers), "positive sizes"),
        }
        infinite = next(
            (f.name for f in fields(self) if isinstance(v := getattr(self, f.name), float) and not math.isfinite(v)),
            None,
        )
        if infinite:
            raise ArtbenchError(f"invalid config value {infinite}={getattr(self, infinite)!r}: must be a finite number")
        bad = next((k for k, (ok, _) in checks.items() if not ok), None)
        if bad:
            raise ArtbenchError(f"invalid config value {bad}={getattr(self, bad)!r}: must be {checks[bad][1]}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


_HINTS = typing.get_type_hints(RunConfig)
CONFIG_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RunConfig))


def _coerce(key: str, value: Any, source: str) -> Any:
    hint = _HINTS[key]
    origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if (
            not isinstance(value, Sequence)
            or isinstance(value, str)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise ArtbenchError(f"{source}: {key} must be a list of integers, got {value!r}")
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ArtbenchError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


def validate_overrides(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check keys and types of one config layer; ``source`` names the layer in error messages."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _HINTS:
            raise ArtbenchError(f"{source}: unknown config key {key!r}; valid keys: {', '.join(CONFIG_KEYS)}")
        out[key] = _coerce(key, value, source)
    return out


def parse_set_option(item: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as a TOML literal, else taken as a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ArtbenchError(f"--set {item!r}: expected key=value, e.g. --set lr=3e-4")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse a UTF-8 TOML file; a file that is not UTF-8 or not TOML is a user error naming ``what``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtbenchError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArtbenchError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read the ``[config]`` table of a recipe file (e.g. ``baselines/silknet.toml``)."""
    path = Path(path)
    if not path.is_file():
        raise ArtbenchError(f"config file {str(path)!r} does not exist")
    data = read_toml(path, "config file")
    section = data.get("config", data)
    if not isinstance(section, dict):
        raise ArtbenchError(f"config file {str(path)!r}: [config] must be a table")
    return validate_overrides(section, str(path))


def resolve_config(*layers: Mapping[str, Any]) -> RunConfig:
    """Merge already-validated layers over the defaults."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return dataclasses.replace(RunConfig(), **merged)
