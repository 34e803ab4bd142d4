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
    if len(logits) != len(targets) or not logits:
        raise ValueError(f"need one target per logits tensor, got {len(logits)} logits and {len(targets)} targets")
    return multitask_loss(logits, targets, ["multiclass"] * len(logits), gamma, normalize)


def _check(gamma: float, normalize: str) -> None:
    if normalize not in ("all", "per_target"):
        raise ValueError(f"normalize must be 'all' or 'per_target', got {normalize!r}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")


def _focal_weight(log_p: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p)^γ of eq. 3 from ln p, as (-expm1(ln p))^γ floored at the smallest normal float."""
    return (-torch.expm1(log_p)).clamp(min=torch.finfo(log_p.dtype).tiny).pow(gamma)


def multiclass_terms(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of eq. 2's terms -ω^fo·ln y over the available labels of one multiclass target, and their count."""
    available = target >= 0
    log_y = F.log_softmax(logits, dim=1).gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)  # eq. 4
    return torch.where(available, -_focal_weight(log_y, gamma) * log_y, 0.0).sum(), available.sum()


def multilabel_terms(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid binary focal loss (Lin et al. 2017) of one multilabel target: per labelled sample the mean over its
    K classes of -(1 - p_t)^γ ln p_t, p_t the probability of the true value; summed over labelled samples, which
    are counted once each (as one label of eq. 2). γ = 0 is binary cross-entropy."""
    available = target[:, 0] >= 0 if target.shape[1] else target.new_zeros(len(target), dtype=torch.bool)
    positive = target.clamp(min=0).to(logits.dtype)
    log_p = -F.binary_cross_entropy_with_logits(logits, positive, reduction="none")  # ln p_t
    per_sample = (-_focal_weight(log_p, gamma) * log_p).mean(dim=1)
    return torch.where(available, per_sample, 0.0).sum(), available.sum()


def regression_terms(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 between the predicted and the true standardised value over the samples whose value is known."""
    available = ~torch.isnan(target)
    error = (prediction.reshape(-1) - torch.nan_to_num(target)).abs()
    return torch.where(available, error, 0.0).sum(), available.sum()


def multitask_loss(
    outputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    kinds: Sequence[str],
    gamma: float = 2.0,
    normalize: Normalize = "all",
) -> torch.Tensor:
    """Eq. 2 over targets of any kind: each target's terms (softmax focal, sigmoid focal, or L1 on the
    standardised value) summed and divided by N_M, the number of available labels over all targets ("all"), or
    averaged within each target and summed over targets ("per_target")."""
    _check(gamma, normalize)
    sums, counts = [], []
    for output, target, kind in zip(outputs, targets, kinds, strict=True):
        if kind == "multiclass":
            total, count = multiclass_terms(output, target, gamma)
        elif kind == "multilabel":
            total, count = multilabel_terms(output, target, gamma)
        else:
            total, count = regression_terms(output, target)
        sums.append(total)
        counts.append(count)
    if normalize == "all":
        return torch.stack(sums).sum() / torch.stack(counts).sum().clamp(min=1)
    return (torch.stack(sums) / torch.stack(counts).clamp(min=1)).sum()
