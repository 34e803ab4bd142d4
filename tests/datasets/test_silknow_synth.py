"""Tests for the SILKNOW reference statistics and the synthetic ``silknow-synth`` generator (CPU, fast)."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.data.stats import imbalance_ratio, underrepresented_mask
from artbench.datasets import silknow_synth as synth
from artbench.datasets.silknow_reference import (
    BACKGROUND_COUNTS,
    BACKGROUND_LABELS,
    CLASS_COUNTS,
    LABELLED_PERCENT,
    NUM_IMAGES,
    TABLE2,
    TARGETS,
)
from artbench.datasets.silknow_synth import CSV_COLUMNS, class_counts, generate_silknow_synth, sample_records
from artbench.datasets.silknow_synth.generate import write_samples_csv
from artbench.datasets.silknow_synth.labels import MIN_RECORDS_PER_CLASS, UNKNOWN, largest_remainder
from tests.conftest import run_cli

# --------------------------------------------------------------------------------------------------
# Reference constants (SilkNet §4, Tables 1 and 2)


def test_reference_vocabularies() -> None:
    assert set(CLASS_COUNTS) == set(TARGETS) == set(BACKGROUND_COUNTS) == set(BACKGROUND_LABELS)
    assert set(LABELLED_PERCENT) == set(TABLE2) == set(TARGETS)
    assert BACKGROUND_COUNTS == {"place": 604, "material": 0, "time": 104, "technique": 44, "depiction": 56}
    assert "19th c." in CLASS_COUNTS["time"]
    assert {"other techn.", "cannele", "resist dyeing"} <= set(CLASS_COUNTS["technique"])
    assert {"geom. shape", "flower"} <= set(CLASS_COUNTS["depiction"])
    assert list(CLASS_COUNTS["material"]) == ["animal fibre", "metal thread", "vegetal fibre"]
    for target, counts in CLASS_COUNTS.items():
        values = list(counts.values())
        assert values == sorted(values, reverse=True), f"{target}: not ordered by count"
        assert BACKGROUND_LABELS[target] not in counts


@pytest.mark.parametrize("target", TARGETS)
def test_reference_counts_reproduce_section4_percentages(target: str) -> None:
    percent = 100.0 * sum(CLASS_COUNTS[target].values()) / NUM_IMAGES
    assert abs(percent - LABELLED_PERCENT[target]) < 0.1


@pytest.mark.parametrize("target", TARGETS)
def test_reference_counts_reproduce_table2(target: str) -> None:
    counts = np.array(list(CLASS_COUNTS[target].values()), dtype=np.float64)
    k = len(counts)
    freq = counts / counts.sum()
    underrepresented = int((freq < 1.0 / k).sum())
    imbalance = counts.max() / counts.min()
    k_table, m_table, ir_table = TABLE2[target]
    assert k == k_table
    assert underrepresented == m_table
    assert abs(imbalance - ir_table) < 0.1


# --------------------------------------------------------------------------------------------------
# Class counts (exact Table 1 at 48,912 images, largest-remainder rounding elsewhere)

# Computed by hand from Table 1 at 4,000 images (quota = count x 4000 / 48912; UZ 3.43 -> 3, 13th c. 3.52 -> 4):
# IR = top class / rarest class, e.g. place 654 / 3.
IR_AT_4000 = {"place": 218.0, "material": 7.0, "time": 204.0, "technique": 112.2, "depiction": 32.0}


def _foreground(counts: dict[str, int], target: str) -> np.ndarray:
    return np.array([counts[c] for c in CLASS_COUNTS[target]])


def test_largest_remainder() -> None:
    assert largest_remainder([1, 1, 1], 10).tolist() == [4, 3, 3]  # a tie goes to the first
    assert largest_remainder([5, 3, 2], 10).tolist() == [5, 3, 2]
    assert largest_remainder([5, 3, 2], 7).tolist() == [4, 2, 1]  # quotas 3.5, 2.1, 1.4
    assert largest_remainder([7, 0], 3).tolist() == [3, 0]


def test_full_size_counts_are_table1_exactly() -> None:
    counts = class_counts(NUM_IMAGES)
    for target in TARGETS:
        expected = {**CLASS_COUNTS[target], BACKGROUND_LABELS[target]: BACKGROUND_COUNTS[target]}
        unknown = NUM_IMAGES - sum(expected.values())
        assert counts[target] == {**expected, UNKNOWN: unknown}


@pytest.mark.parametrize("target", TARGETS)
def test_counts_at_4000_reproduce_table2_but_ir(target: str) -> None:
    counts = class_counts(4000)[target]
    assert sum(counts.values()) == 4000
    fg = _foreground(counts, target)
    k, under, _ = TABLE2[target]
    assert len(fg) == k and fg.min() >= MIN_RECORDS_PER_CLASS
    assert int(underrepresented_mask(fg).sum()) == under
    assert round(imbalance_ratio(fg), 1) == IR_AT_4000[target]
    assert abs(100 * fg.sum() / 4000 - LABELLED_PERCENT[target]) < 0.1
    quotas = np.array([*CLASS_COUNTS[target].values()]) * 4000 / NUM_IMAGES
    assert np.abs(fg - quotas).max() < 1.0  # plain rounding: the minimum of 3 does not bind at this size
    assert abs(counts[BACKGROUND_LABELS[target]] - BACKGROUND_COUNTS[target] * 4000 / NUM_IMAGES) < 1.0


def test_small_sizes_inflate_rare_classes_or_leave_them_out() -> None:
    counts = class_counts(400)
    # 29 known depiction labels (3,497 x 400 / 48,912 = 28.6) for 9 labels of 3 images at least: flower 19.2 -> 5
    assert _foreground(counts["depiction"], "depiction").tolist() == [5, 3, 3, 3, 3, 3, 3, 3]
    assert counts["place"]["UZ"] == 3 and counts["technique"]["bg technique"] == 3
    for n in (4, 10, 40, 100, 400, 2995, 2996):
        for target, by_label in class_counts(n).items():
            assert sum(by_label.values()) == n
            present = [v for label, v in by_label.items() if label != UNKNOWN and v > 0]
            assert min(present, default=MIN_RECORDS_PER_CLASS) >= MIN_RECORDS_PER_CLASS, (n, target)
    at_ten = class_counts(10)
    assert {label: n for label, n in at_ten["place"].items() if n} == {"GB": 4, "FR": 3, UNKNOWN: 3}
    assert set(at_ten["depiction"].values()) == {0, 10}


def _minimum_binds(num_images: int) -> bool:
    """Whether some label's count differs from the plain largest-remainder share of its target's known images."""
    for target, counts in class_counts(num_images).items():
        labelled = [n for label, n in counts.items() if label != UNKNOWN]
        weights = [*CLASS_COUNTS[target].values(), BACKGROUND_COUNTS[target]]
        if largest_remainder(weights, sum(labelled)).tolist() != labelled:
            return True
    return False


def test_the_minimum_binds_below_2996_images_only() -> None:  # as the labels module says
    assert _minimum_binds(400) and _minimum_binds(2995)
    assert not any(_minimum_binds(n) for n in (2996, 3000, 4000, 10_000, NUM_IMAGES))


# --------------------------------------------------------------------------------------------------
# Records: labels dealt exactly (no rendering)


def _check_records(num_images: int, seed: int = 0) -> pd.DataFrame:
    records = sample_records(num_images, np.random.default_rng([seed, 0]))
    sizes = records.sizes
    assert sizes.sum() == num_images and sizes.min() >= 1 and sizes.max() <= 3
    labels = pd.DataFrame(records.labels()).assign(size=sizes)
    for target, expected in class_counts(num_images).items():
        images = labels.groupby(target)["size"].sum()
        assert images.to_dict() == {label: n for label, n in expected.items() if n}, (num_images, target)
        per_label = labels[labels[target] != UNKNOWN].groupby(target).size()
        assert (per_label >= MIN_RECORDS_PER_CLASS).all(), (num_images, target)
    foreground = pd.DataFrame({t: labels[t].isin(list(CLASS_COUNTS[t])) for t in TARGETS})
    assert foreground.any(axis=1).all(), "every record needs a known foreground label"
    return labels


def test_records_carry_the_exact_counts() -> None:
    for n in (*range(4, 41, 3), 397, 4000):
        _check_records(n, seed=n % 3)
    labels = _check_records(4000)
    assert np.bincount(labels["size"]).tolist()[1:] == pytest.approx([667, 667, 667], abs=60)  # 1-3 uniformly
    with pytest.raises(ValueError, match="too few"):
        sample_records(3, np.random.default_rng(0))


def test_time_follows_place_for_some_records() -> None:
    labels = _check_records(4000)
    known = labels[labels.place.isin(list(CLASS_COUNTS["place"])) & labels.time.isin(list(CLASS_COUNTS["time"]))]
    place_rank = known.place.map({c: i for i, c in enumerate(CLASS_COUNTS["place"])})
    time_rank = known.time.map({c: i for i, c in enumerate(CLASS_COUNTS["time"])})
    assert 0.1 < place_rank.corr(time_rank, method="spearman") < 0.6


@pytest.fixture(scope="module")
def unrendered_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("unrendered")


@pytest.fixture
def labels_only(monkeypatch: pytest.MonkeyPatch, unrendered_home: Path) -> Path:
    """A private data home where silknow-synth writes its CSV but renders no image (label sampling at full size)."""
    monkeypatch.setenv("ARTBENCH_DATA", str(unrendered_home))
    monkeypatch.setattr(synth.generate, "write_images", lambda *args, **kwargs: None)
    return unrendered_home


def test_full_size_task_reproduces_table2_exactly(labels_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "datasets", "stats", "silknow-synth-full", "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert stats["num_samples"] == NUM_IMAGES
    for target, (k, under, ir) in TABLE2.items():
        s = stats["targets"][target]
        assert s["class_counts"] == CLASS_COUNTS[target]
        assert (s["num_classes"], s["num_underrepresented"], round(s["imbalance_ratio"], 1)) == (k, under, ir)
        assert round(100 * s["labelled_fraction"], 1) == LABELLED_PERCENT[target]
        assert s["background"] == BACKGROUND_COUNTS[target]
    assert (labels_only / "silknow-synth" / f"n{NUM_IMAGES}-px64-seed0-v{synth.GENERATOR_VERSION}").is_dir()


@pytest.mark.parametrize("task", ["silknow-synth", "silknow-synth-full"])
def test_grouped_split_holds_every_class_everywhere(task: str, labels_only: Path) -> None:
    from artbench.data.task_data import prepare_task
    from artbench.tasks import load_task

    data = prepare_task(load_task(task))
    for spec, codes in zip(data.targets, data.labels, strict=True):
        classes = set(range(spec.num_classes + len(spec.background)))
        for split in ("train", "val", "test"):
            assert set(codes[data.split == split].tolist()) - {-1} == classes, (task, spec.name, split)
    test_uz = int(((data.split == "test") & (data.dataset.table.place == "UZ")).sum())
    assert test_uz >= 1 if task == "silknow-synth" else 5 <= test_uz <= 12


# --------------------------------------------------------------------------------------------------
# Generator (rendered at small sizes only)


def _generate(root: Path, **kwargs) -> Path:
    kwargs.setdefault("progress", False)
    return generate_silknow_synth(root, **kwargs)


def _pixels(csv_path: Path, rows: list[int]) -> list[np.ndarray]:
    table = pd.read_csv(csv_path)
    return [np.asarray(Image.open(csv_path.parent / table.image[i])) for i in rows]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("small") / "ds", num_images=300, image_size=32, seed=0)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The samples.csv of 3,000 images (the CSV writer without rendering)."""
    csv_path = tmp_path_factory.mktemp("large") / "samples.csv"
    write_samples_csv(csv_path, sample_records(3000, np.random.default_rng([0, 0])))
    return pd.read_csv(csv_path, keep_default_na=False)


def test_layout_and_images(small: Path) -> None:
    assert small.name == "samples.csv"
    table = pd.read_csv(small)
    assert tuple(table.columns) == CSV_COLUMNS == ("image", "group", *TARGETS)
    assert len(table) == 300
    assert table.image.is_unique
    assert table.image.str.fullmatch(r"images/\d{6}\.png").all()
    assert table.group.str.fullmatch(r"rec-\d{5}").all()
    for rel in table.image[:5]:
        with Image.open(small.parent / rel) as im:
            assert im.mode == "RGB" and im.size == (32, 32)
    assert len(list((small.parent / "images").iterdir())) == 300
    assert (small.parent / synth.MARKER_NAME).is_file()


def test_deterministic(small: Path, tmp_path: Path) -> None:
    again = _generate(tmp_path / "again", num_images=300, image_size=32, seed=0)
    assert again.read_bytes() == small.read_bytes()
    rows = [0, 17, 123, 299]
    for a, b in zip(_pixels(small, rows), _pixels(again, rows), strict=True):
        np.testing.assert_array_equal(a, b)

    other = _generate(tmp_path / "other", num_images=300, image_size=32, seed=1)
    assert other.read_bytes() != small.read_bytes()
    for a, b in zip(_pixels(small, rows), _pixels(other, rows), strict=True):
        assert not np.array_equal(a, b)


def test_idempotent_and_parameter_mismatch(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    first = _generate(root, num_images=40, image_size=16, seed=3, progress=True)
    stamp = first.stat().st_mtime_ns
    start = time.perf_counter()
    second = _generate(root, num_images=40, image_size=16, seed=3)
    assert time.perf_counter() - start < 0.5
    assert second == first and first.stat().st_mtime_ns == stamp

    with pytest.raises(ValueError, match="another folder"):
        _generate(root, num_images=40, image_size=16, seed=4)
    with pytest.raises(ValueError, match="another folder"):
        _generate(root, num_images=41, image_size=16, seed=3)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a dataset")
    with pytest.raises(ValueError, match="another folder"):
        _generate(foreign, num_images=10, image_size=16)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _generate(empty, num_images=10, image_size=16).is_file()


def test_crash_leaves_no_partial_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    render = synth.generate.render_view

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("simulated crash")
        return render(*args, **kwargs)

    monkeypatch.setattr(synth.generate, "render_view", flaky)
    root = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _generate(root, num_images=20, image_size=16)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synth.generate, "render_view", render)
    assert _generate(root, num_images=20, image_size=16).is_file()


def test_records_and_labels(large: pd.DataFrame) -> None:
    sizes = large.groupby("group", sort=False).size()
    assert sizes.between(1, 3).all()
    assert set(sizes.iloc[:-1]) == {1, 2, 3}
    # images of a record are contiguous and share all labels
    assert (large.group != large.group.shift()).sum() == large.group.nunique()
    assert (large.groupby("group")[list(TARGETS)].nunique() == 1).all().all()

    labels = large[list(TARGETS)]
    assert (labels != "").any(axis=1).all(), "every image needs at least one known label"
    foreground = pd.DataFrame({t: large[t].isin(list(CLASS_COUNTS[t])) for t in TARGETS})
    assert foreground.any(axis=1).all(), "every image needs at least one known foreground label"
    assert (labels == "").any(axis=1).mean() > 0.95  # §4: 99.8 % miss at least one label
    for target in TARGETS:
        values = set(large[target]) - {""}
        assert values <= set(CLASS_COUNTS[target]) | {BACKGROUND_LABELS[target]}, target
    assert "bg material" not in set(large.material)
    assert (large.place == "bg place").any()


@pytest.mark.parametrize("target", TARGETS)
def test_label_availability_and_top_class(large: pd.DataFrame, target: str) -> None:
    is_foreground = large[target].isin(list(CLASS_COUNTS[target]))
    assert abs(100.0 * is_foreground.mean() - LABELLED_PERCENT[target]) < 0.1  # exact up to rounding
    top = large.loc[is_foreground, target].value_counts().index[0]
    assert top == next(iter(CLASS_COUNTS[target]))


def _features(images: np.ndarray) -> np.ndarray:
    """Downsampled pixels, saturation-weighted hue histogram, saturation/value histograms, gradient energy."""
    n, size = len(images), images.shape[1]
    x = images.astype(np.float32) / 255.0
    cell = size // 8
    small = x.reshape(n, 8, cell, 8, cell, 3).mean(axis=(2, 4)).reshape(n, -1)
    hsv = np.stack([np.asarray(Image.fromarray(im).convert("HSV")) for im in images]).astype(np.float32) / 255.0
    hue, sat, val = (hsv[..., i].reshape(n, -1) for i in range(3))
    hue_hist = np.stack([np.histogram(h, 24, (0, 1), weights=s)[0] for h, s in zip(hue, sat, strict=True)])
    sat_hist = np.stack([np.histogram(s, 8, (0, 1))[0] for s in sat])
    val_hist = np.stack([np.histogram(v, 8, (0, 1))[0] for v in val])
    grad = np.stack([np.abs(np.diff(x, axis=1)).mean(axis=(1, 2, 3)), np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))])
    hists = np.concatenate([hue_hist, sat_hist, val_hist], axis=1) / hue.shape[1]
    return np.concatenate([small, hists, grad.T, x.std(axis=(1, 2))], axis=1)


def test_learnable_but_not_trivial(tmp_path: Path) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    csv_path = _generate(tmp_path / "ds", num_images=2000, image_size=32, seed=0)
    table = pd.read_csv(csv_path, keep_default_na=False)
    images = np.stack([np.asarray(Image.open(csv_path.parent / p)) for p in table.image])
    features = _features(images)
    records = table.group.unique()
    train_records = set(np.random.default_rng(0).permutation(records)[: len(records) // 2])
    train = table.group.isin(train_records).to_numpy()  # split by record: no view of a test object in training

    for target, min_gain in (("material", 0.04), ("place", 0.25)):
        labels = table[target].to_numpy()
        known = labels != ""
        tr, te = train & known, ~train & known
        scaler = StandardScaler().fit(features[tr])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(max_iter=300, C=0.5).fit(scaler.transform(features[tr]), labels[tr])
        predicted = model.predict(scaler.transform(features[te]))
        majority = pd.Series(labels[tr]).value_counts().index[0]
        accuracy = float((predicted == labels[te]).mean())
        baseline = float((labels[te] == majority).mean())
        macro_f1 = f1_score(labels[te], predicted, average="macro")
        assert accuracy > baseline + min_gain, (target, accuracy, baseline)
        assert macro_f1 < 0.95 and accuracy < 0.98, (target, accuracy, macro_f1)
