"""MLflow metric keys: class names that slugify alike stay distinct."""

from artbench.tracking.mlflow import unique_metric_keys


def test_mlflow_metric_keys_stay_unique() -> None:
    keys = unique_metric_keys(["p.class.日本 (Kyoto).f1", "p.class.日本 [Kyoto].f1", "overall.f1_macro"])
    assert list(keys.values()) == ["p.class.日本 _Kyoto_.f1", "p.class.日本 _Kyoto_.f1-2", "overall.f1_macro"]
