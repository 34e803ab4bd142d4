"""The grouped split protocol of SilkNet §4."""

import numpy as np
import pandas as pd
import pytest

from artbench.data.splits import grouped_split


def _data(seed: int = 0, groups: int = 600):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, groups)
    group = np.repeat([f"g{i}" for i in range(groups)], sizes)
    n = len(group)
    probs = np.array([0.6, 0.25, 0.1, 0.03, 0.015, 0.005])
    per_group = rng.choice(6, size=(groups, 2), p=probs)
    labels = np.repeat(per_group, sizes, axis=0)
    labels[rng.random((n, 2)) < 0.3] = -1
    return group, labels


def test_groups_stay_together_and_fractions_hold() -> None:
    group, labels = _data()
    split = grouped_split(group, list(labels.T), (0.6, 0.2, 0.2), seed=0)
    per_group = pd.DataFrame({"g": group, "s": split}).groupby("g")["s"].nunique()
    assert (per_group == 1).all()
    shares = pd.Series(split).value_counts(normalize=True)
    assert abs(shares["train"] - 0.6) < 0.03 and abs(shares["val"] - 0.2) < 0.03


def test_every_class_in_every_split_where_counts_allow() -> None:
    group, labels = _data(seed=3)
    split = grouped_split(group, list(labels.T), seed=0)
    for m in range(labels.shape[1]):
        for c in np.unique(labels[:, m][labels[:, m] >= 0]):
            holders = np.unique(group[labels[:, m] == c])
            if len(holders) >= 3:
                assert set(split[labels[:, m] == c]) == {"train", "val", "test"}, (m, c, len(holders))


def test_split_is_deterministic_and_seeded() -> None:
    group, labels = _data()
    a = grouped_split(group, list(labels.T), seed=0)
    assert (a == grouped_split(group, list(labels.T), seed=0)).all()
    assert (a != grouped_split(group, list(labels.T), seed=1)).any()


def test_classes_too_rare_for_every_split_go_to_train_then_test() -> None:
    group, labels = _data(seed=5)
    labels[:, 1] = np.where(labels[:, 1] >= 0, 0, -1)
    labels[group == "g7", 1], labels[group == "g8", 1] = 9, 9  # class 9: two groups
    labels[group == "g9", 1] = 8  # class 8: one group
    for seed in range(5):
        split = grouped_split(group, list(labels.T), seed=seed)
        assert set(split[group == "g9"]) == {"train"}
        assert sorted({*split[group == "g7"], *split[group == "g8"]}) == ["test", "train"]


def test_regression_bins_are_quantiles_with_missing_kept() -> None:
    from artbench.data.splits import regression_bins

    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, 6.0, 7.0, 8.0, 9.0, 10.0])
    codes = regression_bins(values, bins=5)
    assert codes[5] == -1
    assert np.bincount(codes[codes >= 0]).tolist() == [2, 2, 2, 2, 2]


def test_split_task_handles_every_kind_and_keeps_groups_disjoint() -> None:
    """A multilabel target switches to iterative stratification over groups; every label reaches every split."""
    from artbench.core.targets import TargetSpec
    from artbench.data.splits import split_task

    rng = np.random.default_rng(0)
    n = 600
    group = np.array([f"g{i // 2}" for i in range(n)])
    hot = (rng.random((n // 2, 4)) < [0.5, 0.3, 0.1, 0.05]).astype(np.int8).repeat(2, axis=0)
    hot[::7] = -1  # missing rows
    year = rng.normal(1700, 80, n // 2).repeat(2)
    place = rng.integers(0, 3, n // 2).repeat(2)
    targets = [
        TargetSpec("type", "multilabel", ("a", "b", "c", "d")),
        TargetSpec("year", "regression"),
        TargetSpec("place", classes=("x", "y", "z")),
    ]
    split = split_task(group, targets, [hot, year, place], (0.6, 0.2, 0.2), seed=0)
    for g in np.unique(group):
        assert len(set(split[group == g])) == 1
    shares = [(split == s).mean() for s in ("train", "val", "test")]
    assert shares == pytest.approx([0.6, 0.2, 0.2], abs=0.03)
    known = hot[:, 0] >= 0
    for k in range(4):  # iterative stratification keeps each label's share close in every split
        per_split = [hot[known & (split == s), k].mean() for s in ("train", "val", "test")]
        assert max(per_split) - min(per_split) < 0.06
    again = split_task(group, targets, [hot, year, place], (0.6, 0.2, 0.2), seed=0)
    assert (again == split).all()


def test_iterative_split_sizes_never_round_past_the_group_count() -> None:
    from artbench.data.splits import iterative_grouped_split

    split = iterative_grouped_split(np.arange(40).astype(str), [np.arange(40) % 3], (0.7, 0.15, 0.15), 0)
    assert [(split == s).sum() for s in ("train", "val", "test")] == [28, 6, 6]
