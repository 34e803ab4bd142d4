"""The metric registry against scikit-learn and hand-worked examples, on labels with missing rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    fbeta_score,
    label_ranking_average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

from artbench.core.errors import ArtbenchError
from artbench.core.targets import MISSING, TargetSpec
from artbench.evaluation.metrics import (
    METRICS,
    THRESHOLD_GRID,
    Metric,
    TargetEvaluation,
    choose_thresholds,
    evaluate_target,
    metric_label,
    register_metric,
    run_level,
)

SPEC = TargetSpec("t", classes=("a", "b", "c", "d", "e"), background=("bg",))
TAGS = TargetSpec("tags", "multilabel", classes=("a", "b", "c", "d", "e", "f", "g", "h"))
YEAR = TargetSpec("year", "regression")
NAN = float("nan")


def _names(kind: str) -> set[str]:
    return {n for n in METRICS.names() if kind in METRICS.get(n).kinds}


# --- multiclass ------------------------------------------------------------------------------------------------


def _multiclass(seed: int, labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.choice(labels, size=300), rng.dirichlet(np.ones(SPEC.num_outputs), size=300)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_metrics_match_sklearn(seed: int) -> None:
    # class 4 ("e") never occurs; 5 = background; -1 = missing
    y_true, scores = _multiclass(seed, [MISSING, 0, 0, 0, 1, 1, 2, 3, 5])
    m = evaluate_target(SPEC, y_true, scores, underrepresented=["c", "d", "e"])
    known = y_true != MISSING
    yt, s = y_true[known], scores[known]
    yp = s.argmax(axis=1)
    present = [0, 1, 2, 3]  # foreground classes with test support; background (5) never averaged
    kw = {"labels": present, "average": "macro", "zero_division": 0}
    assert set(m) >= _names("multiclass")
    assert m["num_samples"] == int(known.sum())
    assert m["accuracy"] == pytest.approx(accuracy_score(yt, yp))
    assert m["precision_macro"] == pytest.approx(precision_score(yt, yp, **kw))
    assert m["recall_macro"] == pytest.approx(recall_score(yt, yp, **kw))
    assert m["f1_macro"] == pytest.approx(f1_score(yt, yp, **kw))
    under = f1_score(yt, yp, labels=[2, 3], average=None, zero_division=0)  # "e" has no test samples
    assert m["f1_underrepresented"] == pytest.approx(under.mean())
    assert m["mean_class_accuracy"] == pytest.approx(m["recall_macro"])
    assert m["mean_class_accuracy"] != pytest.approx(balanced_accuracy_score(yt, yp))  # that one averages bg too
    for k in (3, 5):
        assert m[f"top{k}_accuracy"] == pytest.approx(top_k_accuracy_score(yt, s, k=k, labels=range(6)))
    assert m["confusion_matrix"]["matrix"] == confusion_matrix(yt, yp, labels=range(6)).tolist()
    assert m["confusion_matrix"]["labels"] == [*SPEC.classes, "(background)"]
    assert m["per_class"]["(background)"]["support"] == int((yt == 5).sum())
    assert m["per_class"]["b"]["f1"] == pytest.approx(f1_score(yt, yp, labels=[1], average="macro"))
    assert m["classes_without_test_samples"] == ["e"]
    assert m["underrepresented"] == ["c", "d", "e"]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_mean_class_accuracy_is_balanced_accuracy_over_the_foreground() -> None:
    y_true, scores = _multiclass(3, [MISSING, 0, 1, 1, 2, 3, 3, 3])  # no background labels, but predicted
    m = evaluate_target(SPEC, y_true, scores)
    known = y_true != MISSING
    assert (scores[known].argmax(axis=1) == 5).any()
    assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(y_true[known], scores[known].argmax(1)))


def test_multiclass_hand_computed_example() -> None:
    spec = TargetSpec("m", classes=("x", "y"))
    pred = np.array([0, 0, 1, 1, 0])
    # x: 3 true, predicted twice, both right → P = 1, R = 2/3; y: 1 true, predicted twice → P = 1/2, R = 1
    m = evaluate_target(spec, np.array([0, 0, 0, 1, MISSING]), np.eye(2)[pred] * 0.8 + 0.1, underrepresented=["y"])
    assert m["accuracy"] == pytest.approx(3 / 4)
    f1_x, f1_y = 2 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 * 1 / 1.5
    assert m["f1_macro"] == pytest.approx((f1_x + f1_y) / 2)
    assert m["f1_underrepresented"] == pytest.approx(f1_y)
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["top3_accuracy"] == m["top5_accuracy"] == 1.0  # two outputs: every row is in the top 3


def test_top_k_ties_go_to_the_lower_column() -> None:
    spec = TargetSpec("m", classes=tuple("uvwxyz"))
    scores = np.array([[0.2, 0.2, 0.2, 0.2, 0.1, 0.1]] * 3)
    # true 3 ranks 4th (three tied lower columns before it), true 0 first, true 5 sixth (after 4)
    m = evaluate_target(spec, np.array([3, 0, 5]), scores)
    assert m["accuracy"] == pytest.approx(1 / 3)  # argmax picks column 0
    assert m["top3_accuracy"] == pytest.approx(1 / 3)
    assert m["top5_accuracy"] == pytest.approx(2 / 3)


def test_no_known_rows_gives_nan() -> None:
    m = evaluate_target(SPEC, np.full(4, MISSING), np.full((4, 6), 1 / 6), underrepresented=["a"])
    assert m["num_samples"] == 0
    assert all(math.isnan(m[n]) for n in _names("multiclass"))
    assert m["classes_without_test_samples"] == list(SPEC.classes)


# --- multilabel ------------------------------------------------------------------------------------------------


def _multilabel(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """200 rows: 20 missing, 5 known without labels; class "h" never positive; scores with ties (1 decimal)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((200, TAGS.num_classes)) < 0.3).astype(np.int8)
    y[:, 7] = 0
    y[20:25] = 0
    y[:20] = MISSING
    scores = np.round(np.clip(0.35 * y + rng.random(y.shape) * 0.7, 0, 1), 1)
    return y, scores


def _voc11(y: np.ndarray, s: np.ndarray) -> float:
    """11-point AP from scikit-learn's curve: mean over r = j/10 of the max precision at recall ≥ r."""
    precision, recall, _ = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # drop the appended (recall 0, precision 1) point
    return float(np.mean([precision[recall >= j / 10].max() for j in range(11)]))


@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_ranking_metrics_match_sklearn(seed: int) -> None:
    y, scores = _multilabel(seed)
    m = evaluate_target(TAGS, y, scores)
    yt, s = y[20:], scores[20:]
    ap = [average_precision_score(yt[:, j], s[:, j]) for j in range(7)]
    assert set(m) >= _names("multilabel")
    assert m["num_samples"] == 180
    assert m["map_macro"] == pytest.approx(np.mean(ap))
    assert [m["per_class"][c]["ap"] for c in "abcdefg"] == pytest.approx(ap)
    assert math.isnan(m["per_class"]["h"]["ap"])
    assert [m["per_class"][c]["support"] for c in TAGS.classes] == yt.sum(axis=0).tolist()
    assert m["classes_without_test_samples"] == ["h"]
    assert m["ap11_macro"] == pytest.approx(np.mean([_voc11(yt[:, j], s[:, j]) for j in range(7)]))
    relevant = yt.any(axis=1)
    assert m["map_samples"] == pytest.approx(label_ranking_average_precision_score(yt[relevant], s[relevant]))


def test_average_precision_hand_computed_example() -> None:
    spec = TargetSpec("one", "multilabel", classes=("x",))
    y = np.array([[1], [0], [1], [0], [0], [1], [MISSING]], dtype=np.int8)
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5], [0.4], [1.0]])
    m = evaluate_target(spec, y, scores)
    # ranks 1..6: hits at 1, 3, 6 → precision 1, 2/3, 1/2 at recall 1/3, 2/3, 1
    assert m["map_macro"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    # 11-point: r ∈ {0, .1, .2, .3} → max precision 1; r ∈ {.4, .5, .6} → 2/3; r ∈ {.7, ..., 1} → 1/2
    assert m["ap11_macro"] == pytest.approx((4 * 1 + 3 * 2 / 3 + 4 * 1 / 2) / 11)
    # a tie between a hit and a miss: one point at rank 2 with precision 1/2
    m = evaluate_target(spec, np.array([[1], [0]], dtype=np.int8), np.array([[0.5], [0.5]]))
    assert m["map_macro"] == m["ap11_macro"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_f_scores_match_sklearn(seed: int) -> None:
    y, scores = _multilabel(seed)
    m = evaluate_target(TAGS, y, scores, thresholds={"f1_samples": 0.3, "f1_micro": 0.7})
    assert m["thresholds"] == {"f1_samples": 0.3, "f2_samples": 0.5, "f1_micro": 0.7}
    yt, s = y[20:], scores[20:]

    def f(beta: float, average: str, t: float) -> float:
        return fbeta_score(yt, (s >= t).astype(int), beta=beta, average=average, zero_division=0)

    assert m["f1_samples"] == pytest.approx(f(1, "samples", 0.3))
    assert m["f2_samples"] == pytest.approx(f(2, "samples", 0.5))
    assert m["f1_micro"] == pytest.approx(f(1, "micro", 0.7))
    with pytest.raises(ValueError, match="not thresholded"):
        evaluate_target(TAGS, y, scores, thresholds={"map_macro": 0.5})


@pytest.mark.parametrize("seed", [0, 1])
def test_choose_thresholds_maximises_on_known_rows(seed: int) -> None:
    y, scores = _multilabel(seed)
    chosen = choose_thresholds(TAGS, y, scores)
    yt, s = y[20:], scores[20:]
    for name, beta, average in [("f1_samples", 1, "samples"), ("f2_samples", 2, "samples"), ("f1_micro", 1, "micro")]:
        values = [
            fbeta_score(yt, (s >= t).astype(int), beta=beta, average=average, zero_division=0) for t in THRESHOLD_GRID
        ]
        assert chosen[name] == THRESHOLD_GRID[int(np.argmax(values))]
        # scores have one decimal, so t and t + 0.05 tie in pairs: the lower one, an odd multiple of 0.05, wins
        assert round(chosen[name] * 20) % 2 == 1
    assert set(chosen) == {n for n in _names("multilabel") if METRICS.get(n).thresholded}
    assert THRESHOLD_GRID.tolist() == pytest.approx([0.05 * i for i in range(1, 20)])


def test_choose_thresholds_without_known_rows_or_for_other_kinds() -> None:
    assert choose_thresholds(TAGS, np.full((3, 8), MISSING, dtype=np.int8), np.zeros((3, 8))) == {}
    assert choose_thresholds(SPEC, np.array([0, 1]), np.eye(6)[:2]) == {}
    m = evaluate_target(TAGS, np.full((3, 8), MISSING, dtype=np.int8), np.zeros((3, 8)))
    assert m["num_samples"] == 0
    assert all(math.isnan(m[n]) for n in _names("multilabel"))


# --- regression ------------------------------------------------------------------------------------------------


def test_regression_metrics() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.uniform(1500, 1900, size=100)
    y_true[::7] = np.nan
    pred = y_true + rng.normal(0, 60, size=100)
    pred[::7] = 0.0  # predictions for missing labels are ignored
    m = evaluate_target(YEAR, y_true, pred)
    known = ~np.isnan(y_true)
    assert set(m) == _names("regression") | {"num_samples"}
    assert m["num_samples"] == int(known.sum())
    assert m["mae"] == pytest.approx(mean_absolute_error(y_true[known], pred[known]))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y_true[known], pred[known])))
    assert not METRICS.get("mae").higher_is_better and not METRICS.get("rmse").higher_is_better
    errors = np.array([0.0, 50.0, 50.5, -50.0, 120.0, NAN])
    m = evaluate_target(YEAR, np.array([1700.0] * 5 + [NAN]), 1700.0 + errors)
    assert m["within_50"] == pytest.approx(3 / 5)
    assert m["mae"] == pytest.approx((0 + 50 + 50.5 + 50 + 120) / 5)


# --- registry and run level ------------------------------------------------------------------------------------


def test_run_level_means_each_metric_over_the_targets_that_have_it() -> None:
    per_target = {
        "a": {"num_samples": 10, "f1_macro": 0.2, "accuracy": 0.6, "f1_underrepresented": NAN, "per_class": {}},
        "b": {"num_samples": 20, "f1_macro": 0.4, "accuracy": 0.8, "f1_underrepresented": 0.1},
        "c": {"num_samples": 30, "map_macro": 0.5, "f1_samples": NAN},
    }
    expected = {"f1_macro": 0.3, "accuracy": 0.7, "f1_underrepresented": 0.1, "map_macro": 0.5, "f1_samples": NAN}
    assert run_level(per_target) == pytest.approx(expected, nan_ok=True)


def test_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert metric_label("accuracy") == "OA"
    with pytest.raises(ArtbenchError, match="unknown metric"):
        metric_label("nope")
    with pytest.raises(ArtbenchError, match="already registered"):
        register_metric(METRICS.get("accuracy"))
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))  # registrations below end with the test
    seen: list[TargetEvaluation] = []

    def share_of_a(ev: TargetEvaluation) -> float:
        seen.append(ev)
        return float(np.mean(ev.y_pred == 0))

    register_metric(Metric("share_a", "share a", frozenset({"multiclass"}), False, share_of_a))
    y_true, scores = _multiclass(0, [MISSING, 0, 1, 5])
    m = evaluate_target(SPEC, y_true, scores, underrepresented=["b"])
    known = y_true != MISSING
    assert m["share_a"] == pytest.approx(np.mean(scores[known].argmax(axis=1) == 0))
    (ev,) = seen
    assert ev.spec is SPEC and ev.underrepresented == ("b",) and ev.threshold == 0.5
    assert ev.y_true.tolist() == y_true[known].tolist()
    assert run_level({"t": m})["share_a"] == m["share_a"]
    assert "share_a" not in evaluate_target(TAGS, *_multilabel(0))
