"""SilkNet (Dorozynski 2023, §3.1, Fig. 1): backbone → ReLU → dropout → joint fc → one branch per target.

The joint-fc features ``f_jfc(x)`` feed both the classification branches and, during training, the clustering
head (their L2 normalisation, used by the auxiliary losses of eq. 5-8).

The trunk: with NB_RN (§3.2) blocks trained, the backbone's stages before the first trainable one are frozen. They
run without autograd (``torch.no_grad``: no activations kept, no backward work) and, like every frozen BatchNorm
layer, in eval mode: frozen BatchNorm layers normalise with their running statistics (ImageNet's, or the random
init's), never the batch's. That keeps a frozen layer a fixed function, as "frozen" says: the trunk's output for
an image never changes, so it can be computed once (:mod:`artbench.methods.torch.trunk`), and an image's features
do not depend on the other images of its batch (which batch statistics would make them do). The state-dict keys
are the backbone's own, whichever way the network is run.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from artbench.methods.torch.backbones import Backbone


@dataclass
class SilkNetOutput:
    logits: list[torch.Tensor]
    """Unnormalised class scores a_mk(x), one ``[N, K_m]`` tensor per target."""
    features: torch.Tensor
    """Joint-fc features f_jfc(x) ``[N, NN_jfc]``."""


def _mlp(sizes: Sequence[int], activate_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if activate_last or i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SilkNet(nn.Module):
    """Multi-task classifier with a shared backbone and joint fc layers.

    Args:
        backbone: feature extractor (its frozen BatchNorm layers stay in eval mode while training; the frozen
            leading stages form the trunk, see the module docstring).
        num_outputs: classes per target (foreground plus background where declared).
        joint_layers: nodes of the NL_jfc joint fc layers ([NN_jfc^1, ...]; §5.1: one layer of 128).
        target_layers: nodes of the NL_tfc task-specific layers of each branch (each followed by ReLU).
        dropout: dropout rate after the backbone (§3.1: 30 %).
    """

    def __init__(
        self,
        backbone: Backbone,
        num_outputs: Sequence[int],
        joint_layers: Sequence[int] = (128,),
        target_layers: Sequence[int] = (),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.backbone = backbone.body
        self.stages = backbone.stages
        self.trunk_depth = _frozen_prefix(backbone.body, backbone.stages)
        """Leading stages in the trunk (0: no trunk, the backbone runs as one module)."""
        self.pre = nn.Sequential(nn.ReLU(), nn.Dropout(dropout))
        self.joint = _mlp([backbone.feature_dim, *joint_layers], activate_last=False)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                _mlp([joint_layers[-1], *target_layers], activate_last=True),
                nn.Linear(([joint_layers[-1], *target_layers])[-1], k),
            )
            for k in num_outputs
        )
        for module in [self.joint, *self.branches]:
            for layer in module.modules():
                if isinstance(layer, nn.Linear):  # variance scaling (He et al. 2015), §3.2
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                    nn.init.zeros_(layer.bias)
        self.train()  # frozen BatchNorm layers on running statistics from the start (the trunk may run before fit)

    def train(self, mode: bool = True) -> SilkNet:
        """Set the training mode; frozen BatchNorm layers stay in eval mode (running statistics, module docstring)."""
        super().train(mode)
        for module in self.backbone.modules():  # frozen BatchNorm layers keep their statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.weight.requires_grad:
                module.eval()
        return self

    def _stage_modules(self, start: int, stop: int | None) -> list[nn.Module]:
        # looked up by path on every call, so that a stage replaced in the body (deterministic pooling) is used
        return [self.backbone.get_submodule(path) for path in (self.stages or ())[start:stop]]

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen trunk's output for normalised ``images``, computed without autograd."""
        if not self.trunk_depth:
            raise ValueError("this SilkNet has no frozen trunk (no frozen leading stage, or a backbone without stages)")
        with torch.no_grad():
            for module in self._stage_modules(0, self.trunk_depth):
                images = module(images)
        return images

    def forward(self, x: torch.Tensor, *, from_trunk: bool = False) -> SilkNetOutput:
        """Outputs for normalised images ``x``, or for trunk outputs ``x`` with ``from_trunk``."""
        if self.trunk_depth:
            h = x if from_trunk else self.trunk(x)
            for module in self._stage_modules(self.trunk_depth, None):
                h = module(h)
            h = h.flatten(1)
        elif from_trunk:
            raise ValueError("this SilkNet has no frozen trunk; pass images")
        else:
            h = self.backbone(x)
        features = self.joint(self.pre(h))
        return SilkNetOutput([branch(features) for branch in self.branches], features)


def _frozen_prefix(body: nn.Module, stages: Sequence[str] | None) -> int:
    """How many leading ``stages`` of ``body`` hold no trainable parameter (0 when the body has no stages)."""
    depth = 0
    for path in stages or ():
        if any(p.requires_grad for p in body.get_submodule(path).parameters()):
            break
        depth += 1
    return depth
