"""Targets and their kinds, with label encoding.

A target is one predicted variable of a task (``place``, ``type``, ``year``). Its kind fixes the encoding:

* ``multiclass``: int64 ``[N]``; foreground classes ``0..K-1`` in the order of :attr:`TargetSpec.classes`, the
  background class (if the target declares background values) ``K``, a missing label :data:`MISSING` (``-1``).
* ``multilabel``: int8 ``[N, K]`` multi-hot; a row of :data:`MISSING` where the sample has no label at all. Raw
  cells hold the labels joined by :attr:`TargetSpec.separator` (``"wood|paper"``).
* ``regression``: float64 ``[N]``; ``NaN`` where missing. Raw cells are numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError

MISSING = -1
BACKGROUND_NAME = "(background)"
TargetKind = Literal["multiclass", "multilabel", "regression"]
TARGET_KINDS: tuple[str, ...] = ("multiclass", "multilabel", "regression")


@dataclass(frozen=True)
class TargetSpec:
    """One target of a task.

    Args:
        name: column name in the sample table.
        kind: ``multiclass``, ``multilabel`` or ``regression`` (see the module docstring).
        classes: foreground class names in encoding order; empty means "infer from the data" (not for regression).
        background: multiclass only: label values that are known but outside the classes of interest (SilkNet §4).
            They are encoded as one extra class and excluded from metric averages and class statistics.
        separator: multilabel only: the string joining the labels of one raw cell.
    """

    name: str
    kind: TargetKind = "multiclass"
    classes: tuple[str, ...] = ()
    background: tuple[str, ...] = field(default_factory=tuple)
    separator: str = "|"

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ArtbenchError(
                f"target {self.name!r}: unknown kind {self.kind!r}; valid kinds: {', '.join(TARGET_KINDS)}"
            )
        if self.background and self.kind != "multiclass":
            raise ArtbenchError(f"target {self.name!r}: background values apply to multiclass targets only")
        if self.classes and self.kind == "regression":
            raise ArtbenchError(f"target {self.name!r}: a regression target has no classes")
        if not self.separator:
            raise ArtbenchError(f"target {self.name!r}: separator must not be empty")
        overlap = set(self.classes) & set(self.background)
        if overlap:
            raise ArtbenchError(f"target {self.name!r}: {sorted(overlap)} listed both as classes and as background")

    @property
    def has_background(self) -> bool:
        return bool(self.background)

    @property
    def num_classes(self) -> int:
        """Number of foreground classes K (0 for regression)."""
        return len(self.classes)

    @property
    def num_outputs(self) -> int:
        """Network outputs: K (+1 background) for multiclass, K for multilabel, 1 for regression."""
        if self.kind == "regression":
            return 1
        return self.num_classes + int(self.has_background)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of all encoded classes, background last."""
        return self.classes + ((BACKGROUND_NAME,) if self.has_background else ())

    def split_cell(self, value: object) -> list[str]:
        """The labels of one raw multilabel cell (empty parts dropped)."""
        return [part.strip() for part in str(value).split(self.separator) if part.strip()]

    def with_classes_from(self, values: pd.Series) -> TargetSpec:
        """A copy whose foreground classes are the sorted non-background values seen in ``values``."""
        if self.classes or self.kind == "regression":
            return self
        present = values.dropna()
        if self.kind == "multilabel":
            seen = {label for cell in present for label in self.split_cell(cell)}
        else:
            seen = {str(v) for v in present.unique()} - set(self.background)
        return TargetSpec(self.name, self.kind, tuple(sorted(seen)), self.background, self.separator)

    def _unknown(self, values: set[str]) -> None:
        if values:
            shown = ", ".join(sorted(values)[:5]) + (" ..." if len(values) > 5 else "")
            raise ArtbenchError(
                f"target {self.name!r}: values not among its classes or background: {shown}; "
                "declare them in the task's classes/background or drop them"
            )

    def encode(self, values: pd.Series) -> np.ndarray:
        """Encode raw label values (see the module docstring); unknown values raise."""
        present = values.notna().to_numpy()
        if self.kind == "regression":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, copy=True)
            bad = present & np.isnan(numbers)
            if bad.any():
                shown = ", ".join(map(repr, values[bad].astype(str).unique()[:5]))
                raise ArtbenchError(f"regression target {self.name!r}: cells that are not numbers: {shown}")
            if np.isinf(numbers).any():
                raise ArtbenchError(f"regression target {self.name!r}: infinite values; give finite numbers")
            return numbers
        lookup = {c: i for i, c in enumerate(self.classes)}
        if self.kind == "multilabel":
            codes = np.full((len(values), self.num_classes), MISSING, dtype=np.int8)
            rows = [self.split_cell(v) for v in values[present]]
            self._unknown({label for labels in rows for label in labels} - set(lookup))
            hot = np.zeros((len(rows), self.num_classes), dtype=np.int8)
            for r, labels in enumerate(rows):
                hot[r, [lookup[label] for label in labels]] = 1
            codes[present] = hot
            return codes
        lookup.update({b: self.num_classes for b in self.background})
        codes = np.full(len(values), MISSING, dtype=np.int64)
        raw = values[present].astype(str)
        self._unknown(set(raw) - set(lookup))
        codes[present] = raw.map(lookup).to_numpy()
        return codes

    def known(self, codes: np.ndarray) -> np.ndarray:
        """Boolean ``[N]``: samples whose label for this target is known."""
        if self.kind == "regression":
            return ~np.isnan(codes)
        if self.kind == "multilabel":
            return codes[:, 0] != MISSING if codes.shape[1] else np.zeros(len(codes), bool)
        return codes != MISSING

    def decode(self, codes: np.ndarray) -> list[str]:
        """Encoded labels (or predictions) to table cells; a missing label is an empty string."""
        codes = np.asarray(codes)
        if self.kind == "regression":
            return ["" if np.isnan(v) else repr(float(v)) for v in codes.tolist()]
        if self.kind == "multilabel":
            known = self.known(codes)
            return [
                self.separator.join(c for c, on in zip(self.classes, row, strict=True) if on == 1) if k else ""
                for row, k in zip(codes.tolist(), known.tolist(), strict=True)
            ]
        names = self.class_names
        return [names[c] if c != MISSING else "" for c in codes.tolist()]


def encode_targets(table: pd.DataFrame, targets: Sequence[TargetSpec]) -> list[np.ndarray]:
    """Encode every target of a sample table: one array per target, in the order of ``targets``."""
    return [t.encode(table[t.name]) for t in targets]
