"""Tests for the SILKNOW reference statistics and the synthetic ``silknow-synth`` generator (CPU, fast)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

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
from artbench.datasets.silknow_synth import CSV_COLUMNS, generate_silknow_synth

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
# Generator


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
    csv_path = _generate(tmp_path_factory.mktemp("large") / "ds", num_images=3000, image_size=16, seed=0)
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
    render = synth._render

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("simulated crash")
        return render(*args, **kwargs)

    monkeypatch.setattr(synth, "_render", flaky)
    root = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _generate(root, num_images=20, image_size=16)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synth, "_render", render)
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
    assert abs(100.0 * is_foreground.mean() - LABELLED_PERCENT[target]) < 3.0
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
