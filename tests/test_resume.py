"""Resumable runs (issue 14): per-epoch checkpoints of the training loop, and `artbench run --resume` after a
SIGKILL or a SIGTERM, with finished seeds kept byte for byte and resumed seeds ending as uninterrupted ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from artbench.core.targets import TargetSpec
from artbench.data.cache import ImageCache
from artbench.methods import METHODS, RunContext
from artbench.methods.torch import trainer
from artbench.methods.torch.objective import SilkNetObjective
from tests.conftest import run_cli

TARGET = TargetSpec("place", classes=("a", "b", "c"))


def _fit(tmp_path: Path, stop_at_epoch: int | None = None, max_epochs: int = 4):
    """Fit a tiny SilkNet with every random draw the loop makes (shuffling, dropout, augmentation, L_sem triplets,
    x' of L_slf); with ``stop_at_epoch``, a KeyboardInterrupt hits that epoch after its training steps and before
    its checkpoint (as a kill during the epoch would)."""
    rng = np.random.default_rng(0)
    cache = ImageCache(rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8))
    labels = [rng.integers(0, 3, 40)]
    method = METHODS.get("mtl_fo_rall").build(
        {"backbone": "tiny_cnn", "weights": "none", "finetune_blocks": 2, "joint_layers": (8,), "batch_size": 8,
         "max_epochs": max_epochs, "patience": 3, "image_size": 16, "channels_last": False, "augment": True,
         "gamma": 2.0, "lambda_aux": 1.0, "alpha_sem": 0.5, "alpha_co": 0.0, "alpha_slf": 0.5}
    )  # fmt: skip
    torch.manual_seed(1)
    model = method.build_network([TARGET], torch.device("cpu"))
    ctx = RunContext(torch.device("cpu"), amp=False, checkpoint_dir=tmp_path / "checkpoints")
    criterion = method._criterion(cache, [TARGET], labels, np.arange(30, 40), ctx)
    calls = {"n": 0}

    def interrupted_criterion(m):
        calls["n"] += 1
        if calls["n"] == stop_at_epoch:
            raise KeyboardInterrupt
        return criterion(m)

    objective = SilkNetObjective(method, ["multiclass"])
    result = trainer.fit(
        model, objective, cache, labels, np.arange(30), interrupted_criterion, method, ctx, seed=3
    )  # fmt: skip
    return model, result, ctx


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_a_fit_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    reference, expected, _ = _fit(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "resumed", stop_at_epoch=3)
    saved = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert saved[-1] == "model-epoch-0002.pt" and not [n for n in saved if n.endswith(".tmp")]
    model, result, ctx = _fit(tmp_path / "resumed")
    assert _same_weights(model, reference)
    assert result.history == expected.history and result.best_epoch == expected.best_epoch
    assert (result.epochs_run, result.resumed_epochs, ctx.cost.resumed_epochs) == (4, 2, 2)
    assert result.images == expected.images == 4 * 24  # 30 rows, batches of 8, the last partial one dropped
    assert ctx.cost.epochs == 4 and ctx.cost.images == 96 and ctx.cost.seconds >= result.seconds > 0


def test_a_finished_fit_is_restored_without_training(tmp_path: Path, monkeypatch) -> None:
    reference, expected, _ = _fit(tmp_path, max_epochs=2)
    monkeypatch.setattr(SilkNetObjective, "__call__", lambda *a: pytest.fail("a finished model trained again"))
    model, result, _ = _fit(tmp_path, max_epochs=2)
    assert _same_weights(model, reference) and result.history == expected.history
    assert (result.epochs_run, result.resumed_epochs) == (2, 2)


def test_a_damaged_or_foreign_checkpoint_is_not_resumed(tmp_path: Path, capsys) -> None:
    reference, _, _ = _fit(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "damaged", stop_at_epoch=3)
    latest = tmp_path / "damaged" / "checkpoints" / "model-epoch-0002.pt"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated, as by a crash of the machine
    model, result, _ = _fit(tmp_path / "damaged")
    assert "checkpoint model-epoch-0002.pt is unreadable" in capsys.readouterr().err
    assert _same_weights(model, reference) and result.resumed_epochs < 2  # restarted from an older point
    _, result, _ = _fit(tmp_path / "damaged", max_epochs=5)  # other settings: the checkpoints are not resumed
    assert "belong to other training settings" in capsys.readouterr().err and result.resumed_epochs == 0


# --- `artbench run --resume` after a kill --------------------------------------------------------------------------

CLI = [sys.executable, "-c", "from artbench.cli import main; main()"]
RESUME_EPOCHS = ["--set", "max_epochs=3", "--set", "patience=3"]


def _start_run(task: Path, out: Path, seeds: int) -> subprocess.Popen:
    args = ["run", str(task), "mtl", "--seeds", str(seeds), "--out", str(out), "--device", "cpu", *RESUME_EPOCHS]
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _when_checkpointed(process: subprocess.Popen, out: Path, seed: int, timeout: float = 600) -> Path:
    """Wait until seed ``seed`` has written the checkpoint of an epoch >= 1; return the run folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(out.glob(f"tiny-synth/mtl/*/seed-{seed}.tmp/checkpoints/model-epoch-*.pt"))
        if found:
            return found[0].parents[2]
        if process.poll() is not None:
            pytest.fail(f"the run ended before seed {seed} checkpointed: {process.communicate()[1][-2000:]}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"no checkpoint of seed {seed} within {timeout} s")


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _runs(out: Path) -> dict[str, list]:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny-synth").experiment_id])
    by_name: dict[str, list] = {}
    for r in runs:
        by_name.setdefault(r.data.tags["mlflow.runName"], []).append(r)
    return by_name


def _scores(metrics: dict) -> dict:
    """metrics.json without what may differ between two runs of the same seed: the time it took, and whether this
    process or an earlier one computed a cache."""
    return {k: v for k, v in metrics.items() if k != "cost" and not k.endswith(("_seconds", "_built"))}


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_task: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 3-seed run SIGKILLed once seed 2 has checkpointed an epoch (so during a later epoch), then resumed."""
    out = tmp_path_factory.mktemp("killed")
    process = _start_run(tiny_task, out, seeds=3)
    run_dir = _when_checkpointed(process, out, seed=2)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    after_kill = {
        "summary": json.loads((run_dir / "summary.json").read_text()),
        "seed-1": _folder_bytes(run_dir / "seed-1"),
        "tracking": (run_dir / "tracking.json").read_text(),
        "checkpoints": sorted(p.name for p in (run_dir / "seed-2.tmp" / "checkpoints").glob("*.pt")),
        "mlflow": {name: [r.info.status for r in runs] for name, runs in _runs(out).items()},
    }
    (run_dir / "seed-3").mkdir()  # a half-copied seed folder: no marker, so never taken for a finished seed
    (run_dir / "seed-3" / "metrics.json").write_text("{")
    from artbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", str(tiny_task), "mtl", "--resume", "--out", str(out), "--device", "cpu", *RESUME_EPOCHS])
    assert exc.value.code == 0
    return out, run_dir, after_kill


def test_a_killed_run_resumes_with_its_finished_seeds_untouched(killed_and_resumed) -> None:
    out, run_dir, after_kill = killed_and_resumed
    assert after_kill["summary"]["status"] == "incomplete" and after_kill["summary"]["seeds_completed"] == [1]
    assert after_kill["checkpoints"] and after_kill["mlflow"] == {
        "mtl": ["RUNNING"], "seed-1": ["FINISHED"], "seed-2": ["RUNNING"]
    }  # fmt: skip
    assert _folder_bytes(run_dir / "seed-1") == after_kill["seed-1"]  # byte for byte
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["seeds_completed"] == [1, 2, 3]
    assert [c["seed"] for c in summary["cost"]["seeds"]] == [1, 2, 3] and summary["cost"]["total"]["epochs"] == 9
    assert not list(run_dir.glob("seed-*.tmp")) and len(list(out.glob("tiny-synth/mtl/*"))) == 1
    assert (run_dir / "seed-3.incomplete" / "metrics.json").read_text() == "{"  # set aside, seed 3 trained
    seed_2 = json.loads((run_dir / "seed-2" / "metrics.json").read_text())
    assert seed_2["cost"]["resumed_epochs"] == int(after_kill["checkpoints"][-1][-7:-3]) >= 1
    # MLflow: the same parent run, finished; the killed seed run marked KILLED, the resumed one finished
    assert (run_dir / "tracking.json").read_text() == after_kill["tracking"]
    runs = _runs(out)
    assert [r.info.status for r in runs["mtl"]] == ["FINISHED"]
    assert sorted(r.info.status for r in runs["seed-2"]) == ["FINISHED", "KILLED"]
    assert [r.info.status for r in runs["seed-3"]] == ["FINISHED"]
    parent = json.loads(after_kill["tracking"])["parent_run_id"]
    assert runs["mtl"][0].info.run_id == parent and runs["mtl"][0].data.tags["artbench.status"] == "complete"
    resumed = next(r for r in runs["seed-2"] if r.info.status == "FINISHED")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(resumed.info.run_id, "val_criterion")] == [1, 2, 3]
    assert resumed.data.metrics["cost.resumed_epochs"] >= 1 and resumed.data.params["cost.device"] == "cpu"


def test_a_seed_resumed_mid_epoch_ends_with_the_metrics_of_an_uninterrupted_one(
    killed_and_resumed, tiny_task: Path, tmp_path: Path
) -> None:
    from artbench.core.params import parse_set_option
    from artbench.runner import resolve_method, run
    from artbench.tasks import load_task

    _, run_dir, _ = killed_and_resumed
    task = load_task(str(tiny_task))
    entry = METHODS.get("mtl")
    method = resolve_method(entry, task, set_layer=dict(map(parse_set_option, ["max_epochs=3", "patience=3"])))
    reference = run(
        task, entry, method, seeds=3, only_seeds=[2], out_dir=tmp_path, device=torch.device("cpu"), tracking_uri=None
    )
    expected = json.loads((reference.run_dir / "seed-2" / "metrics.json").read_text())
    resumed = json.loads((run_dir / "seed-2" / "metrics.json").read_text())
    assert _scores(resumed) == _scores(expected)
    assert (run_dir / "seed-2" / "predictions.csv").read_bytes() == (
        reference.run_dir / "seed-2" / "predictions.csv"
    ).read_bytes()


def test_sigterm_stops_like_ctrl_c_and_keeps_the_checkpoint(tiny_task: Path, tmp_path: Path, capsys) -> None:
    process = _start_run(tiny_task, tmp_path, seeds=1)
    run_dir = _when_checkpointed(process, tmp_path, seed=1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130 and "interrupted" in err and "--resume" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "incomplete" and summary["seeds_completed"] == []
    assert list((run_dir / "seed-1.tmp" / "checkpoints").glob("model-epoch-*.pt"))
    assert [p.name for p in (run_dir / "seed-1.tmp").iterdir()] == ["checkpoints"]
    assert {name: [r.info.status for r in runs] for name, runs in _runs(tmp_path).items()} == {
        "mtl": ["KILLED"], "seed-1": ["KILLED"]
    }  # fmt: skip
    code, out, _ = run_cli(
        capsys, "run", str(tiny_task), "mtl", str(run_dir), "--resume", "--out", str(tmp_path), "--device", "cpu",
        *RESUME_EPOCHS,
    )  # fmt: skip
    assert code == 0 and "overall" in out
    metrics = json.loads((run_dir / "seed-1" / "metrics.json").read_text())
    assert metrics["cost"]["resumed_epochs"] >= 1 and metrics["cost"]["epochs"] == 3
    code, out, _ = run_cli(capsys, "run", str(tiny_task), "mtl", "--resume", "--out", str(tmp_path), *RESUME_EPOCHS)
    assert code == 0 and "nothing to resume: seeds 1 were already finished" in out


def test_only_a_seed_folder_matching_its_marker_is_complete(tmp_path: Path) -> None:
    import pandas as pd

    from artbench.results.store import RunWriter, completed_seeds, seed_complete

    writer = RunWriter(tmp_path, "task", "m")
    for seed in (1, 2, 3, 4):
        (writer.seed_tmp(seed) / "checkpoints").mkdir(parents=True)
        (writer.seed_tmp(seed) / "checkpoints" / "model-epoch-0001.pt").write_bytes(b"x")
        preds = pd.DataFrame({"image": ["a.png"], "t.true": ["x"], "t.pred": ["y"]})
        writer.write_seed(seed, {"seed": seed}, preds, {"t": np.eye(2)[:1]})
    assert completed_seeds(writer.run_dir) == [1, 2, 3, 4]
    assert not (writer.run_dir / "seed-1" / "checkpoints").exists()  # checkpoints are not published
    (writer.run_dir / "seed-2" / "metrics.json").write_text('{"seed": 9}')  # same size, other bytes
    metrics = writer.run_dir / "seed-3" / "predictions.csv"
    metrics.write_bytes(metrics.read_bytes()[:-1])  # truncated
    (writer.run_dir / "seed-4" / "complete.json").unlink()
    assert completed_seeds(writer.run_dir) == [1] and not seed_complete(writer.run_dir / "seed-2")
    assert writer.set_aside_incomplete_seed(4) == writer.run_dir / "seed-4.incomplete"
    assert writer.set_aside_incomplete_seed(1) is None and (writer.run_dir / "seed-1").is_dir()


# --- the other torch families share the epoch loop, and so resume the same way --------------------------------------
TINY_NETWORK = ["--set", "backbone=tiny_cnn", "--set", "weights=none"]


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("multimodal_image_only", TINY_NETWORK),  # its own SGD with decay, crops and flips from the loop's generator
        ("omniart_mtl", TINY_NETWORK),  # a head trained on cached frozen features
        ("tl_finetune", TINY_NETWORK),  # a whole network, one sub-model per target
    ],
)
def test_every_torch_family_resumes_an_interrupted_seed_to_the_uninterrupted_result(
    method: str, extra: list[str], tiny_task: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    args = ["run", str(tiny_task), method, "--device", "cpu", "--tracking-uri", "none", *extra]
    args += ["--set", "max_epochs=3", "--set", "patience=3"]
    code, _, err = run_cli(capsys, *args, "--out", str(tmp_path / "reference"))
    assert code == 0, err
    real_save = trainer.Checkpoints.save

    def save_then_stop(self, state, keep):  # a kill after the second epoch's checkpoint
        real_save(self, state, keep)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Checkpoints, "save", save_then_stop)
    code, _, err = run_cli(capsys, *args, "--out", str(tmp_path / "resumed"))
    assert code == 130 and "--resume" in err
    monkeypatch.setattr(trainer.Checkpoints, "save", real_save)
    code, _, err = run_cli(capsys, *args, "--out", str(tmp_path / "resumed"), "--resume")
    assert code == 0, err
    (reference,) = (tmp_path / "reference").glob(f"tiny-synth/{method}/*/seed-1")
    (resumed,) = (tmp_path / "resumed").glob(f"tiny-synth/{method}/*/seed-1")
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["cost"]["resumed_epochs"] == 2
    assert _scores(metrics) == _scores(json.loads((reference / "metrics.json").read_text()))
    assert (resumed / "predictions.csv").read_bytes() == (reference / "predictions.csv").read_bytes()
