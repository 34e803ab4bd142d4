"""The reported numbers of baselines/silknet.toml are internally consistent with the paper's tables."""

import numpy as np
import pytest

from artbench.core.params import load_config_file
from artbench.core.task import parse_task
from artbench.methods import METHODS
from artbench.results.baselines import load_baseline, reported_results
from artbench.runner import resolve_method


def test_every_table3_method_has_reported_numbers() -> None:
    results = {r.method: r for r in reported_results("silknet")}
    assert set(results) == {"mtl", "mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall"}
    assert set(results) <= set(METHODS.names())
    assert all(r.source == "reported" for r in results.values())
    # Table 4 (F1, OA) for MTL^fo + R^all: 33.6 ± 1.03, 65.8 ± 0.70
    best = results["mtl_fo_rall"]
    assert (best.f1, best.f1_std, best.accuracy, best.accuracy_std) == (33.6, 1.03, 65.8, 0.70)


@pytest.mark.parametrize("method", ["mtl", "mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall"])
def test_table5_target_means_match_table4(method: str) -> None:
    r = next(r for r in reported_results("silknet") if r.method == method)
    assert set(r.f1_per_target) == set(r.f1_underrepresented) == {"depiction", "place", "material", "time", "technique"}
    # Table 4's average F1 is the mean over the five targets of Table 5 (to the printed rounding).
    assert np.mean(list(r.f1_per_target.values())) == pytest.approx(r.f1, abs=0.06)
    # Under-represented classes are harder: Table 6 ≤ Table 5 for every target.
    assert all(r.f1_underrepresented[t] <= r.f1_per_target[t] for t in r.f1_per_target)


def test_recipe_is_the_paper_setup() -> None:
    task = parse_task({"name": "t", "dataset": "csv", "targets": [{"name": "p"}], "defaults": {"augment": True}}, "t")
    m = resolve_method(METHODS.get("mtl_fo_rall"), task, load_config_file("baselines/silknet.toml"))
    assert (m.backbone, m.weights, m.finetune_blocks, m.joint_layers, m.dropout, m.lr) == (
        "resnet152",
        "imagenet",
        3,
        (128,),
        0.3,
        1e-4,
    )
    assert m.augment is False  # §5.1 describes no augmentation besides x -> x' of L_slf
    assert load_baseline("silknet")["paper"]["seeds"] == 5


def test_reported_values_of_every_baseline_file() -> None:
    from artbench.evaluation.metrics import METRICS
    from artbench.results.baselines import baseline_dirs, reported_values

    names = set(METRICS.names())
    silknet = {(v.method, v.target, v.metric): v for v in reported_values("silknet", names)}
    assert silknet[("mtl_fo_rall", "overall", "f1_macro")].value == 33.6
    assert silknet[("mtl_fo_rall", "overall", "f1_macro")].std == 1.03
    assert silknet[("mtl", "place", "f1_underrepresented")].value == 7.0
    files = {p.stem for d in baseline_dirs() for p in d.glob("*.toml")}
    for name in files:
        values = reported_values(name, names)
        assert all(v.metric in names and v.source == "reported" for v in values)
    if "mensink2014" in files:
        mensink = {(v.target, v.metric): v.value for v in reported_values("mensink2014", names) if v.method == "fv_svm"}
        assert mensink[("creator", "mean_class_accuracy")] == 51.02 and mensink[("year", "rmse")] == 163.0
        assert ("creator", "mca_top5") not in mensink  # the challenge-only numbers are not compared
