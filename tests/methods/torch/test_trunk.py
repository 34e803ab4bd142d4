"""SilkNet's frozen trunk (issue 14): backbone stages that compose to the body, a trunk without autograd, its
float16 cache (rebuilt when damaged or stale), training on it end to end and after a resume, and the errors of
``precompute_trunk``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from artbench.core.errors import ArtbenchError
from artbench.core.targets import TargetSpec
from artbench.data.cache import ImageCache
from artbench.data.task_data import prepare_task
from artbench.methods import METHODS, RunContext
from artbench.methods.torch import features, trainer
from artbench.methods.torch.backbones import build_backbone
from artbench.methods.torch.batches import TrunkSource, iterate_batches, normalise
from artbench.methods.torch.network import SilkNet
from artbench.methods.torch.objective import SilkNetObjective
from artbench.methods.torch.trunk import TrunkCache, cached_trunk, trunk_source
from artbench.tasks import load_task
from tests.conftest import run_cli

TARGET = TargetSpec("place", classes=("a", "b", "c"))


def _composed(body: nn.Module, stages: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    for path in stages:
        x = body.get_submodule(path)(x)
    return x.flatten(1)


@pytest.mark.parametrize("name", ["resnet18", "tiny_cnn"])
def test_the_stages_compose_to_the_body(name: str) -> None:
    torch.manual_seed(0)
    backbone = build_backbone(name, "none", -1)
    body = backbone.body.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(_composed(body, backbone.stages, x), body(x))
    assert backbone.stages[-1] in ("avgpool", "pool") and set(backbone.stages) <= {n for n, _ in body.named_modules()}


def test_backbones_whose_forward_is_not_a_chain_have_no_stages() -> None:
    assert build_backbone("inception_v3", "none", -1).stages is None


def test_the_trunk_is_the_frozen_prefix_and_runs_without_autograd() -> None:
    torch.manual_seed(0)
    model = SilkNet(build_backbone("tiny_cnn", "none", 2), [3], (8,)).train()
    assert model.trunk_depth == 2  # blocks.0 and blocks.1 frozen; blocks.2, blocks.3 trained
    assert SilkNet(build_backbone("tiny_cnn", "none", -1), [3]).trunk_depth == 0
    assert SilkNet(build_backbone("tiny_cnn", "none", 0), [3]).trunk_depth == 5  # everything up to the pooling
    images = torch.randn(4, 3, 32, 32, requires_grad=True)  # autograd would record the trunk if it could
    trunk = model.trunk(images)
    assert trunk.grad_fn is None and not trunk.requires_grad
    model.eval()
    with torch.no_grad():
        direct, via_trunk = model(images), model(trunk, from_trunk=True)
    assert torch.equal(direct.logits[0], via_trunk.logits[0])
    assert set(model.state_dict()) == {f"backbone.{k}" for k in model.backbone.state_dict()} | {
        k for k in model.state_dict() if not k.startswith("backbone.")
    }


@pytest.fixture
def tiny_data(tiny_task: Path):
    return prepare_task(load_task(str(tiny_task)))


def _network(seed: int = 0) -> SilkNet:
    method = METHODS.get("mtl").build({"backbone": "tiny_cnn", "weights": "none", "finetune_blocks": 2})
    torch.manual_seed(seed)
    return method.build_network([TARGET], torch.device("cpu"))


def test_the_trunk_cache_matches_the_trunk_and_is_rebuilt_when_damaged_or_stale(tiny_data, capsys) -> None:
    ctx = RunContext(torch.device("cpu"), amp=False)
    model = _network()
    first = cached_trunk(tiny_data, model, "tiny_cnn", 32, ctx)
    values = np.load(first.path)
    assert first.built and values.dtype == np.float16 and values.shape == (len(tiny_data.dataset.table), 8, 8, 32)
    images = torch.from_numpy(np.array(tiny_data.images(32).images[:5])).permute(0, 3, 1, 2).float() / 255
    expected = model.trunk(normalise(images)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(values[:5].astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    assert not cached_trunk(tiny_data, model, "tiny_cnn", 32, ctx).built
    assert cached_trunk(tiny_data, _network(seed=1), "tiny_cnn", 32, ctx).path != first.path  # other weights

    features._verified.clear()  # as a new process would
    with first.path.open("r+b") as f:  # same size, other bytes
        f.seek(first.path.stat().st_size // 2)
        f.write(b"\x7f" * 64)
    again = cached_trunk(tiny_data, model, "tiny_cnn", 32, ctx)
    assert again.built and "damaged" in "".join(capsys.readouterr())
    np.testing.assert_array_equal(np.load(again.path), values)
    sidecar = first.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["key"]["fingerprint"] = "other"
    sidecar.write_text(json.dumps(meta))
    features._verified.clear()
    assert cached_trunk(tiny_data, model, "tiny_cnn", 32, ctx).built
    assert "stale" in "".join(capsys.readouterr())


def test_outputs_beyond_float16_are_stored_divided_by_a_power_of_two(tiny_data, monkeypatch) -> None:
    """From the third batch on the trunk's outputs reach ~1e7 (as a random ResNet-152's do): every row, the earlier
    ones included, is stored divided by one power of two, and the batches give the outputs back."""
    ctx = RunContext(torch.device("cpu"), amp=False)
    model = _network(seed=21)
    images = torch.from_numpy(np.array(tiny_data.images(32).images)).permute(0, 3, 1, 2).float() / 255
    plain = model.trunk(normalise(images)).permute(0, 2, 3, 1).numpy()
    trunk, calls = SilkNet.trunk, {"n": 0}

    def growing(self: SilkNet, x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1  # call 1 is the shape probe, calls 2, 3, ... the batches of 100 rows
        return trunk(self, x) * (1e6 if calls["n"] >= 4 else 1.0)

    monkeypatch.setattr(SilkNet, "trunk", growing)
    cache = cached_trunk(tiny_data, model, "tiny_cnn", 32, ctx, batch_size=100)
    assert cache.scale > 1 and cache.scale == 2.0 ** round(np.log2(cache.scale))
    expected = plain * np.where(np.arange(len(plain)) >= 200, 1e6, 1.0)[:, None, None, None]
    stored = np.load(cache.path).astype(np.float32) * cache.scale
    np.testing.assert_allclose(stored, expected, rtol=1e-3, atol=cache.scale * 2.0**-24)
    source = trunk_source(cache, torch.device("cpu"))
    (batch,) = iterate_batches(ImageCache(np.zeros((400, 1, 1, 3), np.uint8)), [], np.arange(190, 210), 20,
                               torch.device("cpu"), trunk=source, images=False)  # fmt: skip
    np.testing.assert_allclose(batch.trunk.permute(0, 2, 3, 1).numpy(), stored[190:210], rtol=1e-6)


def test_a_trunk_resident_on_the_device_gives_the_batches_of_the_memory_map() -> None:
    values = np.random.default_rng(0).standard_normal((30, 2, 2, 4)).astype(np.float16)
    cache, cpu = ImageCache(np.zeros((30, 1, 1, 3), np.uint8)), torch.device("cpu")
    batches = {}
    for name, source in (
        ("mapped", TrunkSource(values, 4.0)),
        ("resident", TrunkSource(torch.from_numpy(values), 4.0)),
    ):
        rng = np.random.default_rng(1)
        batches[name] = list(iterate_batches(cache, [], np.arange(30), 8, cpu, rng=rng, trunk=source, images=False))
    for a, b in zip(batches["mapped"], batches["resident"], strict=True):
        assert a.images is None and np.array_equal(a.index, b.index) and torch.equal(a.trunk, b.trunk)
        assert torch.equal(a.trunk, torch.from_numpy(values[a.index]).permute(0, 3, 1, 2).float() * 4)


def test_old_trunks_beyond_the_budget_are_removed(tiny_data, monkeypatch) -> None:
    ctx = RunContext(torch.device("cpu"), amp=False)
    first = cached_trunk(tiny_data, _network(seed=11), "tiny_cnn", 32, ctx)
    monkeypatch.setenv("ARTBENCH_TRUNK_CACHE_GB", str(1.5 * first.path.stat().st_size / 1e9))
    second = cached_trunk(tiny_data, _network(seed=12), "tiny_cnn", 32, ctx)
    assert second.path.is_file() and not first.path.exists() and not first.path.with_suffix(".json").exists()
    monkeypatch.setenv("ARTBENCH_TRUNK_CACHE_GB", "lots")
    with pytest.raises(ArtbenchError, match="ARTBENCH_TRUNK_CACHE_GB"):
        cached_trunk(tiny_data, _network(seed=13), "tiny_cnn", 32, ctx)


def _fit_on_trunk(folder: Path, stop_at_epoch: int | None = None):
    """A SilkNet with L_sem and L_slf trained on precomputed trunk outputs (its x' through the trunk), checkpointed;
    a KeyboardInterrupt hits ``stop_at_epoch`` before its checkpoint."""
    rng = np.random.default_rng(0)
    cache = ImageCache(rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8))
    labels = [rng.integers(0, 3, 40)]
    method = METHODS.get("mtl_fo_rall").build(
        {"backbone": "tiny_cnn", "weights": "none", "finetune_blocks": 2, "joint_layers": (8,), "batch_size": 8,
         "max_epochs": 4, "patience": 3, "image_size": 16, "channels_last": False,
         "gamma": 2.0, "lambda_aux": 1.0, "alpha_sem": 0.5, "alpha_co": 0.0, "alpha_slf": 0.5}
    )  # fmt: skip
    torch.manual_seed(1)
    model = method.build_network([TARGET], torch.device("cpu"))
    images = torch.from_numpy(cache.images).permute(0, 3, 1, 2).float() / 255
    source = TrunkSource(model.trunk(normalise(images)).permute(0, 2, 3, 1).half().numpy())
    ctx = RunContext(torch.device("cpu"), amp=False, checkpoint_dir=folder / "checkpoints")
    criterion = method._criterion(cache, [TARGET], labels, np.arange(30, 40), ctx, source)
    calls = {"n": 0}

    def interrupted(m: nn.Module) -> float:
        calls["n"] += 1
        if calls["n"] == stop_at_epoch:
            raise KeyboardInterrupt
        return criterion(m)

    objective = SilkNetObjective(method, ["multiclass"])
    result = trainer.fit(
        model, objective, cache, labels, np.arange(30), interrupted, method, ctx, seed=3, trunk=source,
        trunk_images=objective.needs_images,
    )  # fmt: skip
    return model, result


def test_a_fit_on_the_trunk_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    reference, expected = _fit_on_trunk(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        _fit_on_trunk(tmp_path / "resumed", stop_at_epoch=3)
    model, result = _fit_on_trunk(tmp_path / "resumed")
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items())
    assert result.history == expected.history and result.resumed_epochs == 2
    assert "train_loss_slf" in result.history[0]


def _scores(out: Path, method: str) -> dict[str, np.ndarray]:
    (run,) = out.glob(f"tiny-synth/{method}/*")
    with np.load(run / "seed-1" / "scores.npz") as scores:
        return dict(scores)


def _train_both_ways(tiny_task: Path, out: Path, capsys) -> dict[str, dict[str, np.ndarray]]:
    common = ["--seeds", "1", "--device", "cpu", "--tracking-uri", "none", "--set", "finetune_blocks=2"]
    common += ["--set", "max_epochs=1"]
    results = {}
    for setting in ("auto", "false"):
        args = ["run", str(tiny_task), "mtl_fo_rall", *common, "--set", f"precompute_trunk={setting}"]
        code, _, err = run_cli(capsys, *args, "--out", str(out / setting))
        assert code == 0, err
        results[setting] = _scores(out / setting, "mtl_fo_rall")
        (metrics,) = (out / setting).glob("tiny-synth/mtl_fo_rall/*/seed-1/metrics.json")
        info = json.loads(metrics.read_text())
        assert info["trunk_precomputed"] == {"all": setting == "auto"}  # what auto resolved to is on record
        assert (info["trunk_seconds"] > 0) == (setting == "auto")
    return results


def test_training_on_the_precomputed_trunk_matches_the_per_batch_trunk(tiny_task: Path, tmp_path: Path, capsys):
    """One epoch of mtl_fo_rall (L_sem, L_co and L_slf, whose x' goes through the trunk): the float16 cache moves
    the scores by little, and when the per-batch trunk rounds to float16 too, both ways train the same network."""
    results = _train_both_ways(tiny_task, tmp_path / "plain", capsys)
    for name, values in results["auto"].items():
        np.testing.assert_allclose(values, results["false"][name], atol=1e-2)
    trunk = SilkNet.trunk
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SilkNet, "trunk", lambda self, images: trunk(self, images).half().float())
        results = _train_both_ways(tiny_task, tmp_path / "rounded", capsys)
    for name, values in results["auto"].items():
        np.testing.assert_allclose(values, results["false"][name], atol=1e-5)


def test_precompute_trunk_true_where_it_cannot_apply_is_a_one_line_error(tiny_task: Path, capsys) -> None:
    base = ["run", str(tiny_task), "mtl", "--seeds", "1", "--tracking-uri", "none", "--set", "precompute_trunk=true"]
    for extra, message in (
        (["--set", "finetune_blocks=2", "--set", "augment=true"], "needs augment=false"),
        ([], "no frozen trunk"),
    ):
        code, _, err = run_cli(capsys, *base, *extra)
        assert code == 2 and message in err and "Traceback" not in err


def test_a_resident_trunk_is_reused_and_replaced(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros((2, 1, 1, 3), np.float16))
    np.save(b, np.ones((2, 1, 1, 3), np.float16))
    cpu = torch.device("cpu")
    first = trunk_source(TrunkCache(a, 1.0, False, 0.0), cpu)
    assert trunk_source(TrunkCache(a, 1.0, False, 0.0), cpu) is first
    assert float(np.asarray(trunk_source(TrunkCache(b, 1.0, False, 0.0), cpu).values).sum()) == 6.0
