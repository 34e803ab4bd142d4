"""OmniArt (Strezoski & Worring 2017): the combined loss of eq. 2 with weights and scales, the shared layer, the
per-target mappings and their errors, both recipes end to end, and all three target kinds learnt on frozen
features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from artbench.core.targets import TargetSpec
from artbench.methods import METHODS
from artbench.methods.torch.heads import MultiHead, weighted_loss
from artbench.methods.torch.omniart import parse_factors
from tests.conftest import run_cli

SMALL = ("--device", "cpu", "--tracking-uri", "none", "--set", "shared_units=64", "--set", "standardise_features=true")


def test_combined_loss_is_equation_2() -> None:
    """L_t = Σ wᵢ·sᵢ·Lᵢ: softmax CE, sigmoid BCE and MAE, each averaged over the samples labelled for that task."""
    torch.manual_seed(0)
    logits, multi, value = torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 1)
    classes = torch.tensor([0, 2, -1, 1])  # one missing label
    hot = torch.tensor([[1, 0], [0, 1], [1, 1], [-1, -1]], dtype=torch.int8)
    years = torch.tensor([0.5, float("nan"), -1.0, 2.0])
    factors = [1.0, 0.5, 0.1 * 80.0]  # w·s, and for the regression target also its std (MAE in years)
    kinds = ["multiclass", "multilabel", "regression"]
    total, parts = weighted_loss([logits, multi, value], [classes, hot, years], kinds, factors)
    ce = F.cross_entropy(logits[[0, 1, 3]], classes[[0, 1, 3]])
    bce = F.binary_cross_entropy_with_logits(multi[:3], hot[:3].float())
    mae = (value.reshape(-1)[[0, 2, 3]] - years[[0, 2, 3]]).abs().mean()
    assert float(parts["loss_0"]) == pytest.approx(float(ce), rel=1e-5)
    assert float(parts["loss_1"]) == pytest.approx(float(bce), rel=1e-5)
    assert float(total) == pytest.approx(float(ce + 0.5 * bce + 8.0 * mae), rel=1e-5)


def test_shared_representation_layer() -> None:
    head = MultiHead(2048, [390, 112, 1], shared_units=6144)  # §4.5: 6144 units on ResNet-50's 2048-d features
    assert head.shared[0].in_features == 2048 and head.shared[0].out_features == 6144
    assert isinstance(head.shared[1], torch.nn.ReLU)
    assert [o.out_features for o in head.outputs] == [390, 112, 1]
    assert all(not o.bias.any() for o in head.outputs)
    defaults = METHODS.get("omniart_mtl").defaults()
    assert (defaults.backbone, defaults.weights, defaults.shared_units, defaults.input_size) == (
        "resnet50", "imagenet", 6144, 224,
    )  # fmt: skip


def test_weights_and_scales() -> None:
    assert parse_factors(" artist=1, regression=0.1 ,") == {"artist": 1.0, "regression": 0.1}
    for bad in ("artist", "artist=x", "=1", "artist=-1", "artist=inf"):
        with pytest.raises(ValueError):
            parse_factors(bad)
    entry = METHODS.get("omniart_mtl")
    method = entry.build(entry.fixed, {"task_weights": "artist=2,multilabel=0.5,type=3"})
    year, artist = TargetSpec("year", "regression"), TargetSpec("artist")
    assert method.factor(year) == pytest.approx(0.1)  # §3.2: the period's MAE scaled down 10×
    assert method.factor(artist) == 2.0
    assert method.factor(TargetSpec("type", "multilabel")) == 3.0  # a name wins over its kind
    assert method.factor(TargetSpec("material", "multilabel")) == 0.5


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("task_weights=artist=1", "task_weights: artist name no target of the task and no kind; targets: depiction"),
        ("task_scales=place:2", "invalid value task_scales='place:2': must be comma-separated key=value pairs"),
        ("backbone=resnet5", "unknown backbone 'resnet5'"),
    ],
)
def test_bad_parameters_fail_before_training(tiny_task: Path, tmp_path: Path, capsys, setting, message) -> None:
    code, _, err = run_cli(capsys, "run", str(tiny_task), "omniart_mtl", "--out", str(tmp_path), "--set", setting)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tiny-synth").exists()


@pytest.mark.parametrize("method", ["omniart_mtl", "omniart_stl"])
def test_recipes_run_two_seeds_on_one_feature_cache(tiny_task: Path, tmp_path: Path, capsys, method: str) -> None:
    code, _, err = run_cli(capsys, "run", str(tiny_task), method, "--seeds", "2", "--out", str(tmp_path), *SMALL)
    assert code == 0, err
    run_dir = next((tmp_path / "tiny-synth" / method).iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["seeds_completed"] == [1, 2]
    seeds = [json.loads((run_dir / f"seed-{k}" / "metrics.json").read_text()) for k in (1, 2)]
    assert seeds[0]["feature_cache"] == seeds[1]["feature_cache"] and not seeds[1]["feature_cache_built"]
    heads = {"all"} if method == "omniart_mtl" else {"place", "material", "time", "technique", "depiction"}
    assert set(seeds[0]["best_epoch"]) == heads


HUES = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}
KINDS_TASK = """
name = "kinds"
dataset = "csv"
metrics = ["accuracy", "map_macro", "mae"]
[dataset_options]
path = "collection.csv"
[[targets]]
name = "colour"
[[targets]]
name = "motifs"
kind = "multilabel"
[[targets]]
name = "year"
kind = "regression"
[defaults]
backbone = "tiny_cnn"
weights = "none"
image_size = 16
max_epochs = 40
"""


@pytest.fixture(scope="module")
def kinds_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 images: colour → hue, motifs → stripes/dots, year → brightness (1500-1900); some labels missing."""
    root = tmp_path_factory.mktemp("omniart-kinds")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        colour = list(HUES)[i % 3]
        motifs = [m for m, p in (("stripes", 0.5), ("dots", 0.4)) if rng.random() < p]
        year = int(rng.integers(1500, 1900))
        image = np.array(HUES[colour], float) * (0.5 + 0.5 * (year - 1500) / 400) + rng.normal(0, 8, (16, 16, 3))
        if "stripes" in motifs:
            image[::4] = 255
        if "dots" in motifs:
            image[2::5, 2::5] = 0
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / f"img/{i}.png")
        rows.append(
            {
                "image": f"img/{i}.png",
                "colour": colour if i % 10 else "",
                "motifs": "|".join(motifs) if i % 7 else "",
                "year": str(year) if i % 5 else "",
            }
        )
    pd.DataFrame(rows).to_csv(root / "collection.csv", index=False)
    (root / "kinds.toml").write_text(KINDS_TASK)
    return root / "kinds.toml"


def test_omniart_learns_all_three_kinds(kinds_task: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "run", str(kinds_task), "omniart_mtl", "--out", str(tmp_path), *SMALL)
    assert code == 0, err
    seed = next((tmp_path / "kinds" / "omniart_mtl").iterdir()) / "seed-1"
    metrics = json.loads((seed / "metrics.json").read_text())["targets"]
    predictions = pd.read_csv(seed / "predictions.csv", dtype=str, keep_default_na=False)
    known = predictions["year.true"] != ""
    truth = predictions.loc[known, "year.true"].astype(float)
    table = pd.read_csv(kinds_task.parent / "collection.csv")
    train_mean = table["year"].mean()  # near the mean of the training years
    assert metrics["colour"]["accuracy"] > 0.85  # hue separates the colours (chance: 1/3)
    assert metrics["motifs"]["map_macro"] > 0.6  # chance is the positive rate, 0.4-0.5
    assert metrics["year"]["mae"] < 0.8 * np.abs(truth - train_mean).mean()  # brightness carries the year
