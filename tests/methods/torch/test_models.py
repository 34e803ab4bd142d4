"""Backbones, fine-tuning of the last NB_RN blocks (SilkNet §3.2) and the SilkNet head (§3.1)."""

import pytest
import torch
from torch import nn

from artbench.core.errors import ArtbenchError
from artbench.methods.torch.backbones import BACKBONES, build_backbone
from artbench.methods.torch.network import SilkNet


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def test_only_the_last_blocks_are_fine_tuned() -> None:
    backbone = build_backbone("resnet18", "none", finetune_blocks=3)
    assert len(backbone.blocks) == 8 and backbone.feature_dim == 512
    assert [_trainable(b) for b in backbone.blocks] == [False] * 5 + [True] * 3
    assert not _trainable(backbone.body.conv1)
    assert all(p.requires_grad for p in build_backbone("resnet18", "none", -1).body.parameters())
    assert not _trainable(build_backbone("resnet18", "none", 0).body)
    assert all(_trainable(b) for b in build_backbone("resnet18", "none", 8).blocks)
    with pytest.raises(ArtbenchError, match=r"finetune_blocks=9 but resnet18 has 8 residual blocks; use 0\.\.8, or -1"):
        build_backbone("resnet18", "none", 9)


def test_frozen_batchnorm_stays_in_eval_mode() -> None:
    model = SilkNet(build_backbone("resnet18", "none", 1), [3]).train()
    assert not model.backbone.bn1.training and not model.backbone.layer1[0].bn1.training
    assert model.backbone.layer4[1].bn1.training and model.joint.training


def test_silknet_head_structure_and_outputs() -> None:
    backbone = build_backbone("tiny_cnn", "none", -1)
    model = SilkNet(backbone, [29, 4, 8], joint_layers=(128,), target_layers=(64,), dropout=0.3)
    out = model(torch.rand(5, 3, 32, 32))
    assert [z.shape for z in out.logits] == [(5, 29), (5, 4), (5, 8)]
    assert out.features.shape == (5, 128)
    assert isinstance(model.pre[0], nn.ReLU) and model.pre[1].p == 0.3
    branch = model.branches[0]
    assert [type(m) for m in branch] == [nn.ReLU, nn.Sequential, nn.Linear]
    assert branch[1][0].out_features == 64 and isinstance(branch[1][1], nn.ReLU)


def test_weights_from_a_state_dict(tmp_path) -> None:
    source = build_backbone("tiny_cnn", "none", -1).body
    torch.save(source.state_dict(), tmp_path / "w.pt")
    loaded = build_backbone("tiny_cnn", str(tmp_path / "w.pt"), -1).body
    assert torch.equal(loaded.blocks[0][0].weight, source.blocks[0][0].weight)
    with pytest.raises(ArtbenchError, match="no such file"):
        build_backbone("tiny_cnn", str(tmp_path / "missing.pt"), -1)
    torch.save(build_backbone("resnet18", "none", -1).body.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(ArtbenchError, match="do not fit this backbone"):
        build_backbone("tiny_cnn", str(tmp_path / "r18.pt"), -1)


def test_imagenet_weights_unavailable_names_the_alternatives(tmp_path, monkeypatch) -> None:
    from torchvision import models as tvm

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tvm.ResNet18_Weights.DEFAULT, "get_state_dict", offline)
    with pytest.raises(ArtbenchError, match=r"weights=none .* weights=<path to a state dict>"):
        build_backbone("resnet18", "imagenet", 3)
    with pytest.raises(ArtbenchError, match="no ImageNet weights"):
        build_backbone("tiny_cnn", "imagenet", 3)


def test_registry_lists_backbones() -> None:
    assert {"resnet18", "resnet50", "resnet152", "tiny_cnn"} <= set(BACKBONES.names())
    with pytest.raises(ArtbenchError, match="unknown backbone 'vgg'"):
        BACKBONES.get("vgg")
