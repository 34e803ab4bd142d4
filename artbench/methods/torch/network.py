"""SilkNet (Dorozynski 2023, §3.1, Fig. 1): backbone → ReLU → dropout → joint fc → one branch per target.

The joint-fc features ``f_jfc(x)`` feed both the classification branches and, during training, the clustering
head (their L2 normalisation, used by the auxiliary losses of eq. 5-8).
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
        backbone: feature extractor (its frozen BatchNorm layers stay in eval mode while training).
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

    def train(self, mode: bool = True) -> SilkNet:
        super().train(mode)
        for module in self.backbone.modules():  # frozen BatchNorm layers keep their statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.weight.requires_grad:
                module.eval()
        return self

    def forward(self, images: torch.Tensor) -> SilkNetOutput:
        features = self.joint(self.pre(self.backbone(images)))
        return SilkNetOutput([branch(features) for branch in self.branches], features)
