"""`artbench.results.compare` on hand-made run folders (written through RunWriter) with all three target kinds:
every statistic against SciPy / statsmodels / the metric functions on the same inputs, and the §5.2 correlation
of the SilkNet paper from its reported numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from artbench.core.errors import ArtbenchError
from artbench.core.targets import MISSING, TargetSpec
from artbench.core.task import parse_task
from artbench.datasets.silknow_reference import LABELLED_PERCENT
from artbench.evaluation import significance
from artbench.evaluation.aggregate import flatten_metrics, summarise
from artbench.evaluation.metrics import evaluate_target, run_level
from artbench.results import compare as C
from artbench.results.baselines import reported_results
from artbench.results.store import SUMMARY, RunWriter, read_run

N = 160
RESAMPLES = 400
SPECS = [
    TargetSpec("style", "multiclass", ("a", "b", "c", "d", "e"), ("bg",)),
    TargetSpec("motifs", "multilabel", ("x", "y", "z")),
    TargetSpec("year", "regression"),
]
UNDER = {"style": ["d", "e"], "motifs": [], "year": []}
THRESHOLDS = {"f1_samples": 0.3, "f2_samples": 0.5, "f1_micro": 0.6}
TASK = parse_task(
    {
        "name": "hand",
        "dataset": "csv",
        "targets": [
            {"name": "style", "background": ["bg"]},
            {"name": "motifs", "kind": "multilabel"},
            {"name": "year", "kind": "regression"},
        ],
        "metrics": ["f1_macro", "accuracy", "f1_underrepresented", "f2_samples", "mae"],
    },
    "hand",
)
ALL_METRICS = [
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_underrepresented",
    "mean_class_accuracy",
    "top3_accuracy",
    "f1_samples",
    "f2_samples",
    "f1_micro",
    "mae",
    "rmse",
    "within_50",
]


def _truth(rng: np.random.Generator) -> dict[str, np.ndarray]:
    style = rng.choice(6, size=N, p=[0.35, 0.25, 0.2, 0.08, 0.07, 0.05])  # 5 = background
    style[rng.random(N) < 0.15] = MISSING
    motifs = (rng.random((N, 3)) < [0.5, 0.3, 0.15]).astype(np.int8)
    motifs[motifs.sum(axis=1) == 0, 0] = 1  # a known row has a label (predictions.csv shows none as missing)
    motifs[rng.random(N) < 0.2] = MISSING
    year = rng.normal(1700, 80, N)
    year[rng.random(N) < 0.1] = np.nan
    return {"style": style, "motifs": motifs, "year": year}


def _scores(truth: dict[str, np.ndarray], skill: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Scores that follow the labels with weight ``skill``, plus noise."""
    style = rng.random((N, 6)) + skill * np.eye(6)[np.where(truth["style"] < 0, 0, truth["style"])]
    motifs = np.clip(rng.random((N, 3)) * 0.7 + skill * 0.5 * np.clip(truth["motifs"], 0, 1), 0, 1)
    year = np.nan_to_num(truth["year"], nan=1700.0) + rng.normal(0, 120 / (1 + skill), N)
    return {"style": (style / style.sum(axis=1, keepdims=True)).astype(np.float32), "motifs": motifs, "year": year}


def write_run(out: Path, method: str, truth: dict[str, np.ndarray], per_seed: dict[int, dict[str, np.ndarray]]) -> Path:
    """A complete run folder as the runner writes it, metrics from the registered metric functions."""
    writer = RunWriter(out, TASK.name, method)
    flat = []
    for seed, scores in per_seed.items():
        columns: dict[str, list[str]] = {"image": [f"/data/img/{i:04d}.png" for i in range(N)]}
        targets = {}
        for spec in SPECS:
            result = evaluate_target(
                spec,
                truth[spec.name],
                scores[spec.name],
                underrepresented=UNDER[spec.name],
                thresholds=THRESHOLDS if spec.kind == "multilabel" else None,
            )
            targets[spec.name] = {"kind": spec.kind, "classes": list(spec.class_names), **result}
            if spec.kind == "multiclass":
                predicted = scores[spec.name].argmax(axis=1)
            elif spec.kind == "multilabel":
                predicted = (scores[spec.name] >= THRESHOLDS["f2_samples"]).astype(np.int8)
            else:
                predicted = scores[spec.name]
            columns[f"{spec.name}.true"] = spec.decode(truth[spec.name])
            columns[f"{spec.name}.pred"] = spec.decode(predicted)
        metrics = {"seed": seed, "targets": targets, "overall": run_level(targets)}
        writer.write_seed(seed, metrics, pd.DataFrame(columns), scores)
        flat.append(flatten_metrics(metrics))
    writer.write_summary("complete", len(per_seed), list(per_seed), metrics=summarise(flat))
    return writer.run_dir


@pytest.fixture(scope="module")
def hand_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Baseline ``weak`` (seeds 1-5), ``strong`` (seeds 1-5, paired) and ``other`` (seeds 1-4: unpaired)."""
    out = tmp_path_factory.mktemp("hand-runs")
    rng = np.random.default_rng(7)
    truth = _truth(rng)
    skills = {"weak": 0.4, "strong": 0.9, "other": 0.6}
    seeds = {"weak": range(1, 6), "strong": range(1, 6), "other": range(1, 5)}
    dirs = {m: write_run(out, m, truth, {s: _scores(truth, skills[m], rng) for s in seeds[m]}) for m in skills}
    return {"out": out, "truth": truth, "dirs": dirs}


@pytest.fixture(scope="module")
def result(hand_runs: dict) -> dict:
    runs = C.resolve_runs(TASK, ["weak", "strong", "other"], hand_runs["out"])
    return C.compare_runs(TASK, runs, baseline="weak", metrics=ALL_METRICS, resamples=RESAMPLES)


def _row(result: dict, method: str, target: str, metric: str) -> dict:
    return next(r for r in result["rows"] if (r["method"], r["target"], r["metric"]) == (method, target, metric))


def _values(hand_runs: dict, method: str, key: str) -> np.ndarray:
    return np.array(read_run(hand_runs["dirs"][method]).summary["metrics"][key]["values"], dtype=float)


@pytest.mark.parametrize(("target", "metric"), [("style", "f1_macro"), ("overall", "accuracy"), ("year", "mae")])
def test_paired_seed_tests_equal_scipy(result: dict, hand_runs: dict, target: str, metric: str) -> None:
    row = _row(result, "strong", target, metric)
    a, b = _values(hand_runs, "strong", f"{target}.{metric}"), _values(hand_runs, "weak", f"{target}.{metric}")
    assert row["paired"] and row["diff"] == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert row["t_test"]["test"] == "paired t-test"
    assert row["t_test"]["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert row["rank_test"]["test"] == "Wilcoxon signed-rank"
    assert row["rank_test"]["p"] == pytest.approx(stats.wilcoxon(a - b, method="exact").pvalue, rel=1e-12)
    # with 5 seeds the two-sided exact Wilcoxon test cannot go below 2 / 2**5
    assert row["rank_test"]["min_p"] == 0.0625 and row["rank_test"]["can_reach"] is False
    assert result["summary"]["strong"][target][metric]["std"] == pytest.approx(np.std(a, ddof=1), rel=1e-12)


def test_unpaired_seed_tests_equal_scipy(result: dict, hand_runs: dict) -> None:
    row = _row(result, "other", "style", "f1_macro")
    a, b = _values(hand_runs, "other", "style.f1_macro"), _values(hand_runs, "weak", "style.f1_macro")
    assert not row["paired"] and (row["n_a"], row["n_b"]) == (4, 5)
    assert row["t_test"]["test"] == "Welch t-test"
    assert row["t_test"]["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert row["rank_test"]["test"] == "Mann-Whitney U"
    assert row["rank_test"]["p"] == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue, rel=1e-12)
    assert row["rank_test"]["min_p"] == pytest.approx(2 / 126)  # 2 / C(9, 4)


def test_aso_is_the_significance_module_on_oriented_scores(result: dict, hand_runs: dict) -> None:
    a, b = _values(hand_runs, "strong", "style.f1_macro"), _values(hand_runs, "weak", "style.f1_macro")
    assert _row(result, "strong", "style", "f1_macro")["aso"] == significance.aso(a, b, rng=0)
    # MAE: lower is better, so almost stochastic order is taken on the negated errors
    a, b = _values(hand_runs, "strong", "year.mae"), _values(hand_runs, "weak", "year.mae")
    assert _row(result, "strong", "year", "mae")["aso"] == significance.aso(-a, -b, rng=0)
    assert _row(result, "strong", "year", "mae")["aso"] < 0.5  # the stronger method has smaller errors


def test_mcnemar_equals_statsmodels_per_seed_pair(result: dict, hand_runs: dict) -> None:
    test = next(t for t in result["mcnemar"] if t["method"] == "strong" and t["target"] == "style")
    truth = hand_runs["truth"]["style"]
    known = truth != MISSING
    for pair in test["pairs"]:
        correct = []
        for method, seed in (("strong", pair["seed"]), ("weak", pair["baseline_seed"])):
            table = read_run(hand_runs["dirs"][method]).predictions(seed)
            correct.append((table["style.pred"] == table["style.true"]).to_numpy()[known])
        a, b = correct
        contingency = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
        exact = np.sum(a != b) < significance.MCNEMAR_EXACT_BELOW
        expected = sm_mcnemar(contingency, exact=exact, correction=True)
        assert pair["p"] == pytest.approx(expected.pvalue, rel=1e-12)
        assert (pair["a_only"], pair["b_only"]) == (np.sum(a & ~b), np.sum(~a & b))
    assert [p["seed"] for p in test["pairs"]] == [p["baseline_seed"] for p in test["pairs"]] == [1, 2, 3, 4, 5]
    assert test["p"] == max(p["p"] for p in test["pairs"])


def test_holm_equals_statsmodels_over_every_printed_p(result: dict) -> None:
    slots = [t for r in result["rows"] for t in (r["t_test"], r["rank_test"], r["bootstrap"]) if t] + result["mcnemar"]
    p = np.array([s["p"] for s in slots])
    finite = ~np.isnan(p)
    expected = multipletests(p[finite], method="holm")[1]
    assert np.allclose([s["p_holm"] for s in np.array(slots)[finite]], expected, rtol=1e-12, atol=0)
    assert result["num_tests"] == finite.sum() > 50


def test_observed_values_are_the_runs_metrics(hand_runs: dict) -> None:
    runs = C.resolve_runs(TASK, ["weak", "strong", "other"], hand_runs["out"])
    systems = C.load_systems(TASK, runs, ALL_METRICS, resampling=True)
    boot = C.image_bootstrap(TASK, systems, ALL_METRICS, 10)
    bootstrapped = {m for kind in C.BOOTSTRAPPED.values() for m in kind}
    assert {(t, m) for t, m in boot} == {
        (row, m) for row in ["style", "motifs", "year", "overall"] for m in ALL_METRICS if C.applicable(TASK, row, m)
    } - {("motifs", m) for m in ALL_METRICS if m not in bootstrapped}
    for (row, metric), values in boot.items():
        for i, (label, seed) in enumerate(zip(systems.labels, systems.seeds, strict=True)):
            expected = runs[label].summary["metrics"][f"{row}.{metric}"]["values"][runs[label].seeds.index(seed)]
            assert values["observed"][i] == pytest.approx(expected, rel=1e-12, abs=1e-15), (row, metric, label)


def test_resampled_values_are_the_metrics_of_the_resampled_images(hand_runs: dict) -> None:
    """The vectorised resampling equals evaluate_target on the multiset of images each count row draws."""
    runs = C.resolve_runs(TASK, ["strong"], hand_runs["out"])
    systems = C.load_systems(TASK, runs, ALL_METRICS, resampling=True)
    boot = C.image_bootstrap(TASK, systems, ALL_METRICS, 40, rng=3)
    weights = significance.bootstrap_counts(N, 40, np.random.default_rng(3))
    truth, record = hand_runs["truth"], runs["strong"]
    present = np.unique(truth["style"][(truth["style"] >= 0) & (truth["style"] < 5)])
    checked = 0
    for r in range(40):
        drawn = np.repeat(np.arange(N), weights[r].astype(int))
        if not np.isin(present, truth["style"][drawn]).all():
            continue  # a present class left out: its F1 counts as 0 here (below), evaluate_target would drop it
        checked += 1
        for i, seed in enumerate(systems.seeds):
            scores = record.scores(seed)
            for spec in SPECS:
                expected = evaluate_target(
                    spec,
                    truth[spec.name][drawn],
                    scores[spec.name][drawn],
                    underrepresented=UNDER[spec.name],
                    thresholds=THRESHOLDS if spec.kind == "multilabel" else None,
                )
                for metric in C.BOOTSTRAPPED[spec.kind]:
                    if metric in ALL_METRICS:
                        got = boot[(spec.name, metric)]["resampled"][i, r]
                        assert got == pytest.approx(expected[metric], rel=1e-6), (spec.name, metric, r)
    assert checked > 20


def test_a_class_missing_from_a_resample_keeps_its_place_in_the_macro_average() -> None:
    """SilkNet §5.1 averages over the classes present in the test split; a resample keeps that set (F1 = 0)."""
    spec = SPECS[0]
    y = np.array([0, 0, 1, 1, 2])
    target = C.TargetPredictions(spec, y, np.array([[0, 0, 1, 1, 2]]), None)
    design, statistics = C._multiclass_statistics(target, ["f1_macro", "recall_macro"])
    sums = design.prepare()(np.array([[1, 1, 1, 2, 0]], dtype=np.float32))  # class 2 not drawn
    values = statistics(sums)
    assert values["f1_macro"][0, 0] == pytest.approx(2 / 3)
    assert values["recall_macro"][0, 0] == pytest.approx(2 / 3)


def test_image_bootstrap_equals_the_significance_module(hand_runs: dict, result: dict) -> None:
    """For one seed pair, the paired bootstrap of OA and macro-F1 equals significance.paired_bootstrap."""
    dirs = hand_runs["dirs"]
    single = {m: read_run(dirs[m]) for m in ("weak", "strong")}
    for record in single.values():
        record.summary["seeds_completed"] = [1]
    systems = C.load_systems(TASK, single, ["accuracy", "f1_macro"], resampling=True)
    boot = C.image_bootstrap(TASK, systems, ["accuracy", "f1_macro"], RESAMPLES)
    known = hand_runs["truth"]["style"] != MISSING
    y = hand_runs["truth"]["style"]
    preds = {m: read_run(dirs[m]).scores(1)["style"].argmax(axis=1) for m in ("weak", "strong")}
    present = np.unique(y[known & (y < 5)])
    weights = significance.bootstrap_counts(N, RESAMPLES, np.random.default_rng(0))[:, known]
    for metric, fn in (
        ("accuracy", significance.accuracy_resampled),
        ("f1_macro", lambda w, t, p: significance.macro_f1_resampled(w, t, p, present)),
    ):
        ours = C.bootstrap_comparison(boot[("style", metric)], systems, "strong", "weak")
        theirs = significance.paired_bootstrap(
            fn, y[known], preds["strong"][known], preds["weak"][known], weights=weights
        )
        for key in ("diff", "ci_low", "ci_high", "p"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-12), (metric, key)
    # the printed comparison is that of the seed means, observed difference = the table's difference
    row = _row(result, "strong", "overall", "f1_macro")
    assert row["bootstrap"]["diff"] == pytest.approx(row["diff"], rel=1e-12)
    assert row["bootstrap"]["ci_low"] < row["bootstrap"]["diff"] < row["bootstrap"]["ci_high"]


def test_no_friedman_test_for_a_metric_of_one_target(result: dict) -> None:
    assert result["metrics"][0] == "accuracy" and result["friedman"] is None  # accuracy applies to `style` only


def test_friedman_nemenyi_and_cd_diagram_across_targets(tmp_path: Path) -> None:
    """Five multiclass targets, three runs: Friedman's χ² and p as SciPy on the seed-mean table."""
    rng = np.random.default_rng(1)
    specs = [TargetSpec(f"t{k}", "multiclass", ("a", "b", "c")) for k in range(5)]
    task = parse_task({"name": "five", "dataset": "csv", "targets": [{"name": s.name} for s in specs]}, "five")
    truth = {s.name: rng.integers(0, 3, size=60) for s in specs}
    runs = {}
    for method, skill in (("m0", 0.2), ("m1", 0.6), ("m2", 1.2)):
        writer = RunWriter(tmp_path, "five", method)
        flat = []
        for seed in (1, 2, 3):
            targets, columns = {}, {"image": [f"i{i}" for i in range(60)]}
            scores = {}
            for s in specs:
                scores[s.name] = rng.random((60, 3)) + skill * np.eye(3)[truth[s.name]]
                targets[s.name] = {
                    "kind": s.kind,
                    "classes": list(s.class_names),
                    **evaluate_target(s, truth[s.name], scores[s.name]),
                }
                columns[f"{s.name}.true"] = s.decode(truth[s.name])
                columns[f"{s.name}.pred"] = s.decode(scores[s.name].argmax(axis=1))
            metrics = {"targets": targets, "overall": run_level(targets)}
            writer.write_seed(seed, metrics, pd.DataFrame(columns), scores)
            flat.append(flatten_metrics(metrics))
        writer.write_summary("complete", 3, [1, 2, 3], metrics=summarise(flat))
        runs[method] = read_run(writer.run_dir)
    res = C.compare_runs(task, runs, baseline="m0", metrics=["f1_macro"], resamples=200)
    table = pd.DataFrame({m: [res["summary"][m][t]["f1_macro"]["mean"] for t in task.target_names] for m in runs})
    expected = stats.friedmanchisquare(*table.to_numpy().T)
    f = res["friedman"]
    assert f["statistic"] == pytest.approx(expected.statistic) and f["p"] == pytest.approx(expected.pvalue)
    assert f["avg_ranks"]["m2"] < f["avg_ranks"]["m1"] < f["avg_ranks"]["m0"]
    files = C.write_comparison(res, tmp_path / "cmp")
    assert (tmp_path / "cmp" / "cd-diagram.png").stat().st_size > 1000 and len(files) == 3
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["friedman"]["cd"] == pytest.approx(f["cd"]) and saved["baseline"] == "m0"
    assert len(pd.read_csv(tmp_path / "cmp" / "comparison.csv")) == 2 * 6


def test_section_5_2_correlation_from_the_reported_numbers() -> None:
    """SilkNet §5.2: gain of MTL^fo+R^all over MTL (Table 5) against the labelled share (§4): r = 0.93, p = 0.02;
    for MTL^fo: 87 %, p = 0.06."""
    reported = {r.method: r for r in reported_results("silknet")}
    shares = {t: v / 100 for t, v in LABELLED_PERCENT.items()}

    def gains(method: str) -> dict[str, float]:
        return {t: v - reported["mtl"].f1_per_target[t] for t, v in reported[method].f1_per_target.items()}

    best = C.correlate_gains(gains("mtl_fo_rall"), shares)
    assert round(best["pearson_r"], 3) == 0.927 and round(best["pearson_p"], 3) == 0.024
    targets = best["targets"]
    expected = stats.pearsonr([shares[t] for t in targets], [gains("mtl_fo_rall")[t] for t in targets])
    assert best["pearson_p"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert best["spearman_rho"] == pytest.approx(stats.spearmanr(best["property"], best["gains"]).statistic)
    focal = C.correlate_gains(gains("mtl_fo"), shares)
    assert round(focal["pearson_r"], 2) == 0.87 and round(focal["pearson_p"], 2) == 0.06
    assert "note" in C.correlate_gains({"place": 1.0, "time": 2.0}, shares)
    # the same through `--reported baselines/silknet.toml` on a task with SilkNet's targets
    silk = parse_task({"name": "silk", "dataset": "csv", "targets": [{"name": t} for t in LABELLED_PERCENT]}, "silk")
    runs = {m: {"method": m} for m in ("mtl", "mtl_fo_rall", "mtl_fo")}
    result = {"rows": [], "runs": runs, "baseline": "mtl"}
    found = C.correlations(silk, result, shares, "f1_macro", C.load_reported("baselines/silknet.toml"))
    by_method = {c["method"]: c for c in found if c["source"] == "reported"}
    assert by_method["mtl_fo_rall"]["pearson_r"] == pytest.approx(best["pearson_r"], rel=1e-12)
    assert by_method["mtl_fo_rall"]["pearson_p"] == pytest.approx(0.0235, abs=5e-5)
    assert by_method["mtl_fo"]["pearson_r"] == pytest.approx(focal["pearson_r"], rel=1e-12)


def test_reported_rows_sit_beside_the_reproduced_ones(tmp_path: Path) -> None:
    """Runs named like the paper's methods get its Table 4-6 numbers beside them, as fractions, with the difference."""
    rng = np.random.default_rng(2)
    truth = _truth(rng)
    runs = {}
    for method in ("mtl", "mtl_fo_rall"):
        runs[method] = read_run(
            write_run(tmp_path, method, truth, {1: _scores(truth, 0.5, rng), 2: _scores(truth, 0.5, rng)})
        )
    rows = C.reported_rows(TASK, runs, ["f1_macro", "accuracy"], C.load_reported("baselines/silknet.toml"))
    by_key = {(r["method"], r["target"], r["metric"]): r for r in rows}
    assert set(by_key) == {(m, "overall", k) for m in runs for k in ("f1_macro", "accuracy")}  # no silk targets here
    row = by_key[("mtl_fo_rall", "overall", "f1_macro")]
    assert (row["reported"], row["reported_std"], row["source"]) == (0.336, pytest.approx(0.0103), "reported")
    values = runs["mtl_fo_rall"].summary["metrics"]["overall.f1_macro"]["values"]
    assert row["diff"] == pytest.approx(np.mean(values) - 0.336)
    assert C.load_reported("silknet") == C.load_reported("baselines/silknet.toml")
    copy = tmp_path / "silknet.toml"
    shutil.copy("baselines/silknet.toml", copy)
    with pytest.raises(ArtbenchError, match="not a file of the baselines folders"):
        C.load_reported(str(copy))


def test_bench_compare_times_a_small_setting() -> None:
    result = C.bench_compare(num_methods=3, num_seeds=2, num_images=300, resamples=200)
    assert result["seconds"] > 0 and result["images"] == 300


def test_run_resolution_errors(hand_runs: dict, tmp_path: Path) -> None:
    out = hand_runs["out"]
    with pytest.raises(ArtbenchError, match="no complete run of 'mtl' on 'hand'"):
        C.resolve_runs(TASK, ["mtl"], out)
    with pytest.raises(ArtbenchError, match="is not an artbench run folder"):
        C.resolve_runs(TASK, [str(tmp_path)], out)
    with pytest.raises(ArtbenchError, match="is given twice"):
        C.resolve_runs(TASK, ["weak", str(hand_runs["dirs"]["weak"])], out)
    other = parse_task({"name": "other", "dataset": "csv", "targets": [{"name": "style"}]}, "other")
    with pytest.raises(ArtbenchError, match="is a run of task 'hand', not of 'other'"):
        C.resolve_runs(other, [str(hand_runs["dirs"]["weak"])], out)
    broken = tmp_path / "hand" / "weak" / "broken"
    shutil.copytree(hand_runs["dirs"]["weak"], broken)
    summary = json.loads((broken / SUMMARY).read_text())
    (broken / SUMMARY).write_text(json.dumps({**summary, "status": "incomplete"}))
    with pytest.raises(ArtbenchError, match="is incomplete"):
        C.resolve_runs(TASK, [str(broken)], out)
    with pytest.raises(ArtbenchError, match=r"1 incomplete run\(s\)"):
        C.resolve_runs(TASK, ["weak"], tmp_path)
    runs = C.resolve_runs(TASK, ["weak", str(hand_runs["dirs"]["strong"])], out)
    with pytest.raises(ArtbenchError, match="--baseline 'nope' is none of the compared runs"):
        C.pick_baseline(runs, "nope")
    assert C.pick_baseline(runs, str(hand_runs["dirs"]["strong"])) == "strong"
    runs, base = C.resolve_comparison(TASK, ["strong", "other"], "weak", out)  # a baseline not listed comes first
    assert (list(runs), base) == (["weak", "strong", "other"], "weak")
    with pytest.raises(ArtbenchError, match="'nope' is neither a method nor a run folder"):
        C.resolve_comparison(TASK, ["strong"], "nope", out)


def test_a_format_1_run_cannot_be_resampled_from_scores(hand_runs: dict, tmp_path: Path) -> None:
    old = tmp_path / "hand" / "weak" / "old"
    shutil.copytree(hand_runs["dirs"]["weak"], old)
    summary = json.loads((old / SUMMARY).read_text())
    summary.pop("format_version")
    (old / SUMMARY).write_text(json.dumps(summary))
    for seed in range(1, 6):
        (old / f"seed-{seed}" / "scores.npz").unlink()
    runs = C.resolve_runs(TASK, [str(old), "strong"], hand_runs["out"])
    with pytest.raises(ArtbenchError, match=r"format 1 \(no scores.npz\), so top3_accuracy cannot be resampled"):
        C.compare_runs(TASK, runs, baseline="weak", metrics=["f1_macro", "top3_accuracy"], resamples=10)
    # without score-based metrics a format-1 run is compared from its predictions.csv
    res = C.compare_runs(TASK, runs, baseline="weak", metrics=["f1_macro", "f2_samples"], resamples=10)
    assert _row(res, "strong", "motifs", "f2_samples")["bootstrap"]["diff"] == pytest.approx(
        _row(res, "strong", "motifs", "f2_samples")["diff"], rel=1e-12
    )


def test_runs_on_other_test_images_are_refused(hand_runs: dict, tmp_path: Path) -> None:
    moved = tmp_path / "hand" / "weak" / "moved"
    shutil.copytree(hand_runs["dirs"]["weak"], moved)
    predictions = moved / "seed-2" / "predictions.csv"
    table = pd.read_csv(predictions, dtype=str, keep_default_na=False)
    table.loc[0, "image"] = "/data/img/elsewhere.png"
    table.to_csv(predictions, index=False)
    runs = C.resolve_runs(TASK, ["strong", str(moved)], hand_runs["out"])
    with pytest.raises(ArtbenchError, match="weak seed 2 was evaluated on other test images"):
        C.compare_runs(TASK, runs, baseline="strong", metrics=["accuracy"], resamples=10)


def test_unknown_or_inapplicable_metrics_are_errors() -> None:
    with pytest.raises(ArtbenchError, match="unknown metric 'nope'"):
        C.check_metrics(TASK, ["nope"])
    regression_only = parse_task({"name": "r", "dataset": "csv", "targets": [{"name": "y", "kind": "regression"}]}, "r")
    with pytest.raises(ArtbenchError, match="metric 'f1_macro' applies to no target of task 'r'"):
        C.check_metrics(regression_only, ["f1_macro"])
