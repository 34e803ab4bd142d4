"""Aggregation over seeds: mean, sample std, per-seed values and the count of undefined seeds."""

import numpy as np
import pytest

from artbench.evaluation.aggregate import every_metric_undefined, flatten_metrics, summarise


def test_summarise() -> None:
    s = summarise([{"k": 1.0}, {"k": 2.0}, {"k": 4.0}])
    assert s["k"]["mean"] == pytest.approx(7 / 3)
    assert s["k"]["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert summarise([{"k": 0.5}])["k"]["std"] is None  # undefined for one seed, not 0


def test_undefined_seeds_are_counted_not_dropped_silently() -> None:
    s = summarise([{"k": 1.0}, {"k": float("nan")}, {"k": 3.0}])
    assert s["k"]["mean"] == 2.0 and s["k"]["undefined_seeds"] == 1 and s["k"]["values"] == [1.0, None, 3.0]


def test_flatten_reads_scalars_and_undefined_values() -> None:
    flat = flatten_metrics({"overall": {"f1_macro": None}, "targets": {"t": {"mae": 2, "per_class": {}}}})
    assert np.isnan(flat["overall.f1_macro"]) and flat["t.mae"] == 2.0 and "t.per_class" not in flat


def test_every_metric_undefined_needs_every_overall_mean_undefined() -> None:
    nan = float("nan")
    none = summarise([{"overall.f1_macro": nan, "overall.accuracy": nan, "t.num_samples": 0.0}] * 2)
    one = summarise(
        [{"overall.f1_macro": nan, "overall.accuracy": 0.5}, {"overall.f1_macro": nan, "overall.accuracy": nan}]
    )
    assert every_metric_undefined(none)  # a count such as num_samples is not a metric
    assert not every_metric_undefined(one) and not every_metric_undefined({})
