"""Split protocols. ``grouped``: all images of a group in one split, every class of every target in every
split where its number of groups allows (SilkNet §4), sizes close to the requested fractions, fixed seed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from artbench.data.dataset import SPLITS
from artbench.data.targets import MISSING
from artbench.errors import ArtbenchError


def grouped_split(
    groups: Sequence[str] | np.ndarray,
    labels: np.ndarray,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> np.ndarray:
    """Assign each sample to ``train``/``val``/``test``.

    Args:
        groups: group id per sample ``[N]``.
        labels: encoded labels ``[N, M]`` (``-1`` missing); background codes count as classes here.
        fractions: target share of samples per split.
        seed: split seed, independent of training seeds.

    Phase 1 visits (target, class) pairs from the rarest to the most frequent (by number of groups) and, for each
    split still lacking that class, moves in one unassigned group holding it. A class held by fewer groups than
    there are splits cannot be everywhere: its groups go to train first, then test, so that it is learnt before
    it is evaluated and never sits in validation alone. Phase 2 deals the remaining groups in random order to the
    split furthest below its target size.
    """
    rng = np.random.default_rng(seed)
    group_codes, group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    num_groups, n_splits = len(group_codes), len(fractions)
    sizes = np.bincount(group_index, minlength=num_groups)
    assignment = np.full(num_groups, -1)
    members: dict[tuple[int, int], np.ndarray] = {}
    for m in range(labels.shape[1]):
        known = labels[:, m] != MISSING
        pairs = pd.DataFrame({"g": group_index[known], "c": labels[known, m]}).drop_duplicates()
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


def official_split(table: pd.DataFrame) -> np.ndarray:
    """The dataset's own ``split`` column, checked for completeness and group consistency."""
    if "split" not in table.columns or table["split"].isna().any():
        raise ArtbenchError("split protocol 'official' needs a complete 'split' column in the dataset")
    per_group = table.groupby("group")["split"].nunique()
    if (per_group > 1).any():
        raise ArtbenchError(f"official split puts group {per_group.idxmax()!r} in several splits")
    return table["split"].astype(str).to_numpy()
