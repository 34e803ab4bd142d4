"""Sabatelli et al. (2018) transfer-learning protocols: the new backbones, ImageNet weights without internet, the
three recipes end to end, the two-stage transfer through a run's saved backbones, and the paper's settings."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from artbench.core.errors import ArtbenchError
from artbench.core.params import load_config_file
from artbench.core.task import parse_task
from artbench.methods import METHODS
from artbench.methods.torch.backbones import (
    build_backbone,
    check_backbone,
    imagenet_weights_file,
    resolve_weights,
)
from artbench.methods.torch.heads import make_optimiser
from artbench.methods.torch.transfer import he_uniform_
from artbench.results.baselines import load_baseline
from artbench.runner import resolve_method
from tests.conftest import run_cli

QUICK = ("--device", "cpu", "--tracking-uri", "none", "--set", "max_epochs=1")


def _run(capsys, task: Path, method: str, out: Path, *extra: str, seeds: int = 2) -> Path:
    code, _, err = run_cli(capsys, "run", str(task), method, "--out", str(out), "--seeds", str(seeds), *QUICK, *extra)
    assert code == 0, err
    run_dir = next((out / "tiny-synth" / method).iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["seeds_completed"] == list(range(1, seeds + 1))
    return run_dir


def test_vgg19_and_inception_v3_give_the_papers_feature_sizes() -> None:
    vgg = build_backbone("vgg19", "none", 2)  # 𝒳 = 512 for VGG19, 2048 otherwise (Table 2)
    assert vgg.feature_dim == 512 and len(vgg.blocks) == 5
    assert vgg.body(torch.rand(1, 3, 32, 32)).shape == (1, 512)
    assert [any(p.requires_grad for p in b.parameters()) for b in vgg.blocks] == [False] * 3 + [True] * 2
    inception = build_backbone("inception_v3", "none", -1)
    assert inception.feature_dim == 2048 and len(inception.blocks) == 16
    assert inception.body.train()(torch.rand(2, 3, 75, 75)).shape == (2, 2048)  # no auxiliary output
    with pytest.raises(ArtbenchError, match="inception_v3 needs image_size >= 75, got 64"):
        check_backbone("inception_v3", "none", 64)
    entry = METHODS.get("tl_finetune")
    assert entry.build(entry.fixed, {"backbone": "inception_v3"}).input_size == 299
    assert entry.build(entry.fixed, {"backbone": "vgg19"}).input_size == 224


def _offline(*args, **kwargs):
    raise OSError("no network")


def test_missing_imagenet_weights_name_the_file_and_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(tvm.VGG19_Weights.DEFAULT, "get_state_dict", _offline)
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert imagenet_weights_file("vgg19") == expected
    with pytest.raises(ArtbenchError) as exc:
        check_backbone("vgg19", "imagenet", 224)
    message = str(exc.value)
    assert f"place vgg19-dcbb9e9d.pth (from https://download.pytorch.org/models/vgg19-dcbb9e9d.pth) at {expected}" in (
        message
    )
    assert "\n" not in message and "OSError" in message


def test_a_placed_weights_file_is_used_before_any_download(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(tvm.ResNet18_Weights.DEFAULT, "get_state_dict", _offline)
    file = imagenet_weights_file("resnet18")
    file.parent.mkdir(parents=True)
    placed = tvm.resnet18()
    torch.save(placed.state_dict(), file)
    loaded = build_backbone("resnet18", "imagenet", 0).body
    assert torch.equal(loaded.conv1.weight, placed.conv1.weight)
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(ArtbenchError, match=r"cannot be read .* delete the file and place it again"):
        build_backbone("resnet18", "imagenet", 0)


def test_xception_without_timm_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(ArtbenchError, match=r"^backbone xception needs timm, an optional extra: pip install timm$"):
        check_backbone("xception", "none", 299)


def test_he_uniform_matches_keras() -> None:
    conv = nn.Conv2d(16, 32, 3)
    he_uniform_(conv)
    limit = math.sqrt(6 / (16 * 9))  # Keras he_uniform: U(-√(6/fan_in), √(6/fan_in))
    weight = conv.weight.detach()
    assert weight.abs().max() <= limit and float(weight.std()) == pytest.approx(limit / math.sqrt(3), rel=0.05)
    assert not conv.bias.any()


def test_recipes_follow_the_paper() -> None:
    task = parse_task({"name": "t", "dataset": "csv", "targets": [{"name": "p"}], "defaults": {"batch_size": 64}}, "t")
    config = load_config_file("baselines/sabatelli2018.toml")
    off = resolve_method(METHODS.get("tl_offshelf"), task, config)
    tuned = resolve_method(METHODS.get("tl_finetune"), task, config)
    scratch = resolve_method(METHODS.get("tl_scratch"), task, config)
    assert (off.protocol, tuned.protocol, scratch.protocol) == ("off_the_shelf", "fine_tuning", "fine_tuning")
    assert (scratch.weights, scratch.init, tuned.weights) == ("none", "he_uniform", "imagenet")
    assert (tuned.batch_size, tuned.lr, tuned.patience, tuned.image_size) == (32, 1e-3, 7, 0)
    rmsprop = make_optimiser(off, [nn.Parameter(torch.zeros(1))])
    assert isinstance(rmsprop, torch.optim.RMSprop)
    assert (rmsprop.defaults["lr"], rmsprop.defaults["alpha"], rmsprop.defaults["eps"]) == (1e-3, 0.9, 1e-8)
    sgd = make_optimiser(tuned, [nn.Parameter(torch.zeros(1))])
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9


def test_reported_numbers_agree_with_the_papers_text() -> None:
    """§3.1 of the paper / research notes §2.5: best off the shelf VGG19 (92.12, 77.33, 38.11 %), best fine-tuned
    ResNet-50 on material (92.95 %) and type (91.30 %), Inception-V3 on artists (51.73 %)."""
    reported = load_baseline("sabatelli2018")["reported"]
    for challenge, (best_off, best_tuned) in {
        "material": ("vgg19", "resnet50"),
        "type": ("vgg19", "resnet50"),
        "artist": ("vgg19", "inception_v3"),
    }.items():
        off = reported["tl_offshelf"][f"rijksmuseum-{challenge}"]["by_backbone"]
        tuned = reported["tl_finetune"][f"rijksmuseum-{challenge}"]["by_backbone"]
        assert max(off, key=off.get) == best_off and max(tuned, key=tuned.get) == best_tuned
        assert all(tuned[b] > off[b] for b in off)  # fine-tuning always wins (§3.2)
    assert reported["tl_finetune"]["rijksmuseum-material"]["accuracy"]["material"] == 92.95
    antwerp = reported["tl_finetune"]["antwerp-artist"]
    assert all(antwerp["rijksmuseum_by_backbone"][b] > antwerp["imagenet_by_backbone"][b] for b in antwerp[
        "imagenet_by_backbone"])  # fmt: skip


def test_three_recipes_and_the_two_stage_transfer(tiny_task: Path, tmp_path: Path, capsys) -> None:
    small = ("--set", "strategy=multitask", "--set", "batch_size=16")
    tuned = _run(capsys, tiny_task, "tl_finetune", tmp_path, *small)
    scratch = _run(capsys, tiny_task, "tl_scratch", tmp_path, *small)
    assert (tuned / "seed-1" / "backbone.pt").is_file() and (scratch / "seed-2" / "backbone.pt").is_file()
    # θ̂: seed k starts from seed k of the fine-tuned run, off the shelf (cached features of that backbone) ...
    transfer = f"weights=run:{tuned}"
    off = _run(capsys, tiny_task, "tl_offshelf", tmp_path, "--set", transfer, "--set", "standardise_features=true")
    assert not list((off / "seed-1").glob("backbone*.pt"))  # a frozen backbone is not saved again
    caches = [json.loads((off / f"seed-{k}" / "metrics.json").read_text())["feature_cache"] for k in (1, 2)]
    assert caches[0] != caches[1]  # two source backbones, two feature caches
    # ... and fine-tuned again; the backbone loaded is the one saved
    saved = torch.load(tuned / "seed-2" / "backbone.pt", weights_only=True)
    assert saved["backbone"] == "tiny_cnn"
    loaded = build_backbone("tiny_cnn", resolve_weights(f"run:{tuned}", "tiny_cnn", 2), -1).body.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved["state_dict"].items())
    _run(capsys, tiny_task, "tl_finetune", tmp_path / "again", *small, "--set", f"weights=run:{tuned}#2", seeds=1)


def test_single_task_saves_one_backbone_per_target(tiny_task: Path, tmp_path: Path, capsys) -> None:
    run_dir = _run(capsys, tiny_task, "tl_finetune", tmp_path, "--set", "batch_size=32", seeds=1)
    names = sorted(p.name for p in (run_dir / "seed-1").glob("backbone*.pt"))
    assert names == [f"backbone.{t}.pt" for t in sorted(["place", "material", "time", "technique", "depiction"])]
    with pytest.raises(ArtbenchError, match=r"it saved backbone\.depiction\.pt, .*pick one with run:<run folder>@"):
        resolve_weights(f"run:{run_dir}", "tiny_cnn", 1)
    assert resolve_weights(f"run:{run_dir}@time", "tiny_cnn", 1).endswith("seed-1/backbone.time.pt")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("backbone=vgg", "unknown backbone 'vgg'"),
        ("weights=run:/nonexistent/run", "is not a run folder (no config.json)"),
        ("init=he_uniform", "init=he_uniform re-initialises the backbone: use weights=none, not 'imagenet'"),
    ],
)
def test_bad_parameters_fail_before_training(tiny_task: Path, tmp_path: Path, capsys, setting, message) -> None:
    extra = ("--set", "weights=imagenet") if setting.startswith("init") else ()
    code, _, err = run_cli(
        capsys, "run", str(tiny_task), "tl_finetune", "--out", str(tmp_path), *extra, "--set", setting
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tiny-synth").exists()


def test_run_weights_errors(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "seed-1").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"params": {"backbone": "tiny_cnn"}}))
    with pytest.raises(ArtbenchError, match="that run trained backbone 'tiny_cnn', not 'resnet50'; set backbone"):
        resolve_weights(f"run:{run_dir}", "resnet50", 1)
    with pytest.raises(ArtbenchError, match=r"no finished seed 3 \(seeds: 1\); pin one with run:<run folder>#<seed>"):
        resolve_weights(f"run:{run_dir}", "tiny_cnn", 3)
    with pytest.raises(ArtbenchError, match=r"has no backbone\.pt: only methods that train their backbone"):
        resolve_weights(f"run:{run_dir}#1", "tiny_cnn", 2)
    with pytest.raises(ArtbenchError, match="'#x' is not a seed"):
        resolve_weights(f"run:{run_dir}#x", "tiny_cnn", 2)
    assert resolve_weights("imagenet", "resnet50", 1) == "imagenet"
