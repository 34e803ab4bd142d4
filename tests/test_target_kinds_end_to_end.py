"""One CSV task with a multiclass, a multilabel and a regression target, trained end to end: the SilkNet family
learns all three kinds, colour_hist_logreg the kinds it supports, and a kind a method cannot learn is refused."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import fbeta_score, mean_absolute_error

from tests.conftest import run_cli

HUES = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}
TASK = """
name = "kinds"
dataset = "csv"
metrics = [{metrics}]
[dataset_options]
path = "collection.csv"
group_col = "object"
[[targets]]
name = "colour"
[[targets]]
name = "motifs"
kind = "multilabel"
{regression}
[defaults]
backbone = "tiny_cnn"
weights = "none"
finetune_blocks = -1
image_size = 16
batch_size = 16
max_epochs = 2
lr = 3e-3
"""
REGRESSION = '[[targets]]\nname = "year"\nkind = "regression"'


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 objects of two images: colour → hue, motifs → stripes/dots, year → brightness; some labels missing."""
    root = tmp_path_factory.mktemp("kinds")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for obj in range(150):
        colour = list(HUES)[obj % 3]
        motifs = [m for m, p in (("stripes", 0.5), ("dots", 0.4)) if rng.random() < p]
        year = int(rng.integers(1500, 1900))
        for view in range(2):
            image = np.array(HUES[colour], float) * (0.4 + 0.6 * (year - 1500) / 400) + rng.normal(0, 10, (16, 16, 3))
            if "stripes" in motifs:
                image[::4] = 255
            if "dots" in motifs:
                image[2::5, 2::5] = 0
            name = f"img/{obj}-{view}.png"
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / name)
            rows.append(
                {
                    "image": name,
                    "object": f"o{obj}",
                    "colour": colour if obj % 10 else "",
                    "motifs": "|".join(motifs) if obj % 7 else "",
                    "year": str(year) if obj % 5 else "",
                }
            )
    pd.DataFrame(rows).to_csv(root / "collection.csv", index=False)
    return root


def _task(root: Path, name: str, regression: bool) -> Path:
    metrics = '"f1_macro", "map_macro", "f2_samples"' + (', "mae"' if regression else "")
    path = root / f"{name}.toml"
    path.write_text(TASK.format(metrics=metrics, regression=REGRESSION if regression else "").replace("kinds", name, 1))
    return path


def _seed(out: Path, task: str, method: str) -> Path:
    return next((out / task / method).iterdir()) / "seed-1"


def test_mtl_learns_all_three_kinds(collection: Path, tmp_path: Path, capsys) -> None:
    task = _task(collection, "kinds", regression=True)
    code, out, err = run_cli(capsys, "run", str(task), "mtl", "--out", str(tmp_path), "--tracking-uri", "none")
    assert code == 0, err
    assert "mAP" in out and "F2 (samples)" in out and "MAE" in out
    seed = _seed(tmp_path, "kinds", "mtl")
    metrics = json.loads((seed / "metrics.json").read_text())["targets"]
    assert metrics["colour"]["kind"] == "multiclass" and 0 <= metrics["colour"]["f1_macro"] <= 1
    assert set(metrics["motifs"]) >= {"map_macro", "ap11_macro", "map_samples", "f1_samples", "f2_samples", "f1_micro"}
    assert set(metrics["year"]) >= {"mae", "rmse", "within_50"}
    preds = pd.read_csv(seed / "predictions.csv", dtype=str, keep_default_na=False)
    scores = np.load(seed / "scores.npz")
    # the regression column holds numbers, and MAE is recomputable from predictions.csv
    known = preds["year.true"] != ""
    truth, predicted = preds.loc[known, "year.true"].astype(float), preds.loc[known, "year.pred"].astype(float)
    assert metrics["year"]["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert np.allclose(scores["year"], preds["year.pred"].astype(float))
    # multilabel predictions are joined by the separator, at the threshold chosen on validation for F2
    classes = metrics["motifs"]["classes"]
    threshold = metrics["motifs"]["thresholds"]["f2_samples"]
    labelled = preds["motifs.true"] != ""
    hot = (scores["motifs"] >= threshold).astype(int)[labelled.to_numpy()]
    truth_hot = np.array([[c in cell.split("|") for c in classes] for cell in preds.loc[labelled, "motifs.true"]])
    assert metrics["motifs"]["f2_samples"] == pytest.approx(
        fbeta_score(truth_hot, hot, beta=2, average="samples", zero_division=0)
    )
    shown = ["|".join(c for c, on in zip(classes, row, strict=True) if on) for row in hot]
    assert preds.loc[labelled, "motifs.pred"].tolist() == shown


def test_colour_hist_logreg_learns_the_kinds_it_supports(collection: Path, tmp_path: Path, capsys) -> None:
    both = _task(collection, "kinds", regression=True)
    code, _, err = run_cli(capsys, "run", str(both), "colour_hist_logreg", "--out", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "method 'colour_hist_logreg' cannot learn target(s) year (regression)" in err
    assert not (tmp_path / "kinds").exists()  # refused before any work
    task = _task(collection, "kinds-cls", regression=False)
    code, _, err = run_cli(
        capsys, "run", str(task), "colour_hist_logreg", "--seeds", "3", "--out", str(tmp_path), "--tracking-uri", "none"
    )
    assert code == 0, err
    summary = json.loads(
        next((tmp_path / "kinds-cls" / "colour_hist_logreg").iterdir()).joinpath("summary.json").read_text()
    )
    assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2, 3]
    assert summary["metrics"]["colour.f1_macro"]["mean"] > 0.9  # hue alone separates the colours


def test_unreadable_images_lose_their_labels_and_the_run_goes_on(collection: Path, tmp_path: Path, capsys) -> None:
    """A corrupt and a missing image are skipped by the cache; they are neither trained on nor scored."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(collection, root)
    for obj in range(0, 40, 2):  # corrupt or delete one view of 20 objects: some of them land in the test split
        (root / "img" / f"{obj}-0.png").write_bytes(b"not a png")
        (root / "img" / f"{obj + 1}-1.png").unlink()
    task = _task(root, "kinds", regression=True)
    code, _, err = run_cli(capsys, "run", str(task), "mtl", "--out", str(tmp_path / "out"), "--tracking-uri", "none")
    assert code == 0, err
    preds = pd.read_csv(_seed(tmp_path / "out", "kinds", "mtl") / "predictions.csv", dtype=str, keep_default_na=False)
    names = preds["image"].str.rsplit("/", n=1).str[-1]
    bad = names.isin([f"{o}-0.png" for o in range(0, 40, 2)] + [f"{o + 1}-1.png" for o in range(0, 40, 2)])
    assert bad.sum() >= 1
    for column in ("colour.true", "motifs.true", "year.true"):
        assert (preds.loc[bad, column] == "").all()
