"""sift_bow_svm (iMet report, seeds/002 §2.1): SIFT bag of visual words + RBF SVM one-vs-rest per target.

Runs through ``artbench run`` on the tiny silknow-synth task (two seeds), on a multilabel collection whose motifs
SIFT can see, and on the fake iMet 2019 folder (the task the report's data comes from); the descriptor/vocabulary
cache; the per-class multilabel thresholds; bad parameters; and the BoW path on the real Rijks'14 JPEGs.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.core.dataset import DATASETS
from artbench.core.params import load_config_file
from artbench.core.task import parse_task
from artbench.data.cache import prepare_cache
from artbench.methods import METHODS
from artbench.methods.classical import features
from artbench.methods.classical.features import sift_descriptors, visual_vocabulary
from artbench.methods.classical.sift_bow_svm import best_threshold
from artbench.results.baselines import load_baseline
from artbench.runner import resolve_method
from tests.conftest import SHARED, run_cli
from tests.data.imet.make import make as make_imet

RIJKS_JPEGS = SHARED / "samples" / "rijks14" / "jpg2"
MOTIFS = ("checks", "dots", "bars")
MOTIF_TASK = """
name = "motifs"
dataset = "csv"
metrics = ["map_macro", "f1_samples", "f2_samples"]
[dataset_options]
path = "collection.csv"
group_col = "object"
[[targets]]
name = "motifs"
kind = "multilabel"
[defaults]
image_size = 64
"""


def _seed_metrics(out: Path, task: str, method: str, seed: int = 1) -> dict:
    run = next((out / task / method).iterdir())
    return json.loads((run / f"seed-{seed}" / "metrics.json").read_text())


def _quick(*values: str) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


@pytest.fixture(scope="module")
def motif_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 grey 64-px images, each with a random subset of three motifs SIFT responds to: a checkerboard patch
    (corners), dark dots (blobs) and a group of bars (edges and line ends); a tenth of the labels missing."""
    root = tmp_path_factory.mktemp("motifs")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for obj in range(120):
        present = [m for m in MOTIFS if rng.random() < 0.5]
        image = np.full((64, 64), 128.0) + rng.normal(0, 4, (64, 64))
        if "checks" in present:
            y, x = rng.integers(4, 28, 2)
            yy, xx = np.mgrid[0:24, 0:24]
            image[y : y + 24, x : x + 24] = np.where((yy // 6 + xx // 6) % 2, 230, 30)
        if "dots" in present:
            for cy, cx in rng.integers(6, 58, (5, 2)):
                yy, xx = np.ogrid[:64, :64]
                image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = 10
        if "bars" in present:
            x = int(rng.integers(4, 40))
            for k in range(3):
                image[8:56, x + 7 * k : x + 7 * k + 3] = 250
        name = f"img/{obj}.png"
        Image.fromarray(np.repeat(image.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)).save(root / name)
        rows.append({"image": name, "object": f"o{obj}", "motifs": "|".join(present) if obj % 10 else ""})
    pd.DataFrame(rows).to_csv(root / "collection.csv", index=False)
    (root / "motifs.toml").write_text(MOTIF_TASK)
    return root


def test_tiny_synth_two_seeds_learn_the_weave_and_reuse_the_descriptors(tiny_task, tmp_path, capsys) -> None:
    code, out, err = run_cli(
        capsys, "run", str(tiny_task), "sift_bow_svm", "--seeds", "2", "--tracking-uri", "none",
        "--out", str(tmp_path), *_quick("vocabulary_size=48", "image_size=64"),
    )  # fmt: skip
    assert code == 0, err
    assert "technique" in out
    first, second = (_seed_metrics(tmp_path, "tiny-synth", "sift_bow_svm", s) for s in (1, 2))
    # seed 2 reads seed 1's descriptors (same dataset and size) and fits its own vocabulary (its own seed)
    assert second["cache"] == {"descriptors": "loaded", "vocabulary": "computed"}
    assert first["descriptors"] == second["descriptors"]
    assert first["descriptors"]["per_image_mean"] > 20  # 32-px renders shown at 64 px still have texture keypoints
    for name, chosen in first["svm"].items():
        assert chosen["C"] in (0.1, 1.0, 10.0) and chosen["gamma"] in ("scale", "auto"), name
        assert len(chosen["grid"]) == 6 and chosen["selected_by"] == "f1_macro"
        # the kept grid point is the best on validation (ties to the earlier one)
        best = max(v for v in chosen["grid"].values() if v is not None)
        assert chosen["validation_score"] == pytest.approx(best, abs=1e-6)
    # time (weave frequency/orientation) and technique (pattern structure) are textures: pooled over both targets,
    # seed 1 beats always predicting the majority class of the test split
    predictions = pd.read_csv(next(tmp_path.rglob("seed-1/predictions.csv")), dtype=str, keep_default_na=False)
    hits = majority = total = 0
    for target in ("time", "technique"):
        known = predictions[f"{target}.true"] != ""
        truth, predicted = predictions.loc[known, f"{target}.true"], predictions.loc[known, f"{target}.pred"]
        hits, majority, total = (
            hits + (truth == predicted).sum(),
            majority + truth.value_counts().iloc[0],
            total + len(truth),
        )
    assert hits / total > majority / total + 0.05, (hits, majority, total)


def test_multilabel_motifs_are_recognised_with_per_class_thresholds(motif_collection, tmp_path, capsys) -> None:
    task = motif_collection / "motifs.toml"
    code, _, err = run_cli(
        capsys, "run", str(task), "sift_bow_svm", "--tracking-uri", "none", "--out", str(tmp_path),
        *_quick("vocabulary_size=32", "threshold_beta=2.0"),
    )  # fmt: skip
    assert code == 0, err
    metrics = _seed_metrics(tmp_path, "motifs", "sift_bow_svm")
    chosen = metrics["svm"]["motifs"]
    assert chosen["selected_by"] == "map_macro" and chosen["svms_trained"] == 3
    assert len(chosen["thresholds"]) == len(MOTIFS)
    result = metrics["targets"]["motifs"]
    assert result["map_macro"] > 0.8  # each motif is present in about half of the images: chance AP is ~0.5
    assert result["f2_samples"] > 0.7
    # scores are calibrated so that 0.5 is each class's own threshold: the runner's global choice stays near 0.5
    assert all(abs(t - 0.5) <= 0.15 for t in result["thresholds"].values()), result["thresholds"]
    scores = np.load(next(tmp_path.rglob("seed-1/scores.npz")))["motifs"]
    assert scores.shape[1] == 3 and ((scores > 0) & (scores < 1)).all()


def test_runs_on_the_fake_imet2019_folder_with_a_corrupt_and_a_missing_image(tmp_path, monkeypatch, capsys) -> None:
    make_imet(tmp_path / "home" / "imet2019", 2019, num_images=60)  # one image corrupt, one missing
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "home"))
    code, _, err = run_cli(
        capsys, "run", "imet2019", "sift_bow_svm", "--seeds", "2", "--tracking-uri", "none",
        "--out", str(tmp_path / "out"), *_quick("vocabulary_size=16", "image_size=48"),
    )  # fmt: skip
    assert code == 0, err
    metrics = _seed_metrics(tmp_path / "out", "imet2019", "sift_bow_svm", 2)
    assert set(metrics["targets"]["attributes"]) >= {"f2_samples", "map_macro", "thresholds"}
    assert len(metrics["svm"]["attributes"]["thresholds"]) == 7  # the fake's seven 2019 attributes
    assert metrics["descriptors"]["images_skipped"] == 2  # blank in the image cache: neither trained nor validated
    # the caches live in the data home, keyed by dataset and size
    assert list((tmp_path / "home" / "features" / "sift" / "imet2019").glob("*/vocabulary-16-seed2-*/histograms.npy"))


def test_second_fit_reads_descriptors_and_vocabulary_from_the_cache(motif_collection, monkeypatch) -> None:
    dataset = DATASETS.get("csv").build(path=str(motif_collection / "collection.csv"), group_col="object")
    images = prepare_cache(dataset, 40).images
    first = sift_descriptors(dataset, images, 40)
    vocabulary = visual_vocabulary(first, np.arange(0, 120, 2), 12, 500, seed=3)
    assert not first.loaded and not vocabulary.loaded
    assert (first.folder / "key.json").is_file() and not list(first.folder.parent.glob("*.tmp"))
    monkeypatch.setattr(features, "extract_sift", lambda *a, **k: pytest.fail("descriptors were recomputed"))
    monkeypatch.setattr(features, "MiniBatchKMeans", lambda *a, **k: pytest.fail("the vocabulary was refitted"))
    again = sift_descriptors(dataset, images, 40)
    cached = visual_vocabulary(again, np.arange(0, 120, 2), 12, 500, seed=3)
    assert again.loaded and cached.loaded
    assert np.array_equal(again.values, first.values) and np.array_equal(cached.histograms, vocabulary.histograms)
    # a folder whose sidecar says otherwise (other settings) or whose file was truncated is rebuilt, not used
    monkeypatch.undo()
    sidecar = json.loads((first.folder / "key.json").read_text())
    sidecar["key"]["opencv"] = "0.0"
    (first.folder / "key.json").write_text(json.dumps(sidecar))
    rebuilt = sift_descriptors(dataset, images, 40)
    assert not rebuilt.loaded and np.array_equal(rebuilt.values, first.values)
    with open(first.folder / "descriptors.u8", "r+b") as f:
        f.truncate(128 * 10)
    assert not sift_descriptors(dataset, images, 40).loaded
    assert (first.folder / "descriptors.u8").stat().st_size == first.values.nbytes


def test_per_class_threshold_maximises_f_beta_on_validation() -> None:
    positive = np.array([True, False, False, True])
    decision = np.array([4.0, 3.0, 2.0, 1.0])
    # F1: top 1 -> 2/3, top 4 -> 2/3 (tie: the first, higher threshold); F2: top 4 -> 0.83 beats top 1 -> 0.56
    assert best_threshold(positive, decision, beta=1.0) == 3.5
    assert best_threshold(positive, decision, beta=2.0) == 0.0  # below every score: all predicted positive
    assert best_threshold(np.zeros(4, bool), decision, beta=1.0) == 0.0  # no positive: the SVM's own boundary
    ties = np.array([2.0, 2.0, 1.0])
    assert best_threshold(np.array([True, False, False]), ties, beta=1.0) == 1.5  # never between equal scores


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["vocabulary_size=600", "vocabulary_sample=500"], "vocabulary_size=600 is larger than vocabulary_sample=500"),
        (["gamma_grid=['scale', 'rbf']"], "gamma_grid=('scale', 'rbf'): must be non-empty, each scale or auto"),
        (["C_grid=[0.1, -1]"], "C_grid=(0.1, -1.0): must be non-empty, > 0"),
        (["vocabulary_size=1"], "vocabulary_size=1: must be >= 2"),
        (["n_words=10"], "has no parameter 'n_words'"),
    ],
)
def test_bad_parameters_fail_in_one_line_before_any_work(tiny_task, tmp_path, capsys, options, message) -> None:
    code, _, err = run_cli(capsys, "run", str(tiny_task), "sift_bow_svm", "--out", str(tmp_path), *_quick(*options))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert message in err
    assert not list(tmp_path.iterdir())  # no run folder


def test_vocabulary_larger_than_the_descriptors_is_a_one_line_error(motif_collection, tmp_path, capsys) -> None:
    task = motif_collection / "motifs.toml"
    code, _, err = run_cli(
        capsys, "run", str(task), "sift_bow_svm", "--tracking-uri", "none", "--out", str(tmp_path),
        *_quick("vocabulary_size=50000", "vocabulary_sample=50000", "image_size=32"),
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "vocabulary_size=50000 is larger than the" in err and "SIFT descriptors sampled from the" in err


def test_recipes_and_refused_regression_target(motif_collection, tmp_path, capsys) -> None:
    sizes = [METHODS.get(f"sift_bow_svm_{v}").defaults().vocabulary_size for v in (500, 1000, 2500)]
    assert sizes == [500, 1000, 2500]
    task = tmp_path / "year.toml"
    task.write_text(
        f'name = "year"\ndataset = "csv"\n[dataset_options]\npath = "{motif_collection}/collection.csv"\n'
        '[[targets]]\nname = "motifs"\nkind = "regression"\n'
    )
    code, _, err = run_cli(capsys, "run", str(task), "sift_bow_svm_500", "--out", str(tmp_path / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot learn target(s) motifs (regression); it supports multiclass, multilabel" in err


def test_recipe_file_is_the_reports_grid_and_table_1() -> None:
    task = parse_task({"name": "t", "dataset": "csv", "targets": [{"name": "p"}]}, "t")
    config = load_config_file("baselines/imet2019_report.toml")
    method = resolve_method(METHODS.get("sift_bow_svm_2500"), task, config)
    assert (method.vocabulary_size, method.C_grid, method.gamma_grid) == (2500, (0.1, 1.0, 10.0), ("scale", "auto"))
    reported = load_baseline("imet2019_report")["reported"]
    # Table 1: the grid point each vocabulary chose lies in the searched grid; Recall = Accuracy (weighted recall)
    for size in (500, 1000, 2500):
        row = reported[f"sift_bow_svm_{size}"]
        assert row["chosen"]["vocabulary_size"] == size and f"sift_bow_svm_{size}" in METHODS.names()
        assert row["chosen"]["C"] in method.C_grid and row["chosen"]["gamma"] in method.gamma_grid
        assert row["other"]["recall_weighted"] == row["accuracy"]["attribute"]
    assert [reported[f"sift_bow_svm_{v}"]["accuracy"]["attribute"] for v in (500, 1000, 2500)] == [57.8, 58.1, 56.3]


@pytest.mark.skipif(not RIJKS_JPEGS.is_dir(), reason="needs ../shared/samples/rijks14/jpg2 (5 real Rijksmuseum JPEGs)")
def test_bag_of_words_on_the_real_rijksmuseum_jpegs(tmp_path) -> None:
    jpegs = sorted(RIJKS_JPEGS.glob("*.jpg"))
    assert len(jpegs) == 5
    pd.DataFrame({"image": [str(p) for p in jpegs], "creator": "x"}).to_csv(tmp_path / "rijks.csv", index=False)
    dataset = DATASETS.get("csv").build(path=str(tmp_path / "rijks.csv"))
    images = prepare_cache(dataset, 256).images
    descriptors = sift_descriptors(dataset, images, 256)
    # the cached uint8 descriptors are OpenCV's own float SIFT descriptors of the greyscale cache image, exactly
    for i in range(5):
        grey = cv2.cvtColor(np.ascontiguousarray(images[i]), cv2.COLOR_RGB2GRAY)
        _, expected = cv2.SIFT_create().detectAndCompute(grey, None)
        own = descriptors.values[descriptors.offsets[i] : descriptors.offsets[i + 1]]
        assert np.array_equal(own.astype(np.float32), expected)
    counts = descriptors.counts
    # at 256 px (OpenCV 5.0: 186, 459, 472, 19, 8): the painting, the portrait miniature and the painted vase are
    # rich in keypoints; the faint pen drawing and the four rods on a plain grey ground have few
    assert (counts[:3] > 100).all() and (counts[3:] < 50).all() and (counts > 0).all(), counts
    vocabulary = visual_vocabulary(descriptors, np.arange(5), 32, 100_000, seed=1)
    assert vocabulary.sampled == counts.sum() and vocabulary.words.shape == (32, 128)
    histograms = np.asarray(vocabulary.histograms)
    assert histograms.shape == (5, 32) and np.allclose(histograms.sum(axis=1), 1.0)
    assert np.allclose(histograms * counts[:, None], np.round(histograms * counts[:, None]), atol=1e-3)  # counts / n
    assert len({tuple(np.round(h, 6)) for h in histograms}) == 5  # five different works, five different histograms
