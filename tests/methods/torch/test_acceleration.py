"""Execution settings (issue 14, "GPU throughput"): torch.compile in place with an eager fallback, fused Adam only on
CUDA, deterministic pooling and the process-wide determinism switches."""

import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from artbench.core.device import CUBLAS_WORKSPACE, configure_determinism
from artbench.methods import RunContext
from artbench.methods.base import TrainingCost
from artbench.methods.torch import acceleration, trainer
from artbench.methods.torch.acceleration import GlobalAvgPool, adam, deterministic_pooling, prepare_model

from .test_trainer import CPU, _setup

needs_compiler = pytest.mark.skipif(shutil.which("gcc") is None, reason="torch.compile on the CPU needs a C compiler")


@needs_compiler
def test_a_compiled_model_keeps_the_eager_state_dict_keys() -> None:
    model, *_ = _setup()
    eager_keys = list(model.state_dict())
    ctx = replace(CPU, compile=True, cost=TrainingCost())
    prepare_model(model, ctx)
    assert ctx.cost.compiled and ctx.cost.compile_error is None
    assert list(model.state_dict()) == eager_keys and not any("_orig_mod" in k for k in eager_keys)


class _Stop(Exception):
    pass


@needs_compiler
def test_a_checkpoint_written_compiled_resumes_eager(tmp_path) -> None:
    model, objective, cache, labels, method = _setup(val_labels=0)
    calls = iter([0.9, _Stop])

    def criterion(_m):
        value = next(calls)
        if value is _Stop:
            raise _Stop  # interrupted in epoch 2, after epoch 1's checkpoint
        return value

    compiled = replace(CPU, compile=True, checkpoint_dir=tmp_path, cost=TrainingCost())
    with pytest.raises(_Stop):
        trainer.fit(model, objective, cache, labels, np.arange(16), criterion, method, compiled, seed=0)
    assert compiled.cost.compiled
    written = torch.load(next(tmp_path.glob("*.pt")), weights_only=True)
    assert not any("_orig_mod" in k for k in written["model"])

    model, objective, cache, labels, method = _setup(val_labels=0)
    eager = replace(CPU, checkpoint_dir=tmp_path, cost=TrainingCost())
    result = trainer.fit(model, objective, cache, labels, np.arange(16), lambda m: 1.0, method, eager, seed=0)
    assert result.resumed_epochs == 1 and not eager.cost.compiled
    assert result.history[0]["val_criterion"] == 0.9  # epoch 1 came from the compiled run's checkpoint


def test_the_compiler_probe_reports_a_failure(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no working C++ compiler found\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    assert acceleration.compile_error.__wrapped__("cpu") == "RuntimeError: no working C++ compiler found"


def test_a_compiler_failure_trains_eagerly_with_one_warning(monkeypatch, capsys) -> None:
    monkeypatch.setattr(acceleration, "compile_error", lambda device_type: "RuntimeError: no compiler")
    monkeypatch.setattr(acceleration, "_warned", set())
    contexts = [replace(CPU, compile=True, cost=TrainingCost()) for _ in range(2)]
    for ctx in contexts:
        model, *_ = _setup()
        prepare_model(model, ctx)
        assert not ctx.cost.compiled and ctx.cost.compile_error == "RuntimeError: no compiler"
        assert not hasattr(model, "_compiled_call_impl") or model._compiled_call_impl is None
    assert capsys.readouterr().err.count("torch.compile does not work on cpu") == 1


def test_adam_is_not_fused_on_the_cpu_and_its_state_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    optimiser = adam(net.parameters(), lr=1e-2)
    assert not optimiser.defaults.get("fused")
    for _ in range(3):
        optimiser.zero_grad()
        net(torch.randn(8, 4)).square().sum().backward()
        optimiser.step()
    torch.save(optimiser.state_dict(), tmp_path / "opt.pt")
    again = adam(net.parameters(), lr=1e-2)
    again.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    for p in net.parameters():
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(again.state[p][key], optimiser.state[p][key])
    assert not acceleration.use_fused_adam([torch.zeros(2)]) and not acceleration.use_fused_adam([])


def test_deterministic_pooling_gives_the_same_values_and_gradients() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    swapped = nn.Sequential(*[m for m in net])  # same parameters
    swapped[1] = nn.AdaptiveAvgPool2d(1)
    assert deterministic_pooling(swapped) == 1 and isinstance(swapped[1], GlobalAvgPool)
    x = torch.randn(2, 3, 9, 7)
    torch.testing.assert_close(swapped(x), net(x))
    (g1,) = torch.autograd.grad(net(x).sum(), net[0].weight)
    (g2,) = torch.autograd.grad(swapped(x).sum(), swapped[0].weight)
    torch.testing.assert_close(g1, g2)
    assert deterministic_pooling(nn.Sequential(nn.AdaptiveAvgPool2d(2))) == 0  # only global pooling is swapped


def test_prepare_model_records_the_setting_and_keeps_cpu_models_as_they_are() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))
    ctx = RunContext(torch.device("cpu"), deterministic=True)
    prepare_model(model, ctx)
    assert ctx.cost.deterministic is True and isinstance(model[1], nn.AdaptiveAvgPool2d)


def test_configure_determinism_sets_and_clears_the_switches(monkeypatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        configure_determinism(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    finally:
        configure_determinism(False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
