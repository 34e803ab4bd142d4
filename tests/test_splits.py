"""The grouped split protocol of SilkNet §4."""

import numpy as np
import pandas as pd

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
    split = grouped_split(group, labels, (0.6, 0.2, 0.2), seed=0)
    per_group = pd.DataFrame({"g": group, "s": split}).groupby("g")["s"].nunique()
    assert (per_group == 1).all()
    shares = pd.Series(split).value_counts(normalize=True)
    assert abs(shares["train"] - 0.6) < 0.03 and abs(shares["val"] - 0.2) < 0.03


def test_every_class_in_every_split_where_counts_allow() -> None:
    group, labels = _data(seed=3)
    split = grouped_split(group, labels, seed=0)
    for m in range(labels.shape[1]):
        for c in np.unique(labels[:, m][labels[:, m] >= 0]):
            holders = np.unique(group[labels[:, m] == c])
            if len(holders) >= 3:
                assert set(split[labels[:, m] == c]) == {"train", "val", "test"}, (m, c, len(holders))


def test_split_is_deterministic_and_seeded() -> None:
    group, labels = _data()
    a = grouped_split(group, labels, seed=0)
    assert (a == grouped_split(group, labels, seed=0)).all()
    assert (a != grouped_split(group, labels, seed=1)).any()


def test_classes_too_rare_for_every_split_go_to_train_then_test() -> None:
    group, labels = _data(seed=5)
    labels[:, 1] = np.where(labels[:, 1] >= 0, 0, -1)
    labels[group == "g7", 1], labels[group == "g8", 1] = 9, 9  # class 9: two groups
    labels[group == "g9", 1] = 8  # class 8: one group
    for seed in range(5):
        split = grouped_split(group, labels, seed=seed)
        assert set(split[group == "g9"]) == {"train"}
        assert sorted({*split[group == "g7"], *split[group == "g8"]}) == ["test", "train"]
