"""Small heads on backbone features, their per-kind losses, optimisers and feature batches.

* :class:`MultiHead`: an optional shared ReLU layer (OmniArt's shared representation, Strezoski & Worring 2017,
  §3.3) followed by one linear output per target: softmax logits (multiclass), sigmoid logits (multilabel) or one
  value (regression). Without the shared layer it is Sabatelli et al.'s (2018, §2.3) new softmax output on 𝒳.
* :func:`weighted_loss`: L = Σ wᵢ·sᵢ·Lᵢ (OmniArt eq. 2), Lᵢ the mean over target i's labelled samples of softmax
  cross-entropy, sigmoid binary cross-entropy (mean over the classes) or the absolute error.
* :func:`feature_batches`: mini-batches of cached feature tensors for
  :func:`~artbench.methods.torch.trainer.train_epochs`, the epoch loop of every torch family (Sabatelli §2.3:
  patience 7 on the validation loss, the model with the smallest validation loss kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from artbench.core.errors import ArtbenchError
from artbench.core.targets import TargetSpec
from artbench.methods.torch.acceleration import adam
from artbench.methods.torch.losses.focal import multiclass_terms, multilabel_terms, regression_terms

Optimizer = Literal["sgd", "rmsprop", "adam"]


class MultiHead(nn.Module):
    """``[N, D]`` features → optional shared ``Linear + ReLU`` of ``shared_units`` → one linear output per target.

    Linear layers start as Keras' ``Dense`` default (Glorot-uniform weights, zero bias), the library both papers used.
    ``standardise`` = (mean, std) of the training features makes the head z-score its input first (a fixed affine
    map kept with the head).
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: Sequence[int],
        shared_units: int = 0,
        standardise: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        mean, std = standardise if standardise is not None else (torch.zeros(in_features), torch.ones(in_features))
        self.register_buffer("input_mean", mean.float().reshape(1, -1))
        self.register_buffer("input_std", std.float().reshape(1, -1))
        self.shared = (
            nn.Sequential(nn.Linear(in_features, shared_units), nn.ReLU()) if shared_units > 0 else nn.Identity()
        )
        width = shared_units if shared_units > 0 else in_features
        self.outputs = nn.ModuleList(nn.Linear(width, k) for k in num_outputs)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        shared = self.shared((features - self.input_mean) / self.input_std)
        return [output(shared) for output in self.outputs]


def feature_statistics(features: torch.Tensor, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation of the feature ``rows`` (std 1 where a dimension is constant)."""
    x = features[torch.from_numpy(np.asarray(rows)).to(features.device)].float()
    mean, std = x.mean(dim=0), x.std(dim=0, correction=0)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


@dataclass
class ClassifierOutput:
    logits: list[torch.Tensor]
    """One ``[N, num_outputs]`` tensor per target (what :func:`~artbench.methods.torch.trainer.predict_outputs`
    reads)."""


class Classifier(nn.Module):
    """A backbone body and its :class:`MultiHead`: images ``[N, 3, H, W]`` → one output per target."""

    def __init__(self, body: nn.Module, head: MultiHead) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, images: torch.Tensor) -> ClassifierOutput:
        return ClassifierOutput(self.head(self.body(images)))


def _terms(output: torch.Tensor, label: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of one target's loss terms over its labelled samples, and their count (focal loss with γ = 0)."""
    output = output.float()
    if kind == "multiclass":
        return multiclass_terms(output, label, 0.0)
    if kind == "multilabel":
        return multilabel_terms(output, label, 0.0)
    return regression_terms(output, label)


def target_losses(
    outputs: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], kinds: Sequence[str]
) -> list[torch.Tensor]:
    """Lᵢ per target: the mean over its labelled samples of softmax CE, sigmoid BCE (mean over the classes) or the
    absolute error; 0 (still in the graph) when the batch has no label for it."""
    losses = []
    for output, label, kind in zip(outputs, labels, kinds, strict=True):
        total, count = _terms(output, label, kind)
        losses.append(total / count.clamp(min=1))
    return losses


@torch.no_grad()
def mean_losses(
    pairs: Iterable[tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]], kinds: Sequence[str]
) -> np.ndarray:
    """Lᵢ per target over every labelled sample of the ``(outputs, labels)`` batches in ``pairs`` (NaN where a
    target has no label): the validation losses."""
    sums, counts = np.zeros(len(kinds)), np.zeros(len(kinds))
    for outputs, labels in pairs:
        for i, (output, label, kind) in enumerate(zip(outputs, labels, kinds, strict=True)):
            total, count = _terms(output, label, kind)
            sums[i] += float(total)
            counts[i] += int(count)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def combined(losses: np.ndarray, factors: Sequence[float]) -> float:
    """Σ factorᵢ·Lᵢ over the targets with a loss (NaN when none has)."""
    known = ~np.isnan(losses)
    return float(np.dot(np.asarray(factors)[known], losses[known])) if known.any() else float("nan")


def weighted_loss(
    outputs: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    kinds: Sequence[str],
    factors: Sequence[float],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σᵢ factorᵢ·Lᵢ (OmniArt eq. 2 with factorᵢ = wᵢ·sᵢ) and its parts ``loss`` and ``loss_<i>``."""
    losses = target_losses(outputs, labels, kinds)
    total = torch.stack([f * loss for f, loss in zip(factors, losses, strict=True)]).sum()
    parts = {f"loss_{i}": loss.detach() for i, loss in enumerate(losses)}
    parts["loss"] = total.detach()
    return total, parts


class OptimiserParams(Protocol):
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    rho: float
    eps: float
    weight_decay: float


def make_optimiser(params: OptimiserParams, trainable: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum where set), RMSprop (ρ is torch's ``alpha``, Keras' ``rho``) or Adam (fused on CUDA)."""
    trainable = list(trainable)
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            trainable,
            lr=params.lr,
            momentum=params.momentum,
            nesterov=params.nesterov and params.momentum > 0,
            weight_decay=params.weight_decay,
        )
    if params.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            trainable, lr=params.lr, alpha=params.rho, eps=params.eps, weight_decay=params.weight_decay
        )
    return adam(trainable, lr=params.lr, eps=params.eps, weight_decay=params.weight_decay)


def check_trainable(rows: np.ndarray, description: str) -> None:
    if len(rows) < 2:
        raise ArtbenchError(f"{description}: {len(rows)} labelled training sample(s); training needs at least 2")


class FeatureBatch(NamedTuple):
    features: torch.Tensor
    """float32 ``[B, D]``."""
    labels: list[torch.Tensor]
    """One tensor per target in its kind's encoding (regression standardised)."""

    @property
    def size(self) -> int:
        """Number of samples."""
        return len(self.features)


def feature_batches(
    features: torch.Tensor,
    labels: Sequence[torch.Tensor],
    rows: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> Iterator[FeatureBatch]:
    """Batches of float32 features and their labels, gathered from tensors already on the device (no DataLoader):
    ``rows`` shuffled when ``rng`` is given, the last batch dropped when it would hold one sample (BatchNorm-free
    heads would not mind, but a single sample makes a noisy step)."""
    order = rng.permutation(rows) if rng is not None else np.asarray(rows)
    index = torch.from_numpy(order).to(features.device)
    for chunk in index.split(batch_size):
        if rng is not None and len(chunk) == 1 and len(order) > 1:
            continue
        yield FeatureBatch(features[chunk].float(), [y[chunk] for y in labels])


@torch.no_grad()
def head_outputs(head: nn.Module, features: torch.Tensor, rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Float32 outputs per target of ``head`` on the feature rows ``rows`` (in that order)."""
    head.eval()
    parts = [[z.float().cpu().numpy() for z in head(x)] for x, _ in feature_batches(features, [], rows, batch_size)]
    if not parts:
        return []
    return [np.concatenate([p[m] for p in parts]) for m in range(len(parts[0]))]


def standardisation(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the known training values of a regression target (std 1 where it is 0)."""
    known = values[~np.isnan(values)]
    std = float(known.std()) if len(known) > 1 else 1.0
    return (float(known.mean()) if len(known) else 0.0), (std if std > 0 else 1.0)


def training_labels(codes: np.ndarray, scaling: tuple[float, float] | None) -> np.ndarray:
    """Labels as the losses want them: regression values standardised (float32), classes unchanged."""
    if scaling is None:
        return codes
    mean, std = scaling
    return ((codes - mean) / std).astype(np.float32)


def scores(spec: TargetSpec, output: np.ndarray, scaling: tuple[float, float] | None) -> np.ndarray:
    """What :class:`~artbench.core.predictions.Predictions` holds: softmax or sigmoid probabilities, or the value
    in the target's own units."""
    if spec.kind == "multiclass":
        return torch.softmax(torch.from_numpy(output), dim=1).numpy()
    if spec.kind == "multilabel":
        return torch.sigmoid(torch.from_numpy(output)).numpy()
    assert scaling is not None
    mean, std = scaling
    return output.reshape(-1).astype(np.float64) * std + mean
