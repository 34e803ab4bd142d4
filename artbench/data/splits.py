"""Split protocols. ``grouped``: all images of a group in one split, every class of every target in every split
where its number of groups allows (SilkNet §4), sizes close to the requested fractions, fixed seed. Tasks with a
multilabel target are split by iterative stratification (Sechidis et al. 2011; Szymański & Kajdanowicz 2017) over
groups. Regression targets take part through quantile bins."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from artbench.core.dataset import SPLITS
from artbench.core.errors import ArtbenchError
from artbench.core.targets import MISSING, TargetSpec

REGRESSION_BINS = 5
"""Quantile bins a regression target is stratified by."""


def regression_bins(values: np.ndarray, bins: int = REGRESSION_BINS) -> np.ndarray:
    """Codes ``0..bins-1`` of the quantile bin of each known value; ``-1`` where missing."""
    codes = np.full(len(values), MISSING, dtype=np.int64)
    known = ~np.isnan(values)
    if known.any():
        edges = np.unique(np.quantile(values[known], np.linspace(0, 1, bins + 1)[1:-1]))
        codes[known] = np.searchsorted(edges, values[known], side="right")
    return codes


def stratification_columns(targets: Sequence[TargetSpec], labels: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One ``[N]`` int column per (multiclass or regression) target, one per class of a multilabel target."""
    columns: list[np.ndarray] = []
    for spec, codes in zip(targets, labels, strict=True):
        if spec.kind == "regression":
            columns.append(regression_bins(codes))
        elif spec.kind == "multilabel":
            known = spec.known(codes)
            columns.extend(np.where(known & (codes[:, k] == 1), 0, MISSING) for k in range(codes.shape[1]))
        else:
            columns.append(codes)
    return columns


def split_task(
    groups: Sequence[str] | np.ndarray,
    targets: Sequence[TargetSpec],
    labels: Sequence[np.ndarray],
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> np.ndarray:
    """The ``grouped`` protocol for targets of any kind (see the module docstring)."""
    columns = stratification_columns(targets, labels)
    if any(t.kind == "multilabel" for t in targets):
        return iterative_grouped_split(groups, columns, fractions, seed)
    return grouped_split(groups, columns, fractions, seed)


def _group_index(groups: Sequence[str] | np.ndarray) -> tuple[int, np.ndarray]:
    codes, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return len(codes), index


def grouped_split(
    groups: Sequence[str] | np.ndarray,
    columns: Sequence[np.ndarray],
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> np.ndarray:
    """Assign each sample to ``train``/``val``/``test``.

    Args:
        groups: group id per sample ``[N]``.
        columns: class codes ``[N]`` per stratification column (``-1`` missing); background codes count as classes.
        fractions: target share of samples per split.
        seed: split seed, independent of training seeds.

    Phase 1 visits (column, class) pairs from the rarest to the most frequent (by number of groups) and, for each
    split still lacking that class, moves in one unassigned group holding it. A class held by fewer groups than
    there are splits cannot be everywhere: its groups go to train first, then test, so that it is learnt before
    it is evaluated and never sits in validation alone. Phase 2 deals the remaining groups in random order to the
    split furthest below its target size.
    """
    rng = np.random.default_rng(seed)
    num_groups, group_index = _group_index(groups)
    n_splits = len(fractions)
    sizes = np.bincount(group_index, minlength=num_groups)
    assignment = np.full(num_groups, -1)
    members: dict[tuple[int, int], np.ndarray] = {}
    for m, codes in enumerate(columns):
        known = codes != MISSING
        pairs = pd.DataFrame({"g": group_index[known], "c": codes[known]}).drop_duplicates()
        for c, frame in pairs.groupby("c"):
            members[(m, int(c))] = frame["g"].to_numpy()
    order = sorted(members, key=lambda key: (len(members[key]), rng.random()))
    rare_order = [0, n_splits - 1, *range(1, n_splits - 1)]  # train, test, then validation
    for key in order:
        holders = members[key]
        present = set(assignment[holders][assignment[holders] >= 0].tolist())
        free = rng.permutation(holders[assignment[holders] < 0])
        for split in rare_order[: len(holders)] if len(holders) < n_splits else range(n_splits):
            if split in present:
                continue
            if len(free) == 0:
                break
            assignment[free[0]] = split
            free = free[1:]
    target = np.asarray(fractions) * sizes.sum()
    filled = np.array([sizes[assignment == s].sum() for s in range(n_splits)], dtype=float)
    for g in rng.permutation(np.flatnonzero(assignment < 0)):
        split = int(np.argmax((target - filled) / target))
        assignment[g] = split
        filled[split] += sizes[g]
    return np.asarray(SPLITS)[assignment[group_index]]


def iterative_grouped_split(
    groups: Sequence[str] | np.ndarray,
    columns: Sequence[np.ndarray],
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> np.ndarray:
    """Iterative stratification over groups: a group carries the union of its samples' classes.

    Uses ``iterstrat``'s ``MultilabelStratifiedShuffleSplit`` twice (train against the rest, then validation
    against test within the rest) on the group × (column, class) indicator matrix.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    num_groups, group_index = _group_index(groups)
    indicators = []
    for codes in columns:
        known = codes != MISSING
        for c in np.unique(codes[known]):
            holders = np.zeros(num_groups, dtype=np.int8)
            holders[group_index[known & (codes == c)]] = 1
            indicators.append(holders)
    y = np.stack(indicators, axis=1) if indicators else np.zeros((num_groups, 1), np.int8)
    train_share, val_share, _ = fractions
    assignment = np.full(num_groups, 2)
    # whole counts: fractional sizes can round past the number of groups inside scikit-learn
    n_train = min(max(round(train_share * num_groups), 1), num_groups - 1)
    first = MultilabelStratifiedShuffleSplit(
        n_splits=1, train_size=n_train, test_size=num_groups - n_train, random_state=seed
    )
    train, rest = next(first.split(np.zeros(num_groups), y))
    assignment[train] = 0
    n_val = min(round(val_share * num_groups), len(rest) - 1)
    if n_val >= 1:
        second = MultilabelStratifiedShuffleSplit(
            n_splits=1, train_size=n_val, test_size=len(rest) - n_val, random_state=seed
        )
        val, _ = next(second.split(np.zeros(len(rest)), y[rest]))
        assignment[rest[val]] = 1
    return np.asarray(SPLITS)[assignment[group_index]]


def official_split(table: pd.DataFrame) -> np.ndarray:
    """The dataset's own ``split`` column, checked for completeness and group consistency."""
    if "split" not in table.columns or table["split"].isna().any():
        raise ArtbenchError("split protocol 'official' needs a complete 'split' column in the dataset")
    per_group = table.groupby("group")["split"].nunique()
    if (per_group > 1).any():
        raise ArtbenchError(f"official split puts group {per_group.idxmax()!r} in several splits")
    return table["split"].astype(str).to_numpy()
