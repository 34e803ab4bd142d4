"""Leaderboards from run folders: ranking, significance against the best baseline (checked against SciPy and
statsmodels), reported reference rows, the written files, the static site and the MLflow run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from artbench.core.targets import BACKGROUND_NAME
from artbench.evaluation.aggregate import flatten_metrics, summarise
from artbench.results.leaderboard import (
    SOURCE_OTHER_DATA,
    SOURCE_REPORTED,
    SOURCE_RUN,
    board_markdown,
    build_board,
    per_class_scores,
    training_counts,
    write_board,
)
from artbench.results.site import publish
from artbench.results.store import RunWriter
from artbench.tasks import load_task
from tests.conftest import run_cli

TARGETS = ["place", "material", "time", "technique", "depiction"]
OFFSETS = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])  # mean 0: the overall F1 is the given value


def write_run(
    out: Path,
    task: str,
    method: str,
    overall: list[float],
    *,
    seeds: list[int] | None = None,
    fingerprint: str = "fp-1",
    per_class: dict[str, list[float]] | None = None,
) -> Path:
    """A complete run folder whose per-seed overall macro-F1 is ``overall`` (per target: overall + OFFSETS)."""
    seeds = seeds or list(range(1, len(overall) + 1))
    writer = RunWriter(out, task, method)
    flats = []
    for i, (seed, value) in enumerate(zip(seeds, overall, strict=True)):
        targets = {}
        for name, offset in zip(TARGETS, OFFSETS, strict=True):
            targets[name] = {
                "kind": "multiclass",
                "f1_macro": value + offset,
                "accuracy": 0.5,
                "f1_underrepresented": 0.1,
            }
            if per_class is not None:
                targets[name]["per_class"] = {
                    **{c: {"f1": scores[i], "support": 3} for c, scores in per_class.items()},
                    BACKGROUND_NAME: {"f1": 0.9, "support": 50},
                }
        metrics = {
            "seed": seed,
            "train_seconds": 10.0 * seed,
            "targets": targets,
            "overall": {m: float(np.mean([t[m] for t in targets.values()])) for m in ("f1_macro", "accuracy")},
        }
        metrics["overall"]["f1_underrepresented"] = 0.1
        writer.write_seed(seed, metrics, pd.DataFrame({"image": []}), {})
        flats.append(flatten_metrics(metrics))
    writer.write_config({"task": task, "method": method, "params": {}, "run": {"device": "cuda:0"}})
    writer.write_environment(
        {"device": "cuda:0", "device_name": "Test GPU", "cuda": "12.4", "dataset_fingerprint": fingerprint}
    )
    writer.write_summary("complete", len(seeds), seeds, metrics=summarise(flats))
    return writer.run_dir


BEST = [0.40, 0.42, 0.41, 0.43]
WORSE_PAIRED = [0.30, 0.33, 0.31, 0.32]
CLOSE_UNPAIRED = [0.39, 0.44, 0.40]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    write_run(out, "tiny-synth", "mtl_fo_rall", BEST, per_class={"AT": [0.1] * 4, "FR": [0.5] * 4})
    write_run(out, "tiny-synth", "mtl", WORSE_PAIRED)
    write_run(out, "tiny-synth", "mtl_fo", CLOSE_UNPAIRED)
    older = write_run(out, "tiny-synth", "stl", [0.99])  # an older run of stl: the board takes the latest
    older.rename(older.with_name("20000101-000000-000000"))
    write_run(out, "tiny-synth", "stl", [0.20, 0.21], fingerprint="fp-2")
    return out


def test_ranking_and_significance_against_the_best_baseline(tiny_task: Path, runs: Path) -> None:
    board = build_board(load_task(str(tiny_task)), runs, with_training_counts=False)
    measured = board.measured
    assert [e.name for e in measured] == ["mtl_fo_rall", "mtl_fo", "mtl", "stl"]  # latest stl run, not the 0.99 one
    assert [e.rank for e in measured] == [1, 2, 3, 4]
    assert measured[0].mean("overall.f1_macro") == pytest.approx(np.mean(BEST))
    assert board.baseline == "mtl_fo_rall" and measured[0].vs_best == {"is_baseline": True}
    by_name = {e.name: e for e in measured}
    # same seeds 1-4: paired t-test; seeds 1-3 and 1-2: Welch's t-test
    paired = stats.ttest_rel(WORSE_PAIRED, BEST).pvalue
    welch_fo = stats.ttest_ind(CLOSE_UNPAIRED, BEST, equal_var=False).pvalue
    welch_stl = stats.ttest_ind([0.20, 0.21], BEST, equal_var=False).pvalue
    assert by_name["mtl"].vs_best["test"] == "paired t-test"
    assert by_name["mtl_fo"].vs_best["test"] == "Welch t-test"
    raw = [by_name[m].vs_best["p"] for m in ("mtl_fo", "mtl", "stl")]
    assert raw == pytest.approx([welch_fo, paired, welch_stl], rel=1e-9)
    holm = multipletests([welch_fo, paired, welch_stl], method="holm")[1]
    assert [by_name[m].vs_best["p_holm"] for m in ("mtl_fo", "mtl", "stl")] == pytest.approx(holm, rel=1e-9)
    assert by_name["mtl"].vs_best["significant"] and not by_name["mtl_fo"].vs_best["significant"]
    assert by_name["mtl"].vs_best["diff"] == pytest.approx(np.mean(WORSE_PAIRED) - np.mean(BEST))
    assert "paired t-test" in board.significance and "Holm" in board.significance
    # hardware and wall time (sum of train_seconds over seeds: 10 + 20 + 30 + 40)
    assert measured[0].hardware == "Test GPU (CUDA 12.4)" and measured[0].wall_seconds == pytest.approx(100.0)
    assert any("different versions of the dataset" in n for n in board.notes)  # stl ran on fp-2
    markdown = board_markdown(board)
    row = next(line for line in markdown.splitlines() if line.startswith("| 3 | mtl |"))
    assert f"p = {holm[1]:.3g}*" in row and "(paired t)" in row


def test_silknet_numbers_are_reference_rows_on_other_data(tiny_task: Path, runs: Path) -> None:
    board = build_board(load_task(str(tiny_task)), runs, with_training_counts=False)
    reference = {e.name: e for e in board.reference}
    assert set(reference) == {"mtl", "mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall"}
    fo_rall = reference["mtl_fo_rall"]
    assert fo_rall.source == SOURCE_OTHER_DATA and fo_rall.paper == "dorozynski2023"
    # SilkNet Table 4: 33.6 ± 1.03 average F1; Table 5: place 21.3
    assert fo_rall.mean("overall.f1_macro") == pytest.approx(0.336)
    assert fo_rall.metrics["overall.f1_macro"]["std"] == pytest.approx(0.0103)
    assert fo_rall.mean("place.f1_macro") == pytest.approx(0.213)
    assert fo_rall.rank is None and fo_rall.vs_best is None
    assert all(e.source == SOURCE_RUN for e in board.measured)
    assert board.entries[: len(board.measured)] == board.measured  # reference rows come after the ranked ones


def test_errors_rank_ascending_beside_the_papers_numbers_on_the_same_data(tmp_path: Path) -> None:
    task = load_task("rijks14-year")
    out = tmp_path / "runs"
    for method, rmse in (("mtl", [150.0, 160.0]), ("stl", [140.0, 145.0])):
        writer = RunWriter(out, task.name, method)
        flats = []
        for seed, value in enumerate(rmse, 1):
            metrics = {"targets": {"year": {"rmse": value, "mae": value / 2, "within_50": 0.5}}}
            metrics["overall"] = dict(metrics["targets"]["year"])
            writer.write_seed(seed, metrics, pd.DataFrame({"image": []}), {})
            flats.append(flatten_metrics(metrics))
        writer.write_summary("complete", 2, [1, 2], metrics=summarise(flats))
    board = build_board(task, out)
    assert [e.name for e in board.measured] == ["stl", "mtl"]  # lower RMSE is better
    reported = {e.name: e for e in board.reference}
    assert reported["fv_svm"].source == SOURCE_REPORTED and reported["fv_svm"].paper == "mensink2014"
    # Mensink & van Gemert 2014 (exp_rijks_year.m): RMSE 163.00, MAE 74.39; the mean predictor 173.81
    assert reported["fv_svm"].mean("overall.rmse") == pytest.approx(163.00)
    assert reported["fv_svm"].mean("overall.mae") == pytest.approx(74.39)
    assert reported["mean_predictor"].mean("overall.rmse") == pytest.approx(173.81)
    row = next(line for line in board_markdown(board).splitlines() if "| fv_svm |" in line)
    assert "| 163.0 |" in row and "reported (mensink2014)" in row


def test_per_class_scores_against_training_frequency(tiny_task: Path, tmp_path: Path) -> None:
    task = load_task(str(tiny_task))
    out = tmp_path / "runs"
    write_run(out, task.name, "mtl", [0.3, 0.4], per_class={"A": [0.2, 0.6], "B": [0.0, 0.1]})
    board = build_board(task, out, with_training_counts=False)
    place = per_class_scores(task, board.measured, {"place": {"A": 7, "B": 70}})["place"]
    assert place["entries"]["mtl"] == pytest.approx({"A": 0.4, "B": 0.05})  # mean over the two seeds
    assert BACKGROUND_NAME not in place["entries"]["mtl"]
    assert place["frequency"] == {"A": 7, "B": 70} and place["frequency_of"] == "training samples"
    fallback = per_class_scores(task, board.measured, None)["place"]
    assert fallback["frequency"] == {"A": 3, "B": 3} and fallback["frequency_of"] == "test samples"


def test_training_counts_are_the_labelled_training_samples(tiny_task: Path) -> None:
    from artbench.data.task_data import prepare_task

    task = load_task(str(tiny_task))
    counts = training_counts(task)
    data = prepare_task(task)
    train = data.dataset.table[data.split == "train"]
    for spec in data.targets:
        expected = train[spec.name].dropna().astype(str).value_counts()
        expected = expected[~expected.index.isin(spec.background)]
        assert {c: n for c, n in counts[spec.name].items() if n} == expected.to_dict()


def test_files_and_site_are_self_contained(tiny_task: Path, runs: Path, tmp_path: Path) -> None:
    task = load_task(str(tiny_task))
    boards = tmp_path / "leaderboards"
    published = publish([task], runs, boards)
    _, files = published[0]
    names = {p.relative_to(boards).as_posix() for p in files}
    assert {"tiny-synth.md", "tiny-synth.csv", "tiny-synth.json", "tiny-synth.html"} <= names
    assert {"img/tiny-synth-bars.png", "img/tiny-synth-per-class.png", "img/tiny-synth-cd.png"} <= names
    frame = pd.read_csv(boards / "tiny-synth.csv")
    assert list(frame["name"][:4]) == ["mtl_fo_rall", "mtl_fo", "mtl", "stl"]
    assert frame.loc[0, "overall.f1_macro.mean"] == pytest.approx(np.mean(BEST))
    saved = json.loads((boards / "tiny-synth.json").read_text())
    assert saved["ranking_metric"] == "f1_macro" and saved["baseline"] == "mtl_fo_rall"
    assert saved["critical_difference"]["n_datasets"] == len(TARGETS)
    for page in ("index.html", "tiny-synth.html"):
        text = (boards / page).read_text()
        assert not re.search(r"(?:src|href)\s*=\s*['\"]?\s*(?:https?:)?//", text, re.I), page
        for ref in re.findall(r"(?:src|href)='([^']+)'", text):
            assert (boards / ref).is_file(), ref
        assert "<script src" not in text and "<link" not in text
    assert (boards / "img/tiny-synth-bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tiny-synth.html" in (boards / "index.html").read_text()


def test_board_is_logged_beside_the_training_runs(tiny_task: Path, runs: Path, tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    publish([load_task(str(tiny_task))], runs, tmp_path / "boards", uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny-synth")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([experiment.experiment_id], "tags.`artbench.kind` = 'leaderboard'")
    assert run.info.status == "FINISHED" and run.data.params["leader"] == "mtl_fo_rall"
    assert run.data.metrics["mtl_fo_rall.overall.f1_macro"] == pytest.approx(np.mean(BEST))
    assert "tiny-synth.html" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_build_command(tiny_task: Path, runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boards = tmp_path / "boards"
    args = ("leaderboard", "build", "--task", str(tiny_task), "--runs", str(runs), "--out", str(boards))
    code, out, err = run_cli(capsys, *args, "--tracking-uri", "none")
    assert code == 0, err
    assert "mtl_fo_rall" in out and "F1 (macro) 41.5 ± 1.3" in out
    assert (boards / "index.html").is_file() and (boards / "tiny-synth.md").is_file()
    code, _, err = run_cli(capsys, "leaderboard", "build", "--runs", str(tmp_path / "empty"), "--out", str(boards))
    assert code == 2 and "no complete run" in err and "\n" not in err.strip()


def test_write_board_writes_three_files(tiny_task: Path, runs: Path, tmp_path: Path) -> None:
    board = build_board(load_task(str(tiny_task)), runs, with_training_counts=False)
    paths = write_board(board, tmp_path / "b")
    assert [p.name for p in paths] == ["tiny-synth.md", "tiny-synth.csv", "tiny-synth.json"]
    assert "reference, other data (dorozynski2023)" in paths[0].read_text()
