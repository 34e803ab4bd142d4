"""Target specifications and label encoding.

A target is one predicted variable of a task (``place``, ``time``, ...). Labels are encoded per target as
integers: foreground classes ``0..K-1`` in the order of :attr:`TargetSpec.classes`, the background class (if the
target declares background values) as ``K``, and a missing label as :data:`MISSING` (``-1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from artbench.errors import ArtbenchError

MISSING = -1
BACKGROUND_NAME = "(background)"
TargetKind = Literal["multiclass"]
TARGET_KINDS: tuple[str, ...] = ("multiclass",)


@dataclass(frozen=True)
class TargetSpec:
    """One target of a task.

    Args:
        name: column name in the sample table.
        kind: ``"multiclass"`` (``"multilabel"`` and ``"regression"`` are planned).
        classes: foreground class names in encoding order; empty means "infer from the data".
        background: label values that are known but outside the classes of interest (SilkNet §4). They are
            trained as one extra class and excluded from metric averages and class statistics.
    """

    name: str
    kind: TargetKind = "multiclass"
    classes: tuple[str, ...] = ()
    background: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ArtbenchError(
                f"target {self.name!r}: unknown kind {self.kind!r}; valid kinds: {', '.join(TARGET_KINDS)}"
            )
        overlap = set(self.classes) & set(self.background)
        if overlap:
            raise ArtbenchError(f"target {self.name!r}: {sorted(overlap)} listed both as classes and as background")

    @property
    def has_background(self) -> bool:
        return bool(self.background)

    @property
    def num_classes(self) -> int:
        """Number of foreground classes K."""
        return len(self.classes)

    @property
    def num_outputs(self) -> int:
        """Number of network outputs: K foreground classes plus one background class if declared."""
        return self.num_classes + int(self.has_background)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of all encoded classes, background last."""
        return self.classes + ((BACKGROUND_NAME,) if self.has_background else ())

    def with_classes_from(self, values: pd.Series) -> TargetSpec:
        """Return a copy whose foreground classes are the sorted non-background values seen in ``values``."""
        if self.classes:
            return self
        seen = {str(v) for v in values.dropna().unique()} - set(self.background)
        return TargetSpec(self.name, self.kind, tuple(sorted(seen)), self.background)

    def encode(self, values: pd.Series) -> np.ndarray:
        """Encode raw label values to ints (see module docstring); unknown values raise."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        lookup.update({b: self.num_classes for b in self.background})
        codes = np.full(len(values), MISSING, dtype=np.int64)
        present = values.notna().to_numpy()
        raw = values[present].astype(str)
        unknown = sorted(set(raw) - set(lookup))
        if unknown:
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise ArtbenchError(
                f"target {self.name!r}: values not among its classes or background: {shown}; "
                "declare them in the task's classes/background or drop them"
            )
        codes[present] = raw.map(lookup).to_numpy()
        return codes

    def decode(self, codes: np.ndarray) -> list[str]:
        """Decode ints to class names; missing labels become empty strings."""
        names = self.class_names
        return [names[c] if c != MISSING else "" for c in np.asarray(codes).tolist()]


def encode_targets(table: pd.DataFrame, targets: Sequence[TargetSpec]) -> np.ndarray:
    """Encode all targets of a sample table into an ``[N, M]`` int64 array (``-1`` = missing)."""
    if not targets:
        return np.empty((len(table), 0), dtype=np.int64)
    return np.stack([t.encode(table[t.name]) for t in targets], axis=1)
