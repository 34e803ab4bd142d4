"""Config layering and validation of task and recipe files: clear errors for unknown keys and wrong types."""

import pytest

from artbench.config import (
    RunConfig,
    load_config_file,
    parse_set_option,
    resolve_config,
    validate_overrides,
)
from artbench.data.targets import TargetSpec
from artbench.errors import ArtbenchError
from artbench.methods import METHODS
from artbench.tasks import list_tasks, load_task, parse_task

BASE = {"name": "t", "dataset": "csv", "targets": [{"name": "place"}]}


def test_layers_override_in_order() -> None:
    cfg = resolve_config({"lr": 1e-3, "batch_size": 8}, {"lr": 5e-4}, validate_overrides({"gamma": 1}, "x"))
    assert (cfg.lr, cfg.batch_size, cfg.gamma) == (5e-4, 8, 1.0)
    assert RunConfig().backbone == "resnet152" and RunConfig().joint_layers == (128,)


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("lr=3e-4", "lr", 3e-4),
        ("joint_layers=[256, 128]", "joint_layers", [256, 128]),
        ("backbone=resnet50", "backbone", "resnet50"),
        ("amp=false", "amp", False),
    ],
)
def test_set_option_parsing(item: str, key: str, value: object) -> None:
    assert parse_set_option(item) == (key, value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learning_rate": 1.0}, "unknown config key 'learning_rate'"),
        ({"batch_size": "big"}, "must be int"),
        ({"joint_layers": ["a"]}, "list of integers"),
        ({"amp": 1}, "must be bool"),
    ],
)
def test_config_validation_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ArtbenchError, match=message):
        validate_overrides(overrides, "--set")


def test_config_value_checks() -> None:
    with pytest.raises(ArtbenchError, match="dropout"):
        resolve_config({"dropout": 1.5})
    with pytest.raises(ArtbenchError, match="normalize"):
        resolve_config({"normalize": "sometimes"})


def test_recipe_file(tmp_path) -> None:
    (tmp_path / "r.toml").write_text('[config]\nbackbone = "resnet50"\nlr = 1e-4\n')
    assert load_config_file(tmp_path / "r.toml") == {"backbone": "resnet50", "lr": 1e-4}
    (tmp_path / "bad.toml").write_text("[config]\nlr = = 1\n")
    with pytest.raises(ArtbenchError, match="not valid TOML"):
        load_config_file(tmp_path / "bad.toml")
    with pytest.raises(ArtbenchError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"targets": [{"name": "p", "kind": "ordinal"}]}, "unknown kind 'ordinal'"),
        ({"targets": [{"name": "p", "classes": "a"}]}, "must be list"),
        ({"targets": [{"name": "p", "colour": 1}]}, r"targets\[0\]: unknown key"),
        ({"split": {"protocol": "random"}}, "unknown split protocol"),
        ({"split": {"fractions": [0.5, 0.5]}}, "three positive numbers"),
        ({"metrics": ["auc"]}, "unknown metric"),
        ({"defaults": {"lr": "fast"}}, "lr must be float"),
        ({"name": 3}, "name must be str"),
    ],
)
def test_task_validation_errors(patch: dict, message: str) -> None:
    with pytest.raises(ArtbenchError, match=message):
        parse_task({**BASE, **patch}, "t.toml")


def test_shipped_task_and_methods_load() -> None:
    task = load_task("silknow-synth")
    assert task.target_names == ["place", "material", "time", "technique", "depiction"]
    assert task.target("place").background == ("bg place",)
    assert task.defaults["backbone"] == "tiny_cnn"
    assert "silknow-synth" in [t.name for t in list_tasks()]
    with pytest.raises(ArtbenchError, match=r"unknown task 'silk'; valid choices: .*silknow-synth"):
        load_task("silk")
    for name in ("stl", "mtl", "mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall"):
        assert name in METHODS


def test_target_encoding_round_trip() -> None:
    import pandas as pd

    spec = TargetSpec("place", background=("bg place",)).with_classes_from(
        pd.Series(["FR", "NA", None, "bg place", "ES"])
    )
    assert spec.classes == ("ES", "FR", "NA") and spec.num_outputs == 4
    codes = spec.encode(pd.Series(["FR", None, "bg place", "NA"]))
    assert codes.tolist() == [1, -1, 3, 2]
    assert spec.decode(codes) == ["FR", "", "(background)", "NA"]
    with pytest.raises(ArtbenchError, match="not among its classes"):
        spec.encode(pd.Series(["DE"]))
