"""End-to-end `artbench run` on a tiny synthetic task: files on disk, metrics vs predictions, MLflow, seeds,
repeatability and interruption safety."""

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from artbench.results.store import FORMAT_VERSION
from tests.conftest import run_cli, run_quick

TARGETS = ["place", "material", "time", "technique", "depiction"]


def _run_dirs(out: Path, method: str) -> list[Path]:
    return sorted((out / "tiny-synth" / method).iterdir())


@pytest.fixture(scope="module")
def mtl_run(tiny_task: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out")
    from artbench.cli import (
        main,
    )  # capsys is function-scoped, so this module-scoped fixture calls main itself

    with pytest.raises(SystemExit) as exc:
        main(["run", str(tiny_task), "mtl", "--seeds", "2", "--out", str(out), "--device", "cpu"])
    assert exc.value.code == 0
    return out, _run_dirs(out, "mtl")[0]


def test_run_writes_every_file(mtl_run) -> None:
    _, run_dir = mtl_run
    for name in ("config.json", "environment.json", "summary.json"):
        assert (run_dir / name).is_file()
    for seed in (1, 2):
        seed_dir = run_dir / f"seed-{seed}"
        assert (seed_dir / "metrics.json").is_file() and (seed_dir / "predictions.csv").is_file()
        assert {f"confusion-{t}.png" for t in TARGETS} <= {p.name for p in seed_dir.iterdir()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2]
    f1 = summary["metrics"]["overall.f1_macro"]
    assert len(f1["values"]) == 2 and f1["mean"] == pytest.approx(np.mean(f1["values"]))
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["torch"] and env["dataset_fingerprint"] and env["device"] == "cpu"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["params"]["backbone"] == "tiny_cnn" and config["method"] == "mtl"
    assert config["family"] == "SilkNetMethod"
    assert config["run"] == {"device": "cpu", "amp": True, "compile": False, "deterministic": False}
    assert [t["name"] for t in config["targets"]] == TARGETS
    assert summary["format_version"] == FORMAT_VERSION
    tracking = json.loads((run_dir / "tracking.json").read_text())
    assert set(tracking) == {"tracking_uri", "experiment_id", "parent_run_id"}


def test_every_seed_records_its_cost(mtl_run) -> None:
    """Issue 14: wall time, epochs, images per second, peak GPU memory, device, compiled/deterministic."""
    _, run_dir = mtl_run
    summary = json.loads((run_dir / "summary.json").read_text())
    for seed, recorded in zip((1, 2), summary["cost"]["seeds"], strict=True):
        cost = json.loads((run_dir / f"seed-{seed}" / "metrics.json").read_text())["cost"]
        assert recorded == {"seed": seed, **cost}
        assert cost["epochs"] == 2 and cost["resumed_epochs"] == 0 and cost["device"] == "cpu"
        assert cost["train_images"] == 2 * 224  # 2 epochs of the 224 labelled training rows in full batches of 32
        assert cost["images_per_second"] == pytest.approx(cost["train_images"] / cost["train_seconds"])
        assert cost["wall_seconds"] > cost["train_seconds"] > 0 and cost["device_name"]
        assert cost["peak_gpu_memory_bytes"] is None and cost["compiled"] is False and cost["deterministic"] is False
        assert cost["compile_error"] is None
    total = summary["cost"]["total"]
    assert total["epochs"] == 4 and total["train_images"] == 896 and total["peak_gpu_memory_bytes"] is None
    assert total["wall_seconds"] == pytest.approx(sum(c["wall_seconds"] for c in summary["cost"]["seeds"]))


def test_a_seed_folder_is_complete_only_with_its_marker(mtl_run) -> None:
    from artbench.results.store import completed_seeds, seed_complete

    _, run_dir = mtl_run
    marker = json.loads((run_dir / "seed-1" / "complete.json").read_text())
    assert set(marker["files"]) == {p.name for p in (run_dir / "seed-1").iterdir()} - {"complete.json"}
    assert completed_seeds(run_dir) == [1, 2] and seed_complete(run_dir / "seed-2")


def test_scores_align_with_predictions_and_classes(mtl_run) -> None:
    from artbench.results.store import read_run

    _, run_dir = mtl_run
    record = read_run(run_dir)
    metrics, preds, scores = record.metrics(1), record.predictions(1), record.scores(1)
    assert set(scores) == set(TARGETS)
    for target in TARGETS:
        classes = metrics["targets"][target]["classes"]
        probabilities = scores[target]
        assert probabilities.shape == (len(preds), len(classes))
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
        assert [classes[i] for i in probabilities.argmax(axis=1)] == preds[f"{target}.pred"].tolist()


def test_metrics_agree_with_predictions_csv(mtl_run) -> None:
    _, run_dir = mtl_run
    metrics = json.loads((run_dir / "seed-1" / "metrics.json").read_text())
    preds = pd.read_csv(run_dir / "seed-1" / "predictions.csv", dtype=str, keep_default_na=False)
    assert list(preds.columns) == ["image"] + [f"{t}.{s}" for t in TARGETS for s in ("true", "pred")]
    for target in TARGETS:
        m = metrics["targets"][target]
        known = preds[f"{target}.true"] != ""
        y_true, y_pred = preds.loc[known, f"{target}.true"], preds.loc[known, f"{target}.pred"]
        assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        present = sorted(set(y_true) - {"(background)"})
        assert m["f1_macro"] == pytest.approx(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        )
        under = [c for c in m["underrepresented"] if c in present]
        if under:
            assert m["f1_underrepresented"] == pytest.approx(
                f1_score(y_true, y_pred, labels=under, average="macro", zero_division=0)
            )
    overall = np.mean([metrics["targets"][t]["f1_macro"] for t in TARGETS])
    assert metrics["overall"]["f1_macro"] == pytest.approx(overall)


def test_mlflow_parent_and_nested_seed_runs(mtl_run) -> None:
    out, run_dir = mtl_run
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny-synth")
    parent = client.search_runs(
        [exp.experiment_id], f"tags.`artbench.run_id` = '{run_dir.name}' and tags.`mlflow.runName` = 'mtl'"
    )[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["backbone"] == "tiny_cnn" and parent.data.params["seeds"] == "2"
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["artbench.seed"] for c in children) == ["1", "2"]
    seed1 = next(c for c in children if c.data.tags["artbench.seed"] == "1")
    metrics = json.loads((run_dir / "seed-1" / "metrics.json").read_text())
    assert seed1.data.metrics["overall.f1_macro"] == pytest.approx(metrics["overall"]["f1_macro"])
    assert "place.class.GB.f1" in seed1.data.metrics
    assert seed1.data.metrics["cost.epochs"] == 2 and seed1.data.metrics["cost.images_per_second"] > 0
    assert seed1.data.params["cost.device"] == "cpu" and seed1.data.params["cost.compiled"] == "False"
    assert parent.data.metrics["cost.total.epochs"] == 4 and "cost.total.wall_seconds" in parent.data.metrics
    history = client.get_metric_history(seed1.info.run_id, "val_criterion")
    assert [h.step for h in history] == list(range(1, len(history) + 1))
    artifacts = {a.path for a in client.list_artifacts(seed1.info.run_id)}
    assert {"predictions.csv", "metrics.json", "confusion-place.png"} <= artifacts and "complete.json" not in artifacts


@pytest.mark.parametrize("method", ["mtl", "mtl_fo_rall"])
def test_cpu_runs_are_repeatable(method: str, tiny_task: Path, tmp_path: Path, capsys) -> None:
    for _ in range(2):
        code, out, _ = run_quick(capsys, tiny_task, method, tmp_path, "--tracking-uri", "none")
        assert code == 0 and "overall" in out
    first, second = _run_dirs(tmp_path, method)
    metrics = [json.loads((d / "seed-1" / "metrics.json").read_text())["targets"] for d in (first, second)]
    assert metrics[0] == metrics[1]
    assert (first / "seed-1" / "predictions.csv").read_bytes() == (second / "seed-1" / "predictions.csv").read_bytes()


@pytest.mark.parametrize(("crash", "mlflow_status"), [(KeyboardInterrupt, "KILLED"), (RuntimeError, "FAILED")])
def test_interrupted_run_keeps_finished_seeds(
    tiny_task: Path, tmp_path: Path, capsys, monkeypatch, crash: type[BaseException], mlflow_status: str
) -> None:
    from artbench.methods.torch.silknet import SilkNetMethod

    real = SilkNetMethod.fit

    def crash_in_seed_2(self, data, seed, ctx):
        if seed == 2:
            raise crash
        return real(self, data, seed, ctx)

    monkeypatch.setattr(SilkNetMethod, "fit", crash_in_seed_2)
    if crash is KeyboardInterrupt:
        code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path, "--seeds", "3")
        assert code == 130 and "1 finished seed(s) saved in" in err and "--resume" in err
    else:  # a bug, not a user mistake: the traceback is shown
        with pytest.raises(RuntimeError):
            run_quick(capsys, tiny_task, "mtl", tmp_path, "--seeds", "3")
    run_dir = _run_dirs(tmp_path, "mtl")[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "incomplete" and summary["seeds_completed"] == [1]
    assert (run_dir / "seed-1" / "metrics.json").is_file()
    assert not (run_dir / "seed-2").exists() and not (run_dir / "seed-2.tmp").exists()  # no checkpoint to keep
    assert (run_dir / "logs" / "seed-2.failed").is_file() == (crash is RuntimeError)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny-synth").experiment_id])
    status = {r.data.tags["mlflow.runName"]: r.info.status for r in runs}
    assert status == {"mtl": mlflow_status, "seed-1": "FINISHED", "seed-2": mlflow_status}
    parent = next(r for r in runs if r.data.tags["mlflow.runName"] == "mtl")
    assert parent.data.tags["artbench.status"] == "incomplete"  # the word summary.json uses
    if crash is RuntimeError:
        return
    # --resume: other settings are a one-line error naming them; the same settings train seeds 2 and 3
    monkeypatch.setattr(SilkNetMethod, "fit", real)
    seed_1 = {p.name: p.read_bytes() for p in (run_dir / "seed-1").iterdir()}
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path, "--resume", "--set", "lr=0.01", "--set", "patience=3")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "was made with other settings: params.lr (0.001 → 0.01), params.patience (2 → 3)" in err
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path, "--resume", "--seeds", "2")
    assert code == 2 and "asks for 3 seeds; pass --seeds 3 or more" in err
    code, out, _ = run_quick(capsys, tiny_task, "mtl", tmp_path, "--resume")
    assert code == 0 and "3 seed(s)" in out and _run_dirs(tmp_path, "mtl") == [run_dir]
    assert {p.name: p.read_bytes() for p in (run_dir / "seed-1").iterdir()} == seed_1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2, 3]
    runs = client.search_runs([client.get_experiment_by_name("tiny-synth").experiment_id])
    assert sorted((r.data.tags["mlflow.runName"], r.info.status) for r in runs) == [
        ("mtl", "FINISHED"), ("seed-1", "FINISHED"), ("seed-2", "FINISHED"), ("seed-2", "KILLED"),
        ("seed-3", "FINISHED"),
    ]  # fmt: skip


def test_a_method_without_epochs_retrains_an_unfinished_seed(tiny_task: Path, tmp_path: Path, capsys, monkeypatch):
    from artbench.methods.classical.colour_hist_logreg import ColourHistLogReg

    real = ColourHistLogReg.fit

    def interrupted_in_seed_2(self, data, seed, ctx):
        if seed == 2:
            raise KeyboardInterrupt
        return real(self, data, seed, ctx)

    monkeypatch.setattr(ColourHistLogReg, "fit", interrupted_in_seed_2)
    args = ("run", str(tiny_task), "colour_hist_logreg", "--seeds", "2", "--out", str(tmp_path), "--tracking-uri")
    args = (*args, "none")
    assert run_cli(capsys, *args)[0] == 130
    monkeypatch.setattr(ColourHistLogReg, "fit", real)
    code, out, _ = run_cli(capsys, *args, "--resume")
    assert code == 0 and "2 seed(s)" in out
    run_dir = _run_dirs(tmp_path, "colour_hist_logreg")[0]
    cost = json.loads((run_dir / "seed-2" / "metrics.json").read_text())["cost"]
    assert cost["epochs"] is None and cost["images_per_second"] is None and cost["train_seconds"] > 0


def test_stl_trains_one_network_per_target(tiny_task: Path, tmp_path: Path, capsys) -> None:
    code, _, _ = run_quick(capsys, tiny_task, "stl", tmp_path, "--tracking-uri", "none")
    assert code == 0
    metrics = json.loads((_run_dirs(tmp_path, "stl")[0] / "seed-1" / "metrics.json").read_text())
    assert set(metrics["epochs"]) == set(TARGETS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope", "mtl"], "unknown task 'nope'; valid choices:"),
        (["run", "silknow-synth", "nope"], "unknown method 'nope'; valid choices: colour_hist_logreg, mtl, mtl_fo"),
        (["run", "silknow-synth", "mtl", "--set", "colour=1"], "--set: method 'mtl' has no parameter 'colour'"),
        (["run", "silknow-synth", "mtl", "--seeds", "100000000000000000000"], "--seeds"),
        (["run", "silknow-synth", "mtl", "--set", "lr"], "expected key=value"),
        (["run", "silknow-synth", "mtl", "--config", "missing.toml"], "does not exist"),
        (["run", "silknow-synth", "mtl", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "silknow-synth", "mtl", "--plugin", "no_such_module_xyz"], "cannot import plugin"),
        (["run", "silknow-synth", "mtl", "--set", "backbone=resnet99"], "unknown backbone 'resnet99'"),
        (["run", "silknow-synth", "mtl", "--set", "finetune_blocks=5"], "finetune_blocks=5 but tiny_cnn has 4"),
    ],
)
def test_bad_input_gives_one_line_error(args: list[str], message: str, capsys) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_list_commands(capsys) -> None:
    code, out, _ = run_cli(capsys, "methods", "list")
    assert code == 0 and all(m in out for m in ("stl", "mtl_fo_rall", "mtl_rsem"))
    code, out, _ = run_cli(capsys, "tasks", "list")
    assert code == 0 and "silknow-synth" in out


@pytest.mark.parametrize("method", ["mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall"])
def test_every_table3_method_trains_one_epoch(method: str, tiny_task: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_quick(capsys, tiny_task, method, tmp_path, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert code == 0, err
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    seed_run = next(
        r
        for r in client.search_runs([client.get_experiment_by_name("tiny-synth").experiment_id])
        if r.data.tags["mlflow.runName"] == "seed-1"
    )
    logged = set(seed_run.data.metrics)
    assert {"train_loss", "train_loss_c", "val_criterion"} <= logged
    expected = {
        "mtl_fo": set(),
        "mtl_rsem": {"train_loss_sem"},
        "mtl_fo_rsem": {"train_loss_sem"},
        "mtl_rall": {"train_loss_sem", "train_loss_co", "train_loss_slf"},
        "mtl_fo_rall": {"train_loss_sem", "train_loss_co", "train_loss_slf"},
    }[method]
    assert expected <= logged
    assert not ({"train_loss_sem", "train_loss_co", "train_loss_slf"} - expected) & logged


def test_results_table_shows_the_task_metrics(tiny_task: Path, tmp_path: Path, capsys) -> None:
    task = tmp_path / "tiny-synth.toml"
    text = tiny_task.read_text().replace(
        'dataset = "silknow-synth"', 'dataset = "silknow-synth"\nmetrics = ["recall_macro", "accuracy"]'
    )
    task.write_text(text)
    code, out, err = run_quick(capsys, task, "mtl", tmp_path, "--tracking-uri", "none")
    assert code == 0, err
    header = next(line for line in out.splitlines() if "target" in line)
    assert "recall (macro)" in header and "OA" in header and "F1" not in header
    overall = next(line for line in out.splitlines() if "overall" in line)
    # the run-level mean exists for every metric, recall included; one seed has no std (ddof = 1)
    assert len(re.findall(r"\d+\.\d", overall)) == 2 and "±" not in overall and "–" not in overall


def test_a_failing_mlflow_close_does_not_lose_the_results(tiny_task: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    def server_gone(*args, **kwargs):
        raise ConnectionError("server went away")

    monkeypatch.setattr(mlflow.MlflowClient, "set_tag", server_gone)  # only end_run sets a tag after creation
    code, out, err = run_quick(capsys, tiny_task, "mtl", tmp_path)
    assert code == 0 and "overall" in out
    assert "could not close the MLflow run (ConnectionError: server went away)" in err
    summary = json.loads((_run_dirs(tmp_path, "mtl")[0] / "summary.json").read_text())
    assert summary["status"] == "complete"


def test_mlflow_going_away_mid_run_stops_logging_but_not_training(
    tiny_task: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    real_create, real_log_batch = mlflow.MlflowClient.create_run, mlflow.MlflowClient.log_batch
    server = {"down": False, "failed_calls": 0}

    def create_run(self, *args, **kwargs):  # the server goes away right after seed 2's run is created
        run = real_create(self, *args, **kwargs)
        server["down"] = kwargs.get("run_name") == "seed-2"
        return run

    def log_batch(self, *args, **kwargs):
        if server["down"]:
            server["failed_calls"] += 1
            raise ConnectionError("server went away")
        return real_log_batch(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "create_run", create_run)
    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", log_batch)
    code, out, err = run_quick(capsys, tiny_task, "mtl", tmp_path, "--seeds", "3")
    assert code == 0 and "overall" in out
    assert err.count("MLflow logging stopped") == 1 and "could not log epoch 1" in err
    assert "logging stopped part-way (ConnectionError: server went away)" in " ".join(out.split())
    assert server["failed_calls"] == 1  # no further attempts after the first failure
    server["down"] = False
    run_dir = _run_dirs(tmp_path, "mtl")[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2, 3]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny-synth").experiment_id])
    status = {r.data.tags["mlflow.runName"]: r.info.status for r in runs}
    assert status == {"mtl": "RUNNING", "seed-1": "FINISHED", "seed-2": "RUNNING"}
