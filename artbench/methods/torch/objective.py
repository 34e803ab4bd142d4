"""The SilkNet training objective (Dorozynski 2023, eq. 1 and 5).

L = λ_C·L_C + λ_aux·(α_sem·L_sem + α_co·L_co + α_slf·L_slf), with L_C the focal multi-task loss over targets of
any kind (eq. 2-4; γ = 0 gives cross-entropy over the available labels), L_sem, L_co and L_slf the clustering losses
of eq. 6-8 on the L2-normalised joint-fc features (the clustering head, §3.1). L_sem compares the labels of the
multiclass targets (eq. 6 defines semantic similarity by equal class labels).

With the frozen trunk precomputed (:mod:`artbench.methods.torch.trunk`), the network starts from the batch's trunk
outputs; the x' of L_slf goes through the trunk (forward only, no autograd) and joins them in the same forward
pass through the trainable layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from artbench.methods.torch.augment import self_similarity_augment
from artbench.methods.torch.batches import Batch, normalise
from artbench.methods.torch.losses import (
    colour_similarity_loss,
    multitask_loss,
    self_similarity_loss,
    semantic_similarity_loss,
)


class LossParams(Protocol):
    gamma: float
    normalize: str
    lambda_c: float
    lambda_aux: float
    alpha_sem: float
    alpha_co: float
    alpha_slf: float
    max_triplets: int
    selfsim_noise: float


class Objective(Protocol):
    """What the training loop needs from a method's loss."""

    def __call__(
        self, model: nn.Module, images: torch.Tensor | None, batch: Batch, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its named components (``loss`` is the total) for augmented images in [0, 1] (None when
        the batch carries trunk outputs and the objective did not ask for images)."""
        ...


class SilkNetObjective:
    """Eq. 1 with the weights of one row of Table 3; ``kinds`` are the kinds of the trained targets and
    ``colour_key`` names the cache feature holding h(x) when L_co is on."""

    def __init__(self, params: LossParams, kinds: Sequence[str], colour_key: str | None = None) -> None:
        self.params, self.kinds = params, list(kinds)
        aux = params.lambda_aux > 0
        self.classes = [m for m, k in enumerate(self.kinds) if k == "multiclass"]
        self.use_sem = aux and params.alpha_sem > 0 and bool(self.classes)
        self.use_co = aux and params.alpha_co > 0
        self.use_slf = aux and params.alpha_slf > 0
        self.colour_key = colour_key
        if self.use_co and colour_key is None:
            raise ValueError("L_co needs the colour features; pass colour_key")

    @property
    def needs_images(self) -> bool:
        """Whether the images are needed besides precomputed trunk outputs (for the x' of L_slf)."""
        return self.use_slf

    def __call__(
        self, model: nn.Module, images: torch.Tensor | None, batch: Batch, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p, n = self.params, len(batch.index)
        augmented = None
        if self.use_slf:  # x'_i of eq. 8 goes through the network in the same forward pass
            if images is None:
                raise ValueError("L_slf needs the images; ask the batches for them (needs_images)")
            augmented = self_similarity_augment(images, generator, noise_std=p.selfsim_noise or None)
        if batch.trunk is not None:
            inputs = batch.trunk
            if augmented is not None:
                inputs = torch.cat([inputs, model.trunk(normalise(augmented)).to(inputs.dtype)])
            out = model(inputs, from_trunk=True)
        else:
            if images is None:
                raise ValueError("a batch without trunk outputs needs its images")
            inputs = normalise(images)
            if augmented is not None:
                inputs = torch.cat([inputs, normalise(augmented)])
            out = model(inputs)
        l_c = multitask_loss([z[:n].float() for z in out.logits], batch.labels, self.kinds, p.gamma, p.normalize)
        parts = {"loss_c": l_c.detach()}
        total = p.lambda_c * l_c
        if self.use_sem or self.use_co or self.use_slf:
            features = F.normalize(out.features.float(), dim=1)  # clustering head
            aux = features.new_zeros(())
            if self.use_sem:
                codes = torch.stack([batch.labels[m] for m in self.classes], dim=1)
                l_sem = semantic_similarity_loss(features[:n], codes, max_triplets=p.max_triplets, generator=generator)
                aux = aux + p.alpha_sem * l_sem
                parts["loss_sem"] = l_sem.detach()
            if self.use_co:
                l_co = colour_similarity_loss(features[:n], batch.features[self.colour_key])
                aux = aux + p.alpha_co * l_co
                parts["loss_co"] = l_co.detach()
            if self.use_slf:
                l_slf = self_similarity_loss(features[:n], features[n:])
                aux = aux + p.alpha_slf * l_slf
                parts["loss_slf"] = l_slf.detach()
            parts["loss_aux"] = aux.detach()
            total = total + p.lambda_aux * aux
        parts["loss"] = total.detach()
        return total, parts
