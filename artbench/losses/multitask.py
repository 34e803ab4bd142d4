"""Focal multi-task multi-class classification loss with missing labels (SilkNet §3.2, eq. 2-4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

Normalize = Literal["all", "per_target"]


def focal_multitask_loss(
    logits: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    gamma: float = 2.0,
    normalize: Normalize = "all",
) -> torch.Tensor:
    """L_C of eq. 2: the focal loss summed over the available labels of all targets.

    For sample i and target m with true class k, the term is -ω^fo · l with the focal weight
    ω^fo = (1 - y_mk)^γ (eq. 3) and l = ln y_mk (eq. 4), where y_mk is the softmax probability of the true
    class (computed as exp(log_softmax); 1 - y as -expm1(log y), floored at the smallest normal float so that
    the gradient stays finite for 0 < γ < 1 when y rounds to 1). Missing labels (-1) contribute nothing.
    γ = 0 gives softmax cross-entropy over the available labels.

    Args:
        logits: one ``[N, K_m]`` tensor per target (K_m includes the background class, if any).
        targets: one ``[N]`` int64 tensor per target; ``-1`` marks a missing label.
        gamma: focusing parameter γ ≥ 0 of eq. 3.
        normalize: ``"all"`` divides the sum by N_M, the number of available labels over all targets (eq. 2);
            ``"per_target"`` averages within each target over its available labels and sums over the targets
            (the SILKNOW reference code's normalisation).

    Returns:
        A scalar; zero (still connected to the graph, with finite gradients) when no label is available.
    """
    if normalize not in ("all", "per_target"):
        raise ValueError(f"normalize must be 'all' or 'per_target', got {normalize!r}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if len(logits) != len(targets) or not logits:
        raise ValueError(f"need one target per logits tensor, got {len(logits)} logits and {len(targets)} targets")
    sums, counts = [], []
    for a, t in zip(logits, targets, strict=True):
        available = t >= 0
        log_y = F.log_softmax(a, dim=1).gather(1, t.clamp(min=0).unsqueeze(1)).squeeze(1)  # eq. 4
        focal = (-torch.expm1(log_y)).clamp(min=torch.finfo(log_y.dtype).tiny).pow(gamma)  # eq. 3: (1 - y)^γ
        sums.append(torch.where(available, -focal * log_y, 0.0).sum())
        counts.append(available.sum())
    if normalize == "all":
        return torch.stack(sums).sum() / torch.stack(counts).sum().clamp(min=1)
    return (torch.stack(sums) / torch.stack(counts).clamp(min=1)).sum()
