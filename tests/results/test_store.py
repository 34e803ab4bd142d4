"""The run-folder format: atomic seed folders, scores aligned with predictions, readers for old and unknown formats."""

import json

import numpy as np
import pandas as pd
import pytest

from artbench.core.errors import ArtbenchError
from artbench.results.store import FORMAT_VERSION, RunWriter, find_runs, latest_complete_run, read_run


def _write_run(out, method="m", status="complete", seeds=(1, 2)):
    writer = RunWriter(out, "task", method)
    writer.write_config({"params": {"lr": 0.1}})
    writer.write_environment({"torch": "x"})
    for seed in seeds:
        preds = pd.DataFrame({"image": ["a.png", "b.png"], "t.true": ["x", ""], "t.pred": ["x", "y"]})
        writer.write_seed(seed, {"seed": seed, "value": float("nan")}, preds, {"t": np.eye(2)[[0, 1]] * seed})
    writer.write_summary(status, len(seeds), list(seeds), metrics={})
    return writer.run_dir


def test_a_written_run_reads_back(tmp_path) -> None:
    run_dir = _write_run(tmp_path)
    record = read_run(run_dir)
    assert (record.task, record.method, record.status, record.seeds) == ("task", "m", "complete", [1, 2])
    assert record.format_version == FORMAT_VERSION and record.config["params"]["lr"] == 0.1
    assert record.metrics(2)["value"] is None  # NaN stays standard JSON
    assert record.predictions(1)["t.true"].tolist() == ["x", ""]
    np.testing.assert_array_equal(record.scores(2)["t"], np.eye(2) * 2)
    assert not list(run_dir.glob("*.tmp"))
    with pytest.raises(ArtbenchError, match="has no finished seed 3"):
        record.metrics(3)


def test_latest_complete_run_skips_incomplete_ones(tmp_path) -> None:
    first = _write_run(tmp_path)
    _write_run(tmp_path, status="incomplete", seeds=(1,))
    assert latest_complete_run(tmp_path, "task", "m").run_dir == first
    assert len(find_runs(tmp_path, "task")) == 2
    with pytest.raises(ArtbenchError, match=r"no complete run of 'other' on 'task'.*artbench run task other"):
        latest_complete_run(tmp_path, "task", "other")


def test_a_format_1_run_reads_but_has_no_scores(tmp_path) -> None:
    """Run folders written before format_version existed (artbench 0.1, first round) stay readable."""
    run_dir = tmp_path / "task" / "mtl" / "old"
    (run_dir / "seed-1").mkdir(parents=True)
    summary = {
        "task": "task",
        "method": "mtl",
        "run_id": "old",
        "status": "complete",
        "seeds_requested": 1,
        "seeds_completed": [1],
        "metrics": {"overall.f1_macro": {"mean": 0.3, "std": None, "values": [0.3]}},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "seed-1" / "metrics.json").write_text(json.dumps({"overall": {"f1_macro": 0.3}}))
    record = read_run(run_dir)
    assert record.format_version == 1 and record.metrics(1)["overall"]["f1_macro"] == 0.3
    with pytest.raises(ArtbenchError, match=r"has format 1, written before scores.npz existed; run it again"):
        record.scores(1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format_version": 99, "status": "complete"}', "unknown format \\(format_version 99\\)"),
        ('{"format_version": "2"}', "unknown format"),
        ("not json", "cannot read .*summary.json.*damaged"),
    ],
)
def test_unknown_or_damaged_formats_are_one_line_errors(tmp_path, content: str, message: str) -> None:
    (tmp_path / "summary.json").write_text(content)
    with pytest.raises(ArtbenchError, match=message):
        read_run(tmp_path)
    with pytest.raises(ArtbenchError, match="is not an artbench run folder"):
        read_run(tmp_path / "nothing")
