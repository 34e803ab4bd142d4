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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dropout": 1.5}, r"dropout=1.5: must be in \[0, 1\)"),
        ({"normalize": "sometimes"}, "normalize='sometimes': must be 'all' or 'per_target'"),
        ({"beta1": 1.5}, r"beta1=1.5: must be in \[0, 1\)"),
        ({"eps": -1.0}, "eps=-1.0: must be > 0"),
        ({"alpha_co": -0.5}, "alpha_co=-0.5: must be >= 0"),
        ({"selfsim_noise": -0.1}, "selfsim_noise=-0.1: must be >= 0"),
    ],
)
def test_config_value_checks(overrides: dict, message: str) -> None:
    with pytest.raises(ArtbenchError, match=message):
        resolve_config(overrides)


def test_method_recipes_fix_every_loss_weight() -> None:
    """A task's [defaults] must not leak into Table 3's rows: each fixes γ, λ_C, λ_aux and the three α."""
    leaky = {"gamma": 5.0, "lambda_c": 0.5, "lambda_aux": 3.0, "alpha_sem": 3.0, "alpha_co": 3.0, "alpha_slf": 3.0}
    expected = {  # Table 3 of Dorozynski (2023): (γ, λ_C, λ_aux, α_sem, α_co, α_slf)
        "stl": (0, 1, 0, 0, 0, 0),
        "mtl": (0, 1, 0, 0, 0, 0),
        "mtl_fo": (2, 1, 0, 0, 0, 0),
        "mtl_rsem": (0, 1, 1, 1, 0, 0),
        "mtl_rall": (0, 1, 1, 0.5, 0.5, 0.5),
        "mtl_fo_rsem": (2, 1, 1, 1, 0, 0),
        "mtl_fo_rall": (2, 1, 1, 0.5, 0.5, 0.5),
    }
    for name, weights in expected.items():
        cfg = resolve_config(leaky, METHODS.get(name).config)
        assert (cfg.gamma, cfg.lambda_c, cfg.lambda_aux, cfg.alpha_sem, cfg.alpha_co, cfg.alpha_slf) == weights


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
