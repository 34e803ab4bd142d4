"""Named training recipes. A method fixes the training strategy and its recipe of config values; users
register their own with :func:`register_method` (from a ``--plugin`` module or an ``artbench.methods`` entry
point)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from artbench.config import RunConfig, validate_overrides
from artbench.errors import ArtbenchError
from artbench.methods.objective import Objective, SilkNetObjective
from artbench.registry import Registry

Strategy = Literal["multitask", "single_task"]
STRATEGIES: tuple[str, ...] = ("multitask", "single_task")


@dataclass(frozen=True)
class MethodSpec:
    """A named training recipe.

    Args:
        name: registry name used on the command line.
        description: one line shown by ``artbench methods list``.
        strategy: ``multitask`` trains one network on all targets with incomplete samples; ``single_task`` trains
            one network per target on that target's labelled samples.
        config: the recipe's config values (validated keys of :class:`~artbench.config.RunConfig`).
        objective: builds the training loss from the resolved config.
        reference: where the method is defined (paper, equation, table).
    """

    name: str
    description: str
    strategy: Strategy = "multitask"
    config: Mapping[str, Any] = field(default_factory=dict)
    objective: Callable[[RunConfig], Objective] = SilkNetObjective
    reference: str = ""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ArtbenchError(f"method {self.name!r}: unknown strategy {self.strategy!r}; valid: {STRATEGIES}")
        object.__setattr__(self, "config", validate_overrides(self.config, f"method {self.name!r}"))


METHODS: Registry[MethodSpec] = Registry("method", entry_point_group="artbench.methods")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Register a method under ``spec.name``."""
    return METHODS.register(spec.name, spec)
