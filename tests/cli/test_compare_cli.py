"""`artbench compare` on real silknow-synth runs made in this session (tiny task, one epoch): the table names its
tests, every printed statistic equals SciPy / statsmodels on the runs' files, the comparison is an MLflow run, and
mistakes are one line with exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from artbench.cli import main
from artbench.results.baselines import reported_results
from artbench.results.store import SUMMARY, read_run
from tests.conftest import run_cli

SEEDS = {"mtl": 2, "mtl_fo": 2, "colour_hist_logreg": 3}
# colour_hist_logreg gives the same values for every seed: SciPy's Welch t-test warns about the zero variance
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation:RuntimeWarning")


@pytest.fixture(scope="module")
def runs(tiny_task: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One training per method: mtl and mtl_fo (seeds 1-2, one epoch), colour_hist_logreg (seeds 1-3)."""
    out = tmp_path_factory.mktemp("compare-runs")
    for method, seeds in SEEDS.items():
        extra = ["--set", "max_epochs=1"] if method != "colour_hist_logreg" else []
        args = ["run", str(tiny_task), method, "--seeds", str(seeds), "--out", str(out), "--device", "cpu"]
        with pytest.raises(SystemExit) as exc:
            main([*args, "--tracking-uri", "none", *extra])
        assert exc.value.code in (0, None)
    return out


def _compare(capsys, tiny_task: Path, out: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "compare", str(tiny_task), *args, "--out", str(out), "--resamples", "500")


@pytest.fixture(scope="module")
def result(runs: Path, tiny_task: Path) -> dict:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer), pytest.raises(SystemExit) as exc:
        main(
            [
                "compare",
                str(tiny_task),
                *SEEDS,
                "--out",
                str(runs),
                "--resamples",
                "500",
                "--json",
                "--tracking-uri",
                "none",
            ]
        )
    assert exc.value.code in (0, None)
    return json.loads(buffer.getvalue())


def test_the_table_names_its_tests(runs: Path, tiny_task: Path, capsys) -> None:
    code, out, err = _compare(capsys, tiny_task, runs, *SEEDS, "--tracking-uri", "none")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "mtl_fo: paired t-test, Wilcoxon signed-rank" in flat  # seeds 1-2 on both sides
    assert "colour_hist_logreg: Welch t-test, Mann-Whitney U" in flat  # seeds 1-3 against 1-2
    assert "p-values are Holm-adjusted over all" in flat and "McNemar per target" in flat
    # two paired seeds: the exact two-sided Wilcoxon test cannot go below 2 / 2**2
    assert "with 2 paired seeds the two-sided Wilcoxon signed-rank test cannot go below p = 0.5" in flat
    assert "Friedman" in flat and "comparison: " in flat
    folder = Path(flat.split("comparison: ")[1].split()[0])
    assert {p.name for p in folder.iterdir()} == {"comparison.json", "comparison.csv", "cd-diagram.png"}
    assert folder.parent.parent.name == "_comparisons"


def _values(runs: Path, method: str, key: str) -> np.ndarray:
    record = read_run(next((runs / "tiny-synth" / method).iterdir()))
    return np.array(record.summary["metrics"][key]["values"], dtype=float)


def test_seed_statistics_equal_scipy(result: dict, runs: Path) -> None:
    checked = 0
    for row in result["rows"]:
        key = f"{row['target']}.{row['metric']}"
        a, b = _values(runs, row["method"], key), _values(runs, "mtl", key)
        assert row["diff"] == pytest.approx(a.mean() - b.mean(), abs=1e-15)
        assert row["paired"] == (row["method"] == "mtl_fo")
        rank = row["rank_test"]
        if row["paired"]:
            t = stats.ttest_rel(a, b)
            d = a - b
            w = stats.wilcoxon(d[d != 0], method=rank["method"]).pvalue if rank["note"] is None else None
        else:
            t = stats.ttest_ind(a, b, equal_var=False)
            w = stats.mannwhitneyu(a, b, method=rank["method"]).pvalue if rank["note"] is None else None
        if row["t_test"]["note"] is None:
            assert row["t_test"]["p"] == pytest.approx(t.pvalue, rel=1e-12)
            checked += 1
        if w is not None:
            assert rank["p"] == pytest.approx(w, rel=1e-12)
    assert checked > 5


def test_holm_and_mcnemar_equal_statsmodels(result: dict, runs: Path) -> None:
    slots = [t for r in result["rows"] for t in (r["t_test"], r["rank_test"], r["bootstrap"]) if t]
    slots += result["mcnemar"]
    p = np.array([np.nan if s["p"] is None else s["p"] for s in slots], dtype=float)
    finite = ~np.isnan(p)
    assert np.allclose(
        [s["p_holm"] for s, f in zip(slots, finite, strict=True) if f], multipletests(p[finite], method="holm")[1]
    )
    assert result["num_tests"] == finite.sum()
    for test in result["mcnemar"]:
        for pair in test["pairs"]:
            correct = []
            for method, seed in ((test["method"], pair["seed"]), ("mtl", pair["baseline_seed"])):
                table = read_run(next((runs / "tiny-synth" / method).iterdir())).predictions(seed)
                known = table[f"{test['target']}.true"] != ""
                correct.append((table[f"{test['target']}.pred"] == table[f"{test['target']}.true"])[known].to_numpy())
            a, b = correct
            contingency = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
            expected = sm_mcnemar(contingency, exact=bool(np.sum(a != b) < 25), correction=True).pvalue
            assert pair["p"] == pytest.approx(expected, rel=1e-12)
    pairs = {t["method"]: [(p["seed"], p["baseline_seed"]) for p in t["pairs"]] for t in result["mcnemar"]}
    assert pairs == {"mtl_fo": [(1, 1), (2, 2)], "colour_hist_logreg": [(1, 1), (2, 2)]}


def test_the_image_bootstrap_is_of_the_printed_difference(result: dict) -> None:
    for row in result["rows"]:
        boot = row["bootstrap"]
        assert boot is not None and boot["resamples"] == 500 and boot["images"] == 82
        assert boot["diff"] == pytest.approx(row["diff"], abs=1e-12), (row["method"], row["target"], row["metric"])
        assert 0 <= boot["p"] <= 1 and boot["ci_low"] <= boot["ci_high"]


def test_comparison_is_an_mlflow_run(runs: Path, tiny_task: Path, tmp_path: Path, capsys) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = _compare(capsys, tiny_task, runs, "mtl", "mtl_fo", "--tracking-uri", uri, "--metric", "f1_macro")
    assert code == 0, err
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny-synth")
    found = client.search_runs([experiment.experiment_id], "tags.`artbench.kind` = 'comparison'")
    assert len(found) == 1 and found[0].info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(found[0].info.run_id)}
    assert {"comparison.json", "comparison.csv", "cd-diagram.png"} <= artifacts
    assert "mtl_fo.overall.f1_macro.diff" in found[0].data.metrics


def test_reported_numbers_and_the_labelled_share_correlation(runs: Path, tiny_task: Path, capsys) -> None:
    code, out, err = _compare(
        capsys,
        tiny_task,
        runs,
        "mtl",
        "mtl_fo",
        "--reported",
        "baselines/silknet.toml",
        "--correlate",
        "labelled_fraction",
        "--metric",
        "f1_macro",
        "--json",
        "--tracking-uri",
        "none",
    )
    assert code == 0, err
    result = json.loads(out)
    paper = {r.method: r for r in reported_results("silknet")}
    reported = {(r["method"], r["target"]): r for r in result["reported"]}
    assert reported[("mtl", "place")]["reported"] == pytest.approx(paper["mtl"].f1_per_target["place"] / 100)
    assert reported[("mtl_fo", "overall")]["reported_std"] == pytest.approx(0.0111)
    assert all(r["source"] == "reported" for r in result["reported"])
    # the property comes from the task's data, as `artbench datasets stats` reports it
    code, stats_out, _ = run_cli(capsys, "datasets", "stats", str(tiny_task), "--json")
    shares = {t: s["labelled_fraction"] for t, s in json.loads(stats_out)["targets"].items()}
    assert result["correlation"]["values"] == pytest.approx(shares)
    by_source = {c["source"]: c for c in result["correlation"]["results"]}
    targets = by_source["reported"]["targets"]
    gains = [(paper["mtl_fo"].f1_per_target[t] - paper["mtl"].f1_per_target[t]) / 100 for t in targets]
    expected = stats.pearsonr([shares[t] for t in targets], gains)
    assert by_source["reported"]["pearson_r"] == pytest.approx(expected.statistic)
    assert by_source["reported"]["pearson_p"] == pytest.approx(expected.pvalue)
    gains = [next(r["diff"] for r in result["rows"] if r["target"] == t) for t in by_source["reproduced"]["targets"]]
    assert by_source["reproduced"]["gains"] == pytest.approx(gains)


def _copy_run(runs: Path, method: str, dest: Path, **summary_changes: object) -> Path:
    source = next((runs / "tiny-synth" / method).iterdir())
    shutil.copytree(source, dest)
    summary = json.loads((dest / SUMMARY).read_text())
    summary.update(summary_changes)
    summary = {k: v for k, v in summary.items() if v is not None}
    (dest / SUMMARY).write_text(json.dumps(summary))
    return dest


def test_mistakes_are_one_line_errors(runs: Path, tiny_task: Path, tmp_path: Path, capsys) -> None:
    incomplete = _copy_run(runs, "mtl", tmp_path / "incomplete", status="incomplete")
    old = _copy_run(runs, "mtl_fo", tmp_path / "old", format_version=None)
    for seed in (1, 2):
        (old / f"seed-{seed}" / "scores.npz").unlink()
    cases = [
        (["nope", "mtl"], "'nope' is neither a method nor a run folder; methods with runs of 'tiny-synth'"),
        (["mtl_rall", "mtl"], "no complete run of 'mtl_rall' on 'tiny-synth'"),
        (["mtl", str(incomplete)], "is incomplete (seeds [1, 2] of 2)"),
        (["mtl", str(tmp_path)], "is not an artbench run folder"),
        (["mtl"], "give at least two methods or runs"),
        (["mtl", "mtl_fo", "--metric", "nope"], "unknown metric 'nope'"),
        (["mtl", "mtl_fo", "--correlate", "colour"], "--correlate 'colour' is not a target property"),
        (["mtl", "mtl_fo", "--baseline", str(tmp_path)], "is not an artbench run folder"),
        (["mtl", str(old), "--metric", "top3_accuracy"], "have format 1 (no scores.npz), so top3_accuracy cannot"),
    ]
    for args, message in cases:
        code, _, err = _compare(capsys, tiny_task, runs, *args, "--tracking-uri", "none")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    code, _, err = run_cli(capsys, "compare", str(tiny_task), "mtl", "mtl_fo", "--out", str(tmp_path / "empty"))
    assert code == 2 and "no complete run of 'mtl' on 'tiny-synth'" in err
    code, _, err = run_cli(
        capsys, "compare", "silknow-synth", str(next((runs / "tiny-synth" / "mtl").iterdir())), "mtl"
    )
    assert code == 2 and "is a run of task 'tiny-synth', not of 'silknow-synth'" in err
    # a format-1 run still compares on the metrics its predictions.csv holds
    code, _, err = _compare(capsys, tiny_task, runs, "mtl", str(old), "--metric", "f1_macro", "--tracking-uri", "none")
    assert code == 0, err
