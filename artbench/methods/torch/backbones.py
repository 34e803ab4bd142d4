"""Backbone registry: feature extractors mapping ``[N, 3, H, W]`` images to ``[N, D]`` features.

Each entry exposes its residual blocks in order, so that only the last ``NB_RN`` of them are fine-tuned
(SilkNet §3.2). ``weights`` is ``"imagenet"``, ``"none"`` (random init) or a path to a state dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from artbench.core.errors import ArtbenchError
from artbench.core.registry import Registry


@dataclass
class Backbone:
    body: nn.Module
    feature_dim: int
    blocks: list[nn.Module]
    """Residual (or conv) blocks from input to output; the last ``finetune_blocks`` of them are trained."""


BackboneFactory = Callable[[str], Backbone]
BACKBONES: Registry[BackboneFactory] = Registry("backbone")


def _load_state_dict(model: nn.Module, path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise ArtbenchError(f"weights {path!r}: no such file; use weights=imagenet, weights=none or a state-dict path")
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    missing, unexpected = model.load_state_dict(state, strict=False)
    ignorable = {k for k in missing if k.startswith("fc.")}
    if set(missing) - ignorable or unexpected:
        raise ArtbenchError(
            f"weights {path!r} do not fit this backbone (missing {len(set(missing) - ignorable)} keys, "
            f"unexpected {len(unexpected)}); give a state dict saved from the same architecture"
        )


def _resnet(builder: Callable[..., tvm.ResNet], enum: type[tvm.WeightsEnum], name: str) -> BackboneFactory:
    def factory(weights: str) -> Backbone:
        if weights == "imagenet":
            try:
                model = builder(weights=enum.DEFAULT)
            except Exception as exc:  # any download or cache failure
                raise ArtbenchError(
                    f"cannot load ImageNet weights for {name} ({type(exc).__name__}); they are not cached and could "
                    f"not be downloaded: use weights=none (random init) or weights=<path to a state dict>"
                ) from None
        else:
            model = builder(weights=None)
            if weights != "none":
                _load_state_dict(model, weights)
        dim = model.fc.in_features
        model.fc = nn.Identity()
        blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
        return Backbone(model, dim, blocks)

    return factory


BACKBONES.register("resnet18", _resnet(tvm.resnet18, tvm.ResNet18_Weights, "resnet18"))
BACKBONES.register("resnet50", _resnet(tvm.resnet50, tvm.ResNet50_Weights, "resnet50"))
BACKBONES.register("resnet152", _resnet(tvm.resnet152, tvm.ResNet152_Weights, "resnet152"))


class TinyCNN(nn.Module):
    """Four stride-2 conv blocks and global pooling: a CPU-sized backbone for tests and the demo task."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        blocks, c_in = [], 3
        for c_out in widths:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.pool(x).flatten(1)


@BACKBONES.decorator("tiny_cnn")
def tiny_cnn(weights: str) -> Backbone:
    if weights == "imagenet":
        raise ArtbenchError("tiny_cnn has no ImageNet weights; use weights=none or weights=<path to a state dict>")
    model = TinyCNN()
    if weights != "none":
        _load_state_dict(model, weights)
    return Backbone(model, model.feature_dim, list(model.blocks))


def build_backbone(name: str, weights: str, finetune_blocks: int) -> Backbone:
    """Build a backbone and freeze all but its last ``finetune_blocks`` blocks (``-1``: train everything)."""
    backbone = BACKBONES.get(name)(weights)
    if finetune_blocks > len(backbone.blocks):
        raise ArtbenchError(
            f"finetune_blocks={finetune_blocks} but {name} has {len(backbone.blocks)} residual blocks; "
            f"use 0..{len(backbone.blocks)}, or -1 to train all of them"
        )
    if finetune_blocks >= 0:
        backbone.body.requires_grad_(False)
        for block in backbone.blocks[len(backbone.blocks) - finetune_blocks :] if finetune_blocks else []:
            block.requires_grad_(True)
    return backbone
