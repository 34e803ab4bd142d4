"""The training loop: early stopping restores the best epoch; a diverged or absent criterion is handled; the
method-independent validation criterion."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from artbench.core.errors import ArtbenchError
from artbench.data.cache import ImageCache
from artbench.methods import METHODS, RunContext
from artbench.methods.torch import trainer
from artbench.methods.torch.objective import SilkNetObjective
from artbench.methods.torch.silknet import SilkNetMethod

CPU = RunContext(torch.device("cpu"), amp=False, description="seed 1")


def _setup(val_labels: int = -1):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cache = ImageCache(rng.integers(0, 255, (24, 16, 16, 3), dtype=np.uint8))
    labels = rng.integers(0, 3, 24)
    labels[16:] = val_labels if val_labels < 0 else labels[16:]
    method = METHODS.get("mtl").build(
        {"backbone": "tiny_cnn", "weights": "none", "finetune_blocks": -1, "joint_layers": (8,), "batch_size": 8,
         "max_epochs": 6, "patience": 2, "image_size": 16, "channels_last": False}
    )  # fmt: skip
    assert isinstance(method, SilkNetMethod)
    from artbench.core.targets import TargetSpec

    model = method.build_network([TargetSpec("place", classes=("a", "b", "c"))], torch.device("cpu"))
    return model, SilkNetObjective(method, ["multiclass"]), cache, [labels], method


def _fit_with_criterion(values, val_labels=0):
    model, objective, cache, labels, method = _setup(val_labels)
    script = iter(values)
    snapshots = []
    ctx = replace(CPU, log_epoch=lambda e, r: snapshots.append({k: v.clone() for k, v in model.state_dict().items()}))
    result = trainer.fit(
        model, objective, cache, labels, np.arange(16), lambda m: next(script), method, ctx, seed=0,
        early_stopping=val_labels >= 0,
    )  # fmt: skip
    return model, result, snapshots


def _same_weights(model, state) -> bool:
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_restores_the_best_epoch_and_stops_after_patience() -> None:
    model, result, snapshots = _fit_with_criterion([1.0, 0.5, 0.7, 0.6, 0.4, 0.3])
    assert (result.best_epoch, result.epochs_run) == (2, 4)  # epochs 3 and 4 did not improve, patience 2
    assert _same_weights(model, snapshots[1]) and not _same_weights(model, snapshots[3])


def test_a_diverged_criterion_never_becomes_the_best() -> None:
    model, result, snapshots = _fit_with_criterion([1.0, 0.5, math.nan, math.nan, math.nan])
    assert (result.best_epoch, result.epochs_run) == (2, 4)
    assert _same_weights(model, snapshots[1])


def test_without_early_stopping_it_trains_every_epoch_and_keeps_the_last() -> None:
    model, result, snapshots = _fit_with_criterion([math.nan] * 6, val_labels=-1)
    assert (result.best_epoch, result.epochs_run) == (6, 6)
    assert _same_weights(model, snapshots[-1])


def test_too_few_training_labels_is_a_clear_error() -> None:
    model, objective, cache, labels, method = _setup()
    ctx = replace(CPU, description="seed 1 · place")
    with pytest.raises(ArtbenchError, match="seed 1 · place: 1 labelled training sample"):
        trainer.fit(model, objective, cache, labels, np.arange(1), lambda m: 0.0, method, ctx, seed=0)


def test_a_criterion_that_is_never_finite_keeps_the_initial_weights(capsys) -> None:
    model, result, snapshots = _fit_with_criterion([math.nan] * 6)
    assert (result.best_epoch, result.epochs_run) == (0, 2)  # patience 2
    assert not _same_weights(model, snapshots[0])  # epoch 1 changed the weights; the initial ones came back
    assert "validation criterion was never finite" in capsys.readouterr().err


def test_validation_cross_entropy_is_the_same_for_every_recipe() -> None:
    """The early-stopping criterion ignores γ and the clustering weights: one rule for every Table 3 row."""
    model, _, cache, labels, method = _setup(val_labels=0)
    from artbench.core.targets import TargetSpec

    targets = [TargetSpec("place", classes=("a", "b", "c"))]
    rows = np.arange(16, 24)
    plain = method._criterion(cache, targets, labels, rows, CPU)(model)
    focal = replace(method, gamma=2.0, lambda_aux=1.0, alpha_sem=1.0)._criterion(cache, targets, labels, rows, CPU)
    assert focal(model) == pytest.approx(plain)
    with torch.no_grad():
        model.eval()
        from artbench.methods.torch.batches import normalise

        images = torch.from_numpy(np.ascontiguousarray(cache.images[rows])).permute(0, 3, 1, 2).float() / 255
        logits = model(normalise(images)).logits[0]
        expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[0][rows]))
    assert plain == pytest.approx(float(expected), rel=1e-5)
    assert plain == pytest.approx(math.log(3), rel=0.5)  # an untrained 3-way classifier is near chance
