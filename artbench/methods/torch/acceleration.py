"""Execution settings of the torch training loops (issue 14, "GPU throughput"): ``torch.compile``, deterministic
CUDA kernels and fused Adam.

* :func:`prepare_model` is called by every training loop on its model before the first step. With
  ``ctx.compile`` it compiles the model in place (:meth:`torch.nn.Module.compile`: the state-dict keys stay those of
  the eager model, so checkpoints, resume, best-epoch restore and saved backbones are unaffected). Whether the
  compiler works on the device is probed once per process on a two-layer network; when it does not (no C compiler
  for the CPU backend, no Triton for CUDA, ...) the model runs eagerly, one warning says why and the seed's cost
  records ``compiled = false`` with the reason. With ``ctx.deterministic`` on CUDA, global average pooling runs as
  a mean over the spatial axes: ``AdaptiveAvgPool2d``'s CUDA backward has no deterministic kernel and would stop
  the run (the values are identical; it holds no parameters).
* :func:`adam`: Adam with the fused CUDA kernel when every parameter is a floating-point CUDA tensor (one kernel
  launch per step instead of several per parameter); the reference implementation elsewhere, so that CPU runs stay
  as they were.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
from torch import nn

from artbench.core.progress import console
from artbench.methods.base import RunContext


class GlobalAvgPool(nn.Module):
    """``[N, C, H, W]`` → ``[N, C, 1, 1]``, the mean over H and W: ``AdaptiveAvgPool2d(1)`` with a deterministic
    backward on CUDA."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1), keepdim=True)


def deterministic_pooling(model: nn.Module) -> int:
    """Replace every ``AdaptiveAvgPool2d`` with output size 1 in ``model`` by :class:`GlobalAvgPool`; return how
    many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size in (1, (1, 1)):
                setattr(parent, name, GlobalAvgPool())
                replaced += 1
    return replaced


@functools.cache
def compile_error(device_type: str) -> str | None:
    """Why ``torch.compile`` (the default inductor backend) cannot train on this kind of device, or None when a
    two-layer network compiles and runs forward and backward there. Probed once per process."""
    device = torch.device(device_type)
    try:
        net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1)).to(device)
        x = torch.randn(4, 8, device=device)
        torch.compile(net)(x).sum().backward()
    except Exception as exc:  # any compiler failure (missing C compiler, Triton, unsupported GPU) means: run eager
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first}"[:300]
    return None


_warned: set[str] = set()


def prepare_model(model: nn.Module, ctx: RunContext) -> nn.Module:
    """Apply the run's execution settings to ``model`` in place (see the module docstring) and record them in
    ``ctx.cost``; returns ``model``."""
    ctx.cost.deterministic = ctx.deterministic
    if ctx.deterministic and ctx.device.type == "cuda":
        deterministic_pooling(model)
    if not ctx.compile:
        return model
    error = compile_error(ctx.device.type)
    if error is not None:
        ctx.cost.compile_error = error
        if ctx.device.type not in _warned:
            _warned.add(ctx.device.type)
            console.print(
                f"[yellow]warning:[/] torch.compile does not work on {ctx.device.type} here ({error}); "
                "training eagerly (recorded as compiled = false in the cost)",
                soft_wrap=True,
            )
        return model
    model.compile()
    ctx.cost.compiled = True
    return model


def use_fused_adam(params: Iterable[torch.Tensor]) -> bool:
    """Whether the fused Adam kernel applies: every parameter a floating-point CUDA tensor (and at least one)."""
    params = list(params)
    return bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)


def adam(
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused on CUDA (see :func:`use_fused_adam`), the reference (for-each) one elsewhere."""
    params = list(params)
    fused = use_fused_adam(params)
    return torch.optim.Adam(
        params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **({"fused": True} if fused else {})
    )
