"""`artbench evaluate` scores a predictions file exactly as `artbench run` scored it, and rejects bad files with one
line and exit code 2. Developed on a real run of `mtl` on a CSV task with a multiclass, a multilabel and a regression
target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import fbeta_score, top_k_accuracy_score

from artbench.data.task_data import prepare_task
from artbench.evaluation.metrics import METRICS
from artbench.results.evaluate import decided_at_half, evaluate_file
from artbench.tasks import load_task
from tests.conftest import run_cli

TASK = """
name = "kinds-eval"
dataset = "csv"
metrics = ["f1_macro", "top3_accuracy", "map_macro", "f2_samples", "f1_micro", "mae"]
[dataset_options]
path = "collection.csv"
group_col = "object"
[[targets]]
name = "colour"
background = ["grey"]
[[targets]]
name = "motifs"
kind = "multilabel"
[[targets]]
name = "year"
kind = "regression"
[defaults]
backbone = "tiny_cnn"
weights = "none"
finetune_blocks = -1
image_size = 16
batch_size = 16
max_epochs = 1
lr = 3e-3
"""
HUES = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (220, 220, 40)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 100-object collection (colour with a background value, motifs, year; some labels missing) and one seed of
    `mtl` trained on it for one epoch."""
    root = tmp_path_factory.mktemp("kinds-eval")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for obj in range(100):
        colour = [*HUES, "grey"][obj % 5]
        motifs = [m for m, p in (("stripes", 0.5), ("dots", 0.4), ("rings", 0.2)) if rng.random() < p] or ["dots"]
        year = int(rng.integers(1500, 1900))
        for view in range(2):
            rgb = HUES.get(colour, (128, 128, 128))
            image = np.array(rgb, float) * (0.4 + 0.6 * (year - 1500) / 400) + rng.normal(0, 10, (16, 16, 3))
            if "stripes" in motifs:
                image[::4] = 255
            name = f"img/{obj}-{view}.png"
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / name)
            rows.append(
                {
                    "image": name,
                    "object": f"o{obj}",
                    "colour": colour if obj % 9 else "",
                    "motifs": "|".join(motifs) if obj % 7 else "",
                    "year": str(year) if obj % 6 else "",
                }
            )
    pd.DataFrame(rows).to_csv(root / "collection.csv", index=False)
    task = root / "kinds-eval.toml"
    task.write_text(TASK)
    out = root / "out"
    code = _run(task, out)
    assert code == 0
    seed = next((out / "kinds-eval" / "mtl").iterdir()) / "seed-1"
    return {"task": task, "seed": seed, "metrics": json.loads((seed / "metrics.json").read_text())}


def _run(task: Path, out: Path) -> int:
    from artbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", str(task), "mtl", "--out", str(out), "--device", "cpu", "--tracking-uri", "none"])
    return int(exc.value.code or 0)


@pytest.fixture(scope="module")
def data(trained: dict):
    return prepare_task(load_task(str(trained["task"])))


def _scalars(metrics: dict) -> dict[str, float]:
    return {
        f"{t}.{k}": v
        for t, values in metrics["targets"].items()
        for k, v in values.items()
        if k in METRICS and v is not None
    }


def test_with_scores_every_metric_is_the_runs(trained: dict, data) -> None:
    seed, expected = trained["seed"], trained["metrics"]
    result = evaluate_file(data, seed / "predictions.csv", scores=seed / "scores.npz")
    assert result["unavailable"] == [] and result["num_images"] == len(data.index("test"))
    got = _scalars(result["metrics"])
    thresholds = expected["targets"]["motifs"]["thresholds"]
    decision = thresholds["f2_samples"]  # the task's first thresholded metric wrote predictions.csv
    for key, value in _scalars(expected).items():
        metric = key.split(".", 1)[1]
        if key.startswith("motifs.") and METRICS.get(metric).thresholded and thresholds[metric] != decision:
            continue  # chosen on validation at another threshold than the one predictions.csv shows
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    for key in ("overall.f1_macro", "overall.mae", "overall.map_macro"):
        name = key.split(".")[1]
        assert result["metrics"]["overall"][name] == pytest.approx(expected["overall"][name], rel=1e-12)
    # independent checks: top-3 and sample F2 recomputed with scikit-learn from the files
    table = pd.read_csv(seed / "predictions.csv", dtype=str, keep_default_na=False)
    scores = np.load(seed / "scores.npz")
    labelled = (table["colour.true"] != "").to_numpy()
    names = expected["targets"]["colour"]["classes"]
    truth = [names.index(c) for c in table.loc[labelled, "colour.true"]]
    top3 = top_k_accuracy_score(truth, scores["colour"][labelled], k=3, labels=range(len(names)))
    assert got["colour.top3_accuracy"] == pytest.approx(top3)
    known = (table["motifs.true"] != "").to_numpy()
    classes = expected["targets"]["motifs"]["classes"]
    hot_true = np.array([[c in cell.split("|") for c in classes] for cell in table.loc[known, "motifs.true"]])
    hot_pred = scores["motifs"][known] >= decision
    assert got["motifs.f2_samples"] == pytest.approx(
        fbeta_score(hot_true, hot_pred, beta=2, average="samples", zero_division=0)
    )


def test_without_scores_score_based_metrics_are_unavailable(trained: dict, data) -> None:
    seed = trained["seed"]
    without = evaluate_file(data, seed / "predictions.csv")
    with_scores = evaluate_file(data, seed / "predictions.csv", scores=seed / "scores.npz")
    score_based = {
        f"{t}.{m}"
        for t, v in with_scores["metrics"]["targets"].items()
        for m in v
        if m in METRICS and METRICS.get(m).needs_scores
    }
    assert set(without["unavailable"]) == score_based >= {"colour.top3_accuracy", "motifs.map_macro"}
    for key, value in _scalars(with_scores["metrics"]).items():
        got = _scalars(without["metrics"])[key]
        if key in score_based:
            assert np.isnan(got), key
        else:  # one-hot / multi-hot scores give the same hard-label metrics
            assert got == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert np.isnan(without["metrics"]["overall"]["map_macro"])


def test_images_match_by_their_path_inside_the_dataset(trained: dict, data, tmp_path: Path) -> None:
    """A file written on another machine (another data folder) or with relative paths scores the same."""
    seed = trained["seed"]
    table = pd.read_csv(seed / "predictions.csv", dtype=str, keep_default_na=False)
    root = str(trained["task"].parent)
    expected = evaluate_file(data, seed / "predictions.csv")["metrics"]
    for prefix in ("/somewhere/else/collection", ""):
        moved = table.assign(image=[prefix + p[len(root) :] if prefix else p[len(root) + 1 :] for p in table["image"]])
        moved = moved.sample(frac=1, random_state=0)  # row order does not matter
        path = tmp_path / "moved.csv"
        moved.to_csv(path, index=False)
        assert _scalars(evaluate_file(data, path)["metrics"]) == pytest.approx(_scalars(expected), nan_ok=True)


def _mutations(table: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    first = table["image"].iloc[0]
    return {
        "missing column": (table.drop(columns=["year.pred"]), "wrong columns (missing year.pred)"),
        "unexpected column": (table.assign(comment="x"), "unexpected comment"),
        "duplicate rows": (pd.concat([table, table.iloc[:3]]), "3 image(s) listed more than once"),
        "unknown image": (
            table.assign(image=[*table["image"].iloc[:-2], "/x/ghost.png", "/x/ghost2.png"]),
            "2 image(s) that are not in the test split of the task: '/x/ghost.png', '/x/ghost2.png'",
        ),
        "missing image": (table.iloc[1:], f"1 image(s) of the test split without a prediction: {first!r}"),
        "unknown class": (
            table.assign(**{"colour.pred": ["purple"] * len(table)}),
            "colour.pred: 1 unknown class name(s): 'purple'",
        ),
        "unknown label": (
            table.assign(**{"motifs.pred": ["dots|zigzag"] * len(table)}),
            "motifs.pred: 1 unknown class name(s): 'zigzag'",
        ),
        "not a number": (
            table.assign(**{"year.pred": ["soon"] * len(table)}),
            f"year.pred: {len(table)} cell(s) that are not finite numbers: 'soon'",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing column",
        "unexpected column",
        "duplicate rows",
        "unknown image",
        "missing image",
        "unknown class",
        "unknown label",
        "not a number",
    ],
)
def test_bad_predictions_are_one_line_errors(case: str, trained: dict, tmp_path: Path, capsys) -> None:
    table = pd.read_csv(trained["seed"] / "predictions.csv", dtype=str, keep_default_na=False)
    bad, message = _mutations(table)[case]
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    code, _, err = run_cli(capsys, "evaluate", str(trained["task"]), str(path))
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_scores_are_one_line_errors(trained: dict, tmp_path: Path, capsys) -> None:
    seed = trained["seed"]
    scores = dict(np.load(seed / "scores.npz"))
    table = pd.read_csv(seed / "predictions.csv", dtype=str, keep_default_na=False)
    classes = trained["metrics"]["targets"]["motifs"]["classes"]
    table.loc[table.index[0], "motifs.pred"], table.loc[table.index[1], "motifs.pred"] = "|".join(classes), ""
    predictions = tmp_path / "predictions.csv"
    table.to_csv(predictions, index=False)
    predicted = np.array([[c in cell.split("|") for c in classes] for cell in table["motifs.pred"]], dtype=int)
    cases = {
        "shape": ({**scores, "colour": scores["colour"][:, :2]}, "array 'colour' has shape"),
        "targets": ({k: v for k, v in scores.items() if k != "year"}, "expected one per target: colour, motifs, year"),
        "argmax": (
            {**scores, "colour": np.roll(scores["colour"], 1, axis=1)},
            "colour.pred: ",
        ),
        "threshold": (
            {**scores, "motifs": np.where(predicted == 1, 0.1, 0.9)},
            "target 'motifs': the predictions are not the scores above one threshold",
        ),
        "nan": ({**scores, "year": np.full_like(scores["year"], np.nan)}, "array 'year' holds NaN"),
    }
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        code, _, err = run_cli(capsys, "evaluate", str(trained["task"]), str(predictions), "--scores", str(path))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (name, err)
    code, _, err = run_cli(capsys, "evaluate", str(trained["task"]), str(tmp_path / "none.csv"))
    assert code == 2 and "does not exist" in err


def test_cli_table_and_json(trained: dict, capsys) -> None:
    seed = trained["seed"]
    code, out, err = run_cli(capsys, "evaluate", str(trained["task"]), str(seed / "predictions.csv"))
    assert code == 0, err
    assert "n/a" in out and "needs --scores" in out and "mAP" in out
    code, out, err = run_cli(
        capsys,
        "evaluate",
        str(trained["task"]),
        str(seed / "predictions.csv"),
        "--scores",
        str(seed / "scores.npz"),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["targets"]["year"]["mae"] == pytest.approx(trained["metrics"]["targets"]["year"]["mae"])
    assert result["split"] == "test" and result["unavailable"] == []


def test_scores_mapped_to_a_half_threshold_keep_every_order_and_tie() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((200, 6)), 2)  # many ties
    predicted = (scores >= 0.37).astype(np.int8)
    mapped = decided_at_half(scores, predicted, "t")
    assert np.array_equal(mapped >= 0.5, predicted == 1)
    flat, new = scores.ravel(), mapped.ravel()
    order = np.argsort(flat, kind="stable")
    assert np.all(np.diff(new[order]) >= 0)
    assert np.array_equal(np.diff(flat[order]) == 0, np.diff(new[order]) == 0)  # ties kept, no new ones
