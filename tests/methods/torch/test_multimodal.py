"""The multimodal family (Belhi et al. 2018): metadata reach the network and carry a target the image does not,
regression targets are learnt as bins, Keras' SGD decay, the paper's network shape and recipe, the fold assignment
of its five-fold cross-validation, and one-line errors for tasks the full variant cannot run."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from artbench.core.errors import ArtbenchError
from artbench.core.params import load_config_file
from artbench.core.targets import MISSING
from artbench.core.task import parse_task
from artbench.methods import METHODS
from artbench.methods.torch.backbones import build_backbone
from artbench.methods.torch.multimodal import (
    UNKNOWN,
    DecayingSGD,
    MetadataVocabulary,
    MultimodalMethod,
    MultimodalNet,
    ValueBins,
    cross_validation_folds,
    flip_and_crop,
)
from artbench.results.baselines import load_baseline
from artbench.runner import resolve_method
from tests.conftest import SHARED, run_cli

HUES = {"red": (220, 40, 40), "blue": (40, 60, 220)}
ARTISTS = {("red", "s1"): "ann", ("red", "s2"): "bob", ("blue", "s1"): "cy", ("blue", "s2"): "dee"}
SCHOOLS = {"north": "A", "south": "B", "east": "C"}
TASK = """
name = "{name}"
dataset = "csv"
metrics = ["accuracy", "mae"]
{metadata}
[dataset_options]
path = "paintings.csv"
group_col = "painting"
[[targets]]
name = "school"
[[targets]]
name = "artist"
[[targets]]
name = "year"
kind = "regression"
[defaults]
finetune_blocks = -1
batch_size = 8
max_epochs = 4
lr = 0.02
"""
TINY = ("--set", "backbone=tiny_cnn", "--set", "weights=none", "--set", "image_size=16")


@pytest.fixture(scope="module")
def paintings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 one-image paintings: the school follows the metadata region only (the image is noise for it), the
    artist follows the hue (image) and the style (metadata) together, the year the brightness; some metadata and
    years are missing."""
    root = tmp_path_factory.mktemp("paintings")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(240):
        hue, style, region = rng.choice(list(HUES)), rng.choice(["s1", "s2"]), rng.choice(list(SCHOOLS))
        year = int(rng.integers(1600, 1900))
        image = np.array(HUES[hue], float) * (0.4 + 0.6 * (year - 1600) / 300) + rng.normal(0, 20, (16, 16, 3))
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / f"img/{i}.png")
        rows.append(
            {
                "image": f"img/{i}.png",
                "painting": f"p{i}",
                "school": SCHOOLS[region],
                "artist": ARTISTS[(hue, style)],
                "year": str(year) if i % 6 else "",
                "region": region,
                "style": style if i % 11 else "",
            }
        )
    pd.DataFrame(rows).to_csv(root / "paintings.csv", index=False)
    return root


def _task(root: Path, name: str, metadata: str = 'metadata = ["region", "style"]') -> Path:
    path = root / f"{name}.toml"
    path.write_text(TASK.format(name=name, metadata=metadata))
    return path


def _run(capsys: pytest.CaptureFixture[str], task: Path, method: str, out: Path, *extra: str) -> tuple[int, str, str]:
    """``artbench run`` on the CPU with the tiny CNN at 16 px, without MLflow."""
    return run_cli(
        capsys, "run", str(task), method, *TINY, *extra, "--out", str(out), "--device", "cpu", "--tracking-uri", "none"
    )


def _seed_dir(out: Path, task: str, method: str) -> Path:
    return next((out / task / method).iterdir()) / "seed-1"


def test_metadata_carry_what_the_image_does_not_and_years_are_learnt_as_decades(
    paintings: Path, tmp_path: Path, capsys
) -> None:
    task = _task(paintings, "paintings")
    metrics = {}
    for method in ("multimodal", "multimodal_image_only"):
        code, _, err = _run(capsys, task, method, tmp_path)
        assert code == 0, err
        metrics[method] = json.loads((_seed_dir(tmp_path, "paintings", method) / "metrics.json").read_text())
    school = {m: metrics[m]["targets"]["school"]["accuracy"] for m in metrics}
    artist = {m: metrics[m]["targets"]["artist"]["accuracy"] for m in metrics}
    # the region decides the school: learnt from the metadata, chance (1/3) from the noise images alone
    assert school["multimodal"] > 0.8 and school["multimodal_image_only"] < 0.6
    # the hue tells two pairs of artists apart (1/2 from the image), the style the artists within a pair
    assert artist["multimodal"] > artist["multimodal_image_only"] + 0.2
    full = metrics["multimodal"]
    assert full["metadata_vocabulary"] == {"region": 4, "style": 3}  # values seen in training + the unknown slot
    assert metrics["multimodal_image_only"]["metadata_vocabulary"] == {}
    bins = full["bins"]["year"]  # the decades of the training years, within 1600-1899
    assert bins["width"] == 10 and bins["first"] >= 160 and bins["first"] + bins["count"] <= 190
    preds = pd.read_csv(_seed_dir(tmp_path, "paintings", "multimodal") / "predictions.csv", dtype=str)
    predicted = preds["year.pred"].astype(float)
    assert np.allclose(predicted % 10, 5)  # the centre of a decade
    known = preds["year.true"].notna()
    mae = np.abs(preds.loc[known, "year.true"].astype(float) - predicted[known]).mean()
    assert full["targets"]["year"]["mae"] == pytest.approx(mae)


def test_full_variant_needs_metadata_columns(paintings: Path, tmp_path: Path, capsys) -> None:
    task = _task(paintings, "no-metadata", metadata="")
    code, _, err = _run(capsys, task, "multimodal", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "lists none" in err and "multimodal_image_only" in err
    assert not (tmp_path / "no-metadata").exists()  # refused before any run folder exists
    code, _, err = _run(capsys, task, "multimodal_image_only", tmp_path, "--set", "max_epochs=1")
    assert code == 0, err


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('metadata = ["region", "school"]', "metadata columns ['school'] are targets or reserved columns"),
        ('metadata = ["region", "medium"]', "metadata columns ['medium'] are not columns of the dataset"),
    ],
)
def test_bad_metadata_columns_are_one_line_errors(
    paintings: Path, tmp_path: Path, capsys, metadata: str, message: str
) -> None:
    task = _task(paintings, "bad-metadata", metadata=metadata)
    code, _, err = _run(capsys, task, "multimodal", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert message in err


def test_vocabulary_comes_from_training_rows_with_an_unknown_slot() -> None:
    metadata = pd.DataFrame({"genre": ["portrait", "landscape", None, "still life"], "style": ["a", "b", "a", "c"]})
    vocabulary = MetadataVocabulary.fit(metadata, np.array([0, 1, 2]))
    assert vocabulary.values == (("landscape", "portrait"), ("a", "b"))
    assert vocabulary.widths == (3, 3)
    # missing (row 2) and unseen in training (row 3: still life, c) share the unknown slot
    assert vocabulary.encode(metadata).tolist() == [[2, 1], [1, 2], [UNKNOWN, 1], [UNKNOWN, UNKNOWN]]


def test_value_bins_are_decades_with_centres() -> None:
    bins = ValueBins.fit(np.array([1874.0, 1858.0, np.nan, 1944.0]), 10.0)
    assert (bins.first, bins.count) == (185, 10)  # the 1850s ... the 1940s
    codes = bins.encode(np.array([1858.0, 1859.9, 1860.0, np.nan, 1504.0, 2020.0]))
    assert codes.tolist() == [0, 0, 1, MISSING, 0, 9]  # beyond the training range: the end bins
    assert bins.centres[[0, 9]].tolist() == [1855.0, 1945.0]
    assert ValueBins.fit(np.array([-15.0, 5.0]), 10.0).centres.tolist() == [-15.0, -5.0, 5.0]


def test_sgd_with_keras_learning_rate_decay() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    optimiser = DecayingSGD([weight], lr=0.1, momentum=0.9, nesterov=True, decay=0.5)
    group = optimiser.param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 0)
    rates = []
    for _ in range(4):
        weight.grad = torch.ones(2)
        optimiser.step()
        rates.append(group["lr"])
    assert rates == pytest.approx([0.1 / (1 + 0.5 * t) for t in range(4)])  # Keras: lr / (1 + decay · t)
    restored = DecayingSGD([weight], lr=0.1, momentum=0.9, nesterov=True, decay=0.5)
    restored.load_state_dict(optimiser.state_dict())  # the update count is optimiser state
    restored.step()
    assert restored.param_groups[0]["lr"] == pytest.approx(0.1 / (1 + 0.5 * 4))


def test_network_is_figure_9() -> None:
    resnet = build_backbone("resnet50", "none", -1)
    model = MultimodalNet(resnet, (10, 5, 7), (19, 30))
    assert model.aggregation[0].in_features == 22 and model.aggregation[0].out_features == 256  # one joint layer
    assert model.joint[0].p == 0.5 and model.joint[1].in_features == 2048 + 256 and model.joint[1].out_features == 1024
    assert [o.out_features for o in model.outputs] == [19, 30]
    image_only = MultimodalNet(build_backbone("resnet50", "none", -1), (), (19, 30))
    assert image_only.aggregation is None and image_only.joint[1].in_features == 2048


def test_metadata_change_the_outputs() -> None:
    torch.manual_seed(0)
    model = MultimodalNet(build_backbone("tiny_cnn", "none", -1), (3, 4), (5,)).eval()
    images = torch.rand(2, 3, 16, 16)
    first = model(images, torch.tensor([[0, 1], [0, 1]]))[0]
    second = model(images, torch.tensor([[2, 1], [0, 3]]))[0]
    assert not torch.allclose(first, second)
    with pytest.raises(ValueError, match="metadata"):
        model(images)


def test_flip_and_crop_without_crop_only_flips() -> None:
    images = torch.rand(8, 3, 8, 8)
    out = flip_and_crop(images, torch.Generator().manual_seed(0), crop_scale=1.0)
    flipped = [torch.allclose(o, i.flip(2), atol=1e-5) for o, i in zip(out, images, strict=True)]
    kept = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_folds_keep_groups_whole_and_spread_every_stratum() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat([f"g{i}" for i in range(103)], rng.integers(1, 4, 103))
    artist_of_group = rng.integers(0, 7, 103)
    strata = artist_of_group[[int(g[1:]) for g in groups]]
    folds = cross_validation_folds(groups, strata, folds=5, seed=0)
    frame = pd.DataFrame({"group": groups, "fold": folds, "artist": strata}).drop_duplicates("group")
    assert (pd.DataFrame({"group": groups, "fold": folds}).groupby("group")["fold"].nunique() == 1).all()
    per_fold = frame["fold"].value_counts()
    assert sorted(per_fold.index) == [0, 1, 2, 3, 4] and per_fold.max() - per_fold.min() <= 1
    spread = frame.groupby("artist")["fold"].value_counts().unstack(fill_value=0)
    assert (spread.max(axis=1) - spread.min(axis=1) <= 1).all()
    assert np.array_equal(folds, cross_validation_folds(groups, strata, folds=5, seed=0))
    assert not np.array_equal(folds, cross_validation_folds(groups, strata, folds=5, seed=1))
    with pytest.raises(ArtbenchError, match="4 groups"):
        cross_validation_folds(["a", "b", "c", "d"], folds=5)


def test_encodings_on_the_real_omniart_extract() -> None:
    """The raw OmniArt v3 1k extract (research notes §3.2): general_type as metadata, creation_year as decades."""
    path = SHARED / "samples" / "omniart" / "omniart_v3_datadump_1k.csv"
    if not path.is_file():
        pytest.skip(f"real sample {path} is absent")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    vocabulary = MetadataVocabulary.fit(raw[["general_type"]], np.arange(len(raw)))
    assert len(vocabulary.values[0]) == 11 and "unknown" in vocabulary.values[0]  # a value of the dump, not NA
    codes = vocabulary.encode(raw[["general_type"]])[:, 0]
    painting = vocabulary.values[0].index("painting") + 1
    assert (codes == painting).sum() == 640 and (codes != UNKNOWN).all()  # 640 paintings, no missing cell
    years = pd.to_numeric(raw["creation_year"]).to_numpy()
    bins = ValueBins.fit(years, 10.0)
    assert (bins.first, bins.count) == (72, 130)  # 725.0 ... 2017.0: the 720s ... the 2010s
    assert (bins.encode(years) == MISSING).sum() == 18  # the empty years
    folds = cross_validation_folds(raw["id"].to_numpy(), codes, folds=5, seed=0)
    per_fold = pd.crosstab(codes, folds)  # one row per record: 200 per fold, 128 paintings in each
    assert (per_fold.sum() == 200).all() and per_fold.loc[painting].tolist() == [128] * 5


def test_recipe_is_table_3() -> None:
    task = parse_task(
        {"name": "t", "dataset": "csv", "targets": [{"name": "artist"}], "defaults": {"lr": 1e-4, "augment": False}},
        "t",
    )
    for name, use_metadata in (("multimodal", True), ("multimodal_image_only", False)):
        m = resolve_method(METHODS.get(name), task, load_config_file("baselines/belhi2018.toml"))
        assert isinstance(m, MultimodalMethod) and m.use_metadata is use_metadata
        assert (m.backbone, m.weights, m.finetune_blocks, m.metadata_units, m.joint_units, m.dropout) == (
            "resnet50", "imagenet", -1, 256, 1024, 0.5,
        )  # fmt: skip
        assert (m.lr, m.momentum, m.nesterov, m.lr_decay, m.batch_size) == (1e-3, 0.9, True, 1e-6, 64)
        assert (m.max_epochs, m.augment, m.bin_width) == (100, True, 10.0)


def test_reported_numbers_agree_with_the_text() -> None:
    baseline = load_baseline("belhi2018")
    reported = baseline["reported"]
    subsets = ["artists-all", "artists-over50", "artists-over100", "artists-over300"]
    assert list(baseline["subsets"]) == subsets
    multi = [reported["multimodal"][s]["accuracy"]["artist"] for s in subsets]
    single = [reported["multimodal_image_only"][s]["accuracy"]["artist"] for s in subsets]
    gains = np.subtract(multi, single)
    # §3.3: multimodal wins, most on >100 (75 % vs 60 %); more paintings per artist, higher accuracy
    assert (gains > 0).all() and subsets[int(gains.argmax())] == "artists-over100"
    assert np.all(np.diff(multi) > 0) and np.all(np.diff(single) > 0)
    # Table 4's ResNet-50 row is Table 5's single-input >300 result, and the best base CNN (§3.1)
    backbones = reported["multimodal_image_only"]["artists-over300"]["backbones"]
    assert backbones["resnet50"] == single[-1] == max(backbones.values())
    # Table 1: fewer artists and samples as the threshold grows
    counts = [(baseline["subsets"][s]["samples"], baseline["subsets"][s]["artists"]) for s in subsets]
    assert counts == sorted(counts, reverse=True) and counts[0] == (43594, 917)
