"""Method parameters: layering, coercion from TOML/--set values, range checks and one-line errors."""

import pytest

from artbench.core.errors import ArtbenchError
from artbench.core.params import load_config_file, parse_set_option, to_plain
from artbench.core.task import parse_task
from artbench.methods import METHODS
from artbench.runner import resolve_method

TASK = parse_task(
    {"name": "t", "dataset": "csv", "targets": [{"name": "place"}], "defaults": {"lr": 1e-3, "batch_size": 8}},
    "t.toml",
)


def test_layers_override_in_order() -> None:
    """defaults < task [defaults] < recipe < --config < --set."""
    entry = METHODS.get("mtl_fo")
    method = resolve_method(entry, TASK, {"lr": 5e-4, "gamma": 1}, {"batch_size": 16})
    assert (method.lr, method.batch_size, method.gamma) == (5e-4, 16, 1.0)
    assert resolve_method(entry, TASK).gamma == 2.0  # the recipe's γ
    plain = METHODS.get("mtl").defaults()
    assert (plain.backbone, plain.joint_layers) == ("resnet152", (128,))


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("lr=3e-4", "lr", 3e-4),
        ("joint_layers=[256, 128]", "joint_layers", [256, 128]),
        ("backbone=resnet50", "backbone", "resnet50"),
        ("augment=false", "augment", False),
    ],
)
def test_set_option_parsing(item: str, key: str, value: object) -> None:
    assert parse_set_option(item) == (key, value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learning_rate": 1.0}, r"method 'mtl' has no parameter 'learning_rate'; its parameters: strategy, backbone"),
        ({"batch_size": "big"}, "batch_size must be int"),
        ({"joint_layers": ["a"]}, "joint_layers must be int"),
        ({"augment": 1}, "augment must be bool"),
        ({"monitor": "val_acc"}, "monitor must be one of 'val_ce', 'val_f1'"),
    ],
)
def test_unknown_keys_and_wrong_types(overrides: dict, message: str) -> None:
    with pytest.raises(ArtbenchError, match=message):
        resolve_method(METHODS.get("mtl"), TASK, set_layer=overrides)


def test_keys_of_another_family_are_refused() -> None:
    with pytest.raises(ArtbenchError, match="method 'colour_hist_logreg' has no parameter 'backbone'"):
        resolve_method(METHODS.get("colour_hist_logreg"), TASK, set_layer={"backbone": "resnet50"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dropout": 1.5}, r"dropout=1.5: must be in \[0, 1\)"),
        ({"normalize": "sometimes"}, "normalize must be one of 'all', 'per_target'"),
        ({"beta1": 1.5}, r"beta1=1.5: must be in \[0, 1\)"),
        ({"eps": -1.0}, "eps=-1.0: must be > 0"),
        ({"alpha_co": -0.5}, "alpha_co=-0.5: must be >= 0"),
        ({"selfsim_noise": -0.1}, "selfsim_noise=-0.1: must be >= 0"),
        ({"lr": float("inf")}, "lr=inf: must be a finite number"),
        ({"image_size": 4096}, r"image_size=4096: must be in \[8, 2048\]"),
    ],
)
def test_value_checks(overrides: dict, message: str) -> None:
    with pytest.raises(ArtbenchError, match=message):
        resolve_method(METHODS.get("mtl"), TASK, set_layer=overrides)


def test_method_recipes_fix_every_loss_weight() -> None:
    """A task's [defaults] must not leak into Table 3's rows: each fixes γ, λ_C, λ_aux and the three α."""
    leaky = {"gamma": 5.0, "lambda_c": 0.5, "lambda_aux": 3.0, "alpha_sem": 3.0, "alpha_co": 3.0, "alpha_slf": 3.0}
    task = parse_task({**TASK_RAW, "defaults": leaky}, "t.toml")
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
        m = resolve_method(METHODS.get(name), task)
        assert (m.gamma, m.lambda_c, m.lambda_aux, m.alpha_sem, m.alpha_co, m.alpha_slf) == weights
    assert resolve_method(METHODS.get("stl"), task).strategy == "single_task"


TASK_RAW = {"name": "t", "dataset": "csv", "targets": [{"name": "place"}]}


def test_resolved_parameters_are_plain_values() -> None:
    plain = to_plain(resolve_method(METHODS.get("mtl"), TASK, set_layer={"joint_layers": [64, 32]}))
    assert plain["joint_layers"] == [64, 32] and plain["lr"] == 1e-3 and "amp" not in plain


def test_recipe_file(tmp_path) -> None:
    (tmp_path / "r.toml").write_text('[config]\nbackbone = "resnet50"\nlr = 1e-4\n')
    assert load_config_file(tmp_path / "r.toml") == {"backbone": "resnet50", "lr": 1e-4}
    (tmp_path / "bad.toml").write_text("[config]\nlr = = 1\n")
    with pytest.raises(ArtbenchError, match="not valid TOML"):
        load_config_file(tmp_path / "bad.toml")
    with pytest.raises(ArtbenchError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")
    (tmp_path / "odd.toml").write_text("[config]\nsvm_c = 1.0\n")
    with pytest.raises(ArtbenchError, match=r"odd.toml: method 'mtl' has no parameter 'svm_c'"):
        resolve_method(
            METHODS.get("mtl"), TASK, load_config_file(tmp_path / "odd.toml"), config_source=str(tmp_path / "odd.toml")
        )
