"""The SilkNet training objective (Dorozynski 2023, eq. 1 and 5).

L = λ_C·L_C + λ_aux·(α_sem·L_sem + α_co·L_co + α_slf·L_slf), with L_C the focal multi-task loss (eq. 2-4; γ = 0
gives softmax cross-entropy over the available labels), L_sem, L_co and L_slf the clustering losses of eq. 6-8
on the L2-normalised joint-fc features (the clustering head, §3.1).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from artbench.config import RunConfig
from artbench.losses import (
    colour_similarity_loss,
    focal_multitask_loss,
    self_similarity_loss,
    semantic_similarity_loss,
)
from artbench.training.augment import self_similarity_augment
from artbench.training.batches import Batch, normalise


class Objective(Protocol):
    """What the training loop needs from a method's loss."""

    needs_colour: bool

    def __call__(
        self, model: nn.Module, images: torch.Tensor, batch: Batch, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named components (``loss`` is the total) for augmented images in [0, 1]."""
        ...

    def validation_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss monitored for early stopping on normalised validation images."""
        ...


class SilkNetObjective:
    """Eq. 1 with the weights of one row of Table 3 taken from the run config."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        aux = cfg.lambda_aux > 0
        self.use_sem = aux and cfg.alpha_sem > 0
        self.use_co = aux and cfg.alpha_co > 0
        self.use_slf = aux and cfg.alpha_slf > 0
        self.needs_colour = self.use_co

    def classification_loss(self, logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """L_C, eq. 2-4."""
        return focal_multitask_loss([z.float() for z in logits], labels.unbind(1), self.cfg.gamma, self.cfg.normalize)

    def __call__(
        self, model: nn.Module, images: torch.Tensor, batch: Batch, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, n = self.cfg, len(images)
        inputs = normalise(images)
        if self.use_slf:  # x'_i of eq. 8 goes through the network in the same forward pass
            augmented = self_similarity_augment(images, generator, noise_std=cfg.selfsim_noise or None)
            inputs = torch.cat([inputs, normalise(augmented)])
        out = model(inputs)
        l_c = self.classification_loss([z[:n] for z in out.logits], batch.labels)
        parts = {"loss_c": l_c.detach()}
        total = cfg.lambda_c * l_c
        if self.use_sem or self.use_co or self.use_slf:
            features = F.normalize(out.features.float(), dim=1)  # clustering head
            aux = features.new_zeros(())
            if self.use_sem:
                l_sem = semantic_similarity_loss(
                    features[:n], batch.labels, max_triplets=cfg.max_triplets, generator=generator
                )
                aux = aux + cfg.alpha_sem * l_sem
                parts["loss_sem"] = l_sem.detach()
            if self.use_co:
                l_co = colour_similarity_loss(features[:n], batch.colour)
                aux = aux + cfg.alpha_co * l_co
                parts["loss_co"] = l_co.detach()
            if self.use_slf:
                l_slf = self_similarity_loss(features[:n], features[n:])
                aux = aux + cfg.alpha_slf * l_slf
                parts["loss_slf"] = l_slf.detach()
            parts["loss_aux"] = aux.detach()
            total = total + cfg.lambda_aux * aux
        parts["loss"] = total.detach()
        return total, parts

    def validation_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.cfg.lambda_c * self.classification_loss(model(images).logits, labels)
