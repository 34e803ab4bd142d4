"""Metrics against scikit-learn on random labels with missing values and a background class."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from artbench.data.targets import TargetSpec
from artbench.evaluation.aggregate import summarise
from artbench.evaluation.metrics import run_level, target_metrics

SPEC = TargetSpec("t", classes=("a", "b", "c", "d", "e"), background=("bg",))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.choice([-1, 0, 0, 0, 1, 1, 2, 3, 5], size=300)  # class 4 ("e") never occurs; 5 = background
    y_pred = rng.integers(0, 6, size=300)
    m = target_metrics(y_true, y_pred, SPEC, underrepresented=["c", "d", "e"])
    known = y_true != -1
    yt, yp = y_true[known], y_pred[known]
    present = [0, 1, 2, 3]  # foreground classes with test support; background (5) never averaged
    kw = {"labels": present, "average": "macro", "zero_division": 0}
    assert m["accuracy"] == pytest.approx(accuracy_score(yt, yp))
    assert m["f1_macro"] == pytest.approx(f1_score(yt, yp, **kw))
    assert m["precision_macro"] == pytest.approx(precision_score(yt, yp, **kw))
    assert m["recall_macro"] == pytest.approx(recall_score(yt, yp, **kw))
    under = f1_score(yt, yp, labels=[2, 3], average=None, zero_division=0)
    assert m["f1_underrepresented"] == pytest.approx(under.mean())
    assert m["confusion_matrix"]["matrix"] == confusion_matrix(yt, yp, labels=range(6)).tolist()
    assert m["per_class"]["(background)"]["support"] == int((yt == 5).sum())
    assert m["num_samples"] == int(known.sum())


def test_hand_computed_example() -> None:
    spec = TargetSpec("m", classes=("x", "y"))
    # x: 3 true, predicted twice, both right → P = 1, R = 2/3; y: 1 true, predicted twice → P = 1/2, R = 1
    m = target_metrics(np.array([0, 0, 0, 1, -1]), np.array([0, 0, 1, 1, 0]), spec, underrepresented=["y"])
    assert m["accuracy"] == pytest.approx(3 / 4)
    f1_x, f1_y = 2 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 * 1 / 1.5
    assert m["f1_macro"] == pytest.approx((f1_x + f1_y) / 2)
    assert m["f1_underrepresented"] == pytest.approx(f1_y)


def test_run_level_and_summary() -> None:
    per_target = {
        "a": {"f1_macro": 0.2, "accuracy": 0.6, "f1_underrepresented": float("nan")},
        "b": {"f1_macro": 0.4, "accuracy": 0.8, "f1_underrepresented": 0.1},
    }
    overall = run_level(per_target)
    assert overall == pytest.approx({"f1_macro": 0.3, "accuracy": 0.7, "f1_underrepresented": 0.1})
    s = summarise([{"k": 1.0}, {"k": 2.0}, {"k": 4.0}])
    assert s["k"]["mean"] == pytest.approx(7 / 3)
    assert s["k"]["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert summarise([{"k": 0.5}])["k"]["std"] is None  # undefined for one seed, not 0


def test_mlflow_metric_keys_stay_unique() -> None:
    from artbench.tracking.mlflow_tracker import unique_metric_keys

    keys = unique_metric_keys(["p.class.日本 (Kyoto).f1", "p.class.日本 [Kyoto].f1", "overall.f1_macro"])
    assert list(keys.values()) == ["p.class.日本 _Kyoto_.f1", "p.class.日本 _Kyoto_.f1-2", "overall.f1_macro"]
