"""The training loop: early stopping restores the best epoch; a diverged or absent validation loss is handled."""

import math

import numpy as np
import pytest
import torch

from artbench.config import RunConfig
from artbench.data.cache import ImageCache
from artbench.errors import ArtbenchError
from artbench.methods.objective import SilkNetObjective
from artbench.models.backbones import build_backbone
from artbench.models.silknet import SilkNet
from artbench.training import loop


def _setup(val_labels: int = -1):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cache = ImageCache(rng.integers(0, 255, (24, 16, 16, 3), dtype=np.uint8))
    labels = rng.integers(0, 3, (24, 1))
    labels[16:] = val_labels if val_labels < 0 else labels[16:]
    cfg = RunConfig(batch_size=8, max_epochs=6, patience=2, image_size=16, augment=False, channels_last=False)
    model = SilkNet(build_backbone("tiny_cnn", "none", -1), [3], joint_layers=(8,))
    return model, SilkNetObjective(cfg), cache, labels, cfg


def _fit_with_val_losses(monkeypatch, losses, val_labels=0):
    model, objective, cache, labels, cfg = _setup(val_labels)
    script = iter(losses)
    monkeypatch.setattr(loop, "validation_loss", lambda *args: next(script))
    snapshots = []
    result = loop.fit(
        model, objective, cache, labels, np.arange(16), np.arange(16, 24), cfg, torch.device("cpu"), seed=0,
        on_epoch=lambda epoch, record: snapshots.append({k: v.clone() for k, v in model.state_dict().items()}),
    )  # fmt: skip
    return model, result, snapshots


def _same_weights(model, state) -> bool:
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_restores_the_best_epoch_and_stops_after_patience(monkeypatch) -> None:
    model, result, snapshots = _fit_with_val_losses(monkeypatch, [1.0, 0.5, 0.7, 0.6, 0.4, 0.3])
    assert (result.best_epoch, result.epochs_run) == (2, 4)  # epochs 3 and 4 did not improve, patience 2
    assert _same_weights(model, snapshots[1]) and not _same_weights(model, snapshots[3])


def test_a_diverged_validation_loss_never_becomes_the_best(monkeypatch) -> None:
    model, result, snapshots = _fit_with_val_losses(monkeypatch, [1.0, 0.5, math.nan, math.nan, math.nan])
    assert (result.best_epoch, result.epochs_run) == (2, 4)
    assert _same_weights(model, snapshots[1])


def test_without_validation_labels_it_trains_every_epoch_and_keeps_the_last(monkeypatch) -> None:
    model, result, snapshots = _fit_with_val_losses(monkeypatch, [math.nan] * 6, val_labels=-1)
    assert (result.best_epoch, result.epochs_run) == (6, 6)
    assert _same_weights(model, snapshots[-1])


def test_validation_loss_is_nan_only_without_labels() -> None:
    model, objective, cache, labels, cfg = _setup(val_labels=-1)
    val = np.arange(16, 24)
    assert math.isnan(loop.validation_loss(model, objective, cache, labels, val, cfg, torch.device("cpu")))
    value = loop.validation_loss(model, objective, cache, labels, np.arange(16), cfg, torch.device("cpu"))
    assert value == pytest.approx(math.log(3), rel=0.5)  # an untrained 3-way classifier is near chance


def test_too_few_training_labels_is_a_clear_error() -> None:
    model, objective, cache, labels, cfg = _setup()
    with pytest.raises(ArtbenchError, match="seed 1 · place: 1 labelled training sample"):
        loop.fit(
            model, objective, cache, labels, np.arange(1), np.arange(16, 24), cfg, torch.device("cpu"), seed=0,
            description="seed 1 · place",
        )  # fmt: skip


def test_a_validation_loss_that_is_never_finite_keeps_the_initial_weights(monkeypatch, capsys) -> None:
    model, result, snapshots = _fit_with_val_losses(monkeypatch, [math.nan] * 6)
    assert (result.best_epoch, result.epochs_run) == (0, 2)  # patience 2
    assert not _same_weights(model, snapshots[0])  # epoch 1 changed the weights; the initial ones came back
    assert "validation loss was never finite" in capsys.readouterr().err
