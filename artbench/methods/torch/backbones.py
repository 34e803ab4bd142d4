"""Backbone registry: feature extractors mapping ``[N, 3, H, W]`` images to ``[N, D]`` features.

Each entry exposes its residual (or conv) blocks in order, so that only the last ``NB_RN`` of them are fine-tuned
(SilkNet §3.2). ``weights`` is ``"imagenet"``, ``"none"`` (random init) or a path to a state dict; methods that
transfer a trained backbone between runs turn ``run:<run folder>[#seed][@target]`` into such a path with
:func:`resolve_weights` (Sabatelli et al. 2018, "from one art collection to another").

ImageNet weights come from torchvision's own cache, ``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>``
(default ``~/.cache/torch``): the file is used when present, otherwise downloaded; when that fails the error names the
file and the folder to place it in. Inputs are ImageNet mean/std normalised (``batches.normalise``); backbones whose
weights expect another input range convert it inside the body.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models as tvm

from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite, downloads_allowed
from artbench.core.registry import Registry
from artbench.methods.torch.batches import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class Backbone:
    body: nn.Module
    feature_dim: int
    blocks: list[nn.Module]
    """Residual (or conv) blocks from input to output; the last ``finetune_blocks`` of them are trained."""
    stages: tuple[str, ...] | None = None
    """Paths (in ``body``) of a flat sequence of modules whose composition, followed by ``flatten(1)``, is the body's
    forward: SilkNet runs its frozen prefix (the trunk) once per image (:mod:`artbench.methods.torch.trunk`). None
    where the forward is not such a chain (Inception's input transform, Xception's input hook)."""


BackboneFactory = Callable[[str], Backbone]
BACKBONES: Registry[BackboneFactory] = Registry("backbone")

NATIVE_INPUT_SIZE = {"inception_v3": 299, "xception": 299}
"""Input size of the ImageNet training of backbones that do not use 224 px (Szegedy 2016; Chollet 2017)."""
MIN_INPUT_SIZE = {"inception_v3": 75, "xception": 71}
"""Smallest input the architecture accepts (its stride-2 stem leaves no spatial extent below it)."""

IMAGENET_WEIGHTS: dict[str, tvm.WeightsEnum] = {
    "resnet18": tvm.ResNet18_Weights.DEFAULT,
    "resnet50": tvm.ResNet50_Weights.DEFAULT,
    "resnet152": tvm.ResNet152_Weights.DEFAULT,
    "vgg19": tvm.VGG19_Weights.DEFAULT,
    "inception_v3": tvm.Inception_V3_Weights.DEFAULT,
}
"""torchvision's ImageNet weights per backbone (its DEFAULT tag)."""

XCEPTION_TIMM_NAME = "legacy_xception.tf_in1k"
"""timm's port of the Keras Xception and its ImageNet weights (the model Sabatelli et al. 2018 used, §2.3)."""


def native_input_size(name: str) -> int:
    """The input size a backbone was trained at on ImageNet: 299 px for Inception-V3 and Xception, else 224."""
    return NATIVE_INPUT_SIZE.get(name, 224)


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision keeps (and looks for) the ImageNet weights of backbone ``name``."""
    url = IMAGENET_WEIGHTS[name].url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict of ``name``: the cached file if present, else downloaded into the cache.

    When the file is absent and cannot be downloaded (no internet), the error names the file and where to put it;
    within :func:`~artbench.core.prerequisites.offline` (the checks before a run) nothing is downloaded: the absent
    file is a :class:`~artbench.core.prerequisites.MissingPrerequisite` whose ``fetch`` downloads it.
    """
    weights = IMAGENET_WEIGHTS[name]
    file = imagenet_weights_file(name)
    if not file.is_file():
        if not downloads_allowed():
            raise MissingPrerequisite(
                "weights",
                f"ImageNet weights for {name}: place {file.name} (from {weights.url}) at {file} (the cache follows "
                "$TORCH_HOME), or use weights=none or weights=<path to a state dict>",
                fetch=lambda: imagenet_state_dict(name),
                fetching=f"downloading the ImageNet weights for {name} from {weights.url} to {file}",
            )
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # any download, hash or cache failure
            raise ArtbenchError(
                f"ImageNet weights for {name} are not in torchvision's cache and could not be downloaded "
                f"({type(exc).__name__}): place {file.name} (from {weights.url}) at {file} (the cache follows "
                "$TORCH_HOME), or use weights=none (random init) or weights=<path to a state dict>"
            ) from None
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtbenchError(
            f"the cached ImageNet weights {file} cannot be read ({type(exc).__name__}); delete the file and place "
            f"it again from {weights.url}"
        ) from None


def _read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``file``: a ``{name: tensor}`` dict, or one under ``"state_dict"`` (:func:`save_backbone`).

    Anything else (not a torch file, a truncated or empty one, a pickle of other objects, which ``weights_only``
    refuses, a tensor, a list, a dict of non-tensors) is a one-line error (issue 14, "Hardening")."""
    try:
        with warnings.catch_warnings():  # a pickle of another protocol: the error below says what is wrong
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(file, map_location="cpu", weights_only=True)
    except EOFError:
        state, reason = None, "the file is empty or ends too early"
    except pickle.UnpicklingError:  # also objects other than tensors, which weights_only refuses to load
        state, reason = None, "not a torch file, or it pickles objects other than tensors"
    except Exception as exc:  # torch raises RuntimeError (a damaged zip archive), ValueError... on bad files
        state, reason = None, f"an unreadable torch file, truncated or damaged ({type(exc).__name__})"
    else:
        reason = f"it holds a {type(state).__name__}"
    if isinstance(state, dict):
        state = state.get("state_dict", state)
        reason = "it holds a dict whose values are not all tensors" if state else "it holds an empty dict"
    if isinstance(state, dict) and state and all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        return state
    raise ArtbenchError(
        f"weights {str(file)!r} is not a state dict of this backbone ({reason}); give a file saved with "
        "torch.save(model.state_dict()) from the same architecture (or weights=run:<run folder>), or use "
        "weights=imagenet or weights=none"
    )


def _load_state_dict(model: nn.Module, path: str, head_prefixes: Sequence[str] = ("fc.",)) -> None:
    """Load a state dict file into ``model``; keys of the classifier (``head_prefixes``) may be absent or extra."""
    file = Path(path)
    if not file.is_file():
        raise ArtbenchError(f"weights {path!r}: no such file; use weights=imagenet, weights=none or a state-dict path")
    state = _read_state_dict(file)
    state = {k: v for k, v in state.items() if not k.startswith(tuple(head_prefixes))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # same key, another shape
        missing, unexpected = ["(shape mismatch)"], []
    missing = [k for k in missing if not k.startswith(tuple(head_prefixes))]
    if missing or unexpected:
        raise ArtbenchError(
            f"weights {path!r} do not fit this backbone (missing {len(missing)} keys, unexpected {len(unexpected)}); "
            "give a state dict saved from the same architecture"
        )


def _resnet(builder: Callable[..., tvm.ResNet], name: str) -> BackboneFactory:
    def factory(weights: str) -> Backbone:
        model = builder(weights=None)
        if weights == "imagenet":
            model.load_state_dict(imagenet_state_dict(name))
        elif weights != "none":
            _load_state_dict(model, weights)
        dim = model.fc.in_features
        model.fc = nn.Identity()
        layers = (model.layer1, model.layer2, model.layer3, model.layer4)
        blocks = [b for layer in layers for b in layer]
        paths = tuple(f"layer{i}.{j}" for i, layer in enumerate(layers, 1) for j in range(len(layer)))
        return Backbone(model, dim, blocks, ("conv1", "bn1", "relu", "maxpool", *paths, "avgpool"))

    return factory


BACKBONES.register("resnet18", _resnet(tvm.resnet18, "resnet18"))
BACKBONES.register("resnet50", _resnet(tvm.resnet50, "resnet50"))
BACKBONES.register("resnet152", _resnet(tvm.resnet152, "resnet152"))


class VGGFeatures(nn.Module):
    """VGG's convolutional part followed by 2D global average pooling: the 512-d vector 𝒳 that Sabatelli et al.
    (2018, §2.3 and Table 2) classify, instead of VGG's fully connected layers (which are never built)."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@BACKBONES.decorator("vgg19")
def vgg19(weights: str) -> Backbone:
    body = VGGFeatures(tvm.vgg.make_layers(tvm.vgg.cfgs["E"]))
    if weights == "imagenet":
        body.load_state_dict({k: v for k, v in imagenet_state_dict("vgg19").items() if k.startswith("features.")})
    elif weights == "none":  # torchvision's VGG init of the conv layers
        for layer in body.features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
    else:
        _load_state_dict(body, weights, head_prefixes=("classifier.",))
    stages, stage = [], []  # the five conv stages, each ending with its max-pooling
    for layer in body.features:
        stage.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*stage))  # a view: the layers stay registered under body.features
            stage = []
    return Backbone(body, 512, stages, (*(f"features.{i}" for i in range(len(body.features))), "pool"))


INCEPTION_BLOCKS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5c",
    "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip


@BACKBONES.decorator("inception_v3")
def inception_v3(weights: str) -> Backbone:
    """Inception-V3 (Szegedy 2016) at 299 px, without the auxiliary classifier and the dropout before ``fc``.

    ``transform_input`` is always on: the body maps ImageNet-normalised input to the [-1, 1] range of Google's
    weights, so a backbone trained in one run and loaded in another sees the same input whatever its weights.
    Random weights are torch's default layer init (torchvision's truncated-normal init takes seconds).
    """
    model = tvm.inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    if weights == "imagenet":
        model.load_state_dict(imagenet_state_dict("inception_v3"))
    elif weights != "none":
        _load_state_dict(model, weights, head_prefixes=("fc.", "AuxLogits."))
    model.aux_logits, model.AuxLogits = False, None
    model.dropout, model.fc = nn.Identity(), nn.Identity()
    return Backbone(model, 2048, [getattr(model, name) for name in INCEPTION_BLOCKS])


def _expect_input(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
    """Make ``model`` accept ImageNet mean/std-normalised input by re-normalising it, in a forward pre-hook, to the
    ``mean``/``std`` its weights expect (the state dict keeps the model's own keys)."""
    scale = (torch.tensor(IMAGENET_STD) / torch.tensor(std)).view(1, 3, 1, 1)
    shift = ((torch.tensor(IMAGENET_MEAN) - torch.tensor(mean)) / torch.tensor(std)).view(1, 3, 1, 1)

    def renormalise(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        x = inputs[0]
        return (x * scale.to(x.device, x.dtype) + shift.to(x.device, x.dtype), *inputs[1:])

    model.register_forward_pre_hook(renormalise)


@BACKBONES.decorator("xception")
def xception(weights: str) -> Backbone:
    """Xception (Chollet 2017) through timm, an optional extra (``pip install timm``); its ImageNet weights come
    from timm's pretrained source: a URL into torchvision's cache, or the Hugging Face hub (``$HF_HOME``)."""
    try:
        import timm
    except ImportError:
        raise ArtbenchError("backbone xception needs timm, an optional extra: pip install timm") from None
    try:
        model = timm.create_model(XCEPTION_TIMM_NAME, pretrained=weights == "imagenet", num_classes=0)
    except Exception as exc:  # download or cache failure
        source = timm.models.get_pretrained_cfg(XCEPTION_TIMM_NAME)
        where = (
            f"the Hugging Face repo {source.hf_hub_id} into $HF_HOME/hub"
            if source.hf_hub_id
            else f"{Path(urlparse(source.url).path).name} (from {source.url}) at "
            f"{Path(torch.hub.get_dir()) / 'checkpoints' / Path(urlparse(source.url).path).name}"
        )
        raise ArtbenchError(
            f"timm's ImageNet weights {XCEPTION_TIMM_NAME} are not cached and could not be downloaded "
            f"({type(exc).__name__}): place {where}, or use weights=none"
        ) from None
    if weights not in ("imagenet", "none"):
        _load_state_dict(model, weights)
    _expect_input(model, model.pretrained_cfg["mean"], model.pretrained_cfg["std"])
    blocks = [m for name, m in model.named_children() if name.startswith(("conv", "bn", "block"))]
    return Backbone(model, model.num_features, blocks)


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
    paths = tuple(f"blocks.{i}" for i in range(len(model.blocks)))
    return Backbone(model, model.feature_dim, list(model.blocks), (*paths, "pool"))


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


RUN_PREFIX = "run:"
"""``weights=run:<run folder>[#seed][@target]``: the backbone a run trained and saved in its seed folder."""


def backbone_file_name(target: str | None = None) -> str:
    """``backbone.pt``, or ``backbone.<target>.pt`` for a method that trained one backbone per target."""
    if target is None:
        return "backbone.pt"
    safe = re.sub(r"[^\w.-]", "_", target)
    return f"backbone.{safe}.pt"


def save_backbone(body: nn.Module, name: str, file: Path) -> None:
    """Save a trained backbone's state dict (with its architecture's name) for ``weights=run:...``."""
    state = {k: v.detach().cpu() for k, v in body.state_dict().items()}
    torch.save({"backbone": name, "state_dict": state}, file)


def resolve_weights(weights: str, backbone: str, seed: int) -> str:
    """``weights`` with ``run:<folder>[#seed][@target]`` replaced by the path of the backbone that run saved for
    ``seed`` (or for the pinned ``#seed``); one-line errors when the run, the seed or the file is absent, or when the
    run trained another architecture. Other values are returned unchanged."""
    if not weights.startswith(RUN_PREFIX):
        return weights
    spec, target = weights[len(RUN_PREFIX) :], None
    if "@" in spec:
        spec, target = spec.rsplit("@", 1)
    if "#" in spec:
        spec, pinned = spec.rsplit("#", 1)
        if not pinned.isdigit() or int(pinned) < 1:
            raise ArtbenchError(f"weights={weights!r}: '#{pinned}' is not a seed; write run:<run folder>#<seed>")
        seed = int(pinned)
    folder = Path(spec).expanduser()
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ArtbenchError(
            f"weights={weights!r}: {str(folder)!r} is not a run folder (no config.json); give the folder of an "
            "artbench run, e.g. artbench-out/<task>/<method>/<run-id>"
        )
    try:
        trained = json.loads(config_file.read_text(encoding="utf-8"))["params"].get("backbone")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ArtbenchError(f"weights={weights!r}: cannot read the parameters in {str(config_file)!r}") from None
    if trained != backbone:
        raise ArtbenchError(
            f"weights={weights!r}: that run trained backbone {trained!r}, not {backbone!r}; set backbone={trained}"
        )
    seed_dir = folder / f"seed-{seed}"
    if not seed_dir.is_dir():
        seeds = sorted(int(p.name[5:]) for p in folder.glob("seed-*") if p.name[5:].isdigit())
        raise ArtbenchError(
            f"weights={weights!r}: the run has no finished seed {seed} (seeds: {', '.join(map(str, seeds)) or 'none'})"
            "; pin one with run:<run folder>#<seed>"
        )
    file = seed_dir / backbone_file_name(target)
    if not file.is_file():
        saved = sorted(p.name for p in seed_dir.glob("backbone*.pt"))
        advice = (
            f"it saved {', '.join(saved)}; pick one with run:<run folder>@<target>"
            if saved
            else "only methods that train their backbone (tl_finetune, tl_scratch) save one"
        )
        raise ArtbenchError(f"weights={weights!r}: seed {seed} of that run has no {file.name}: {advice}")
    return str(file)


def check_backbone(name: str, weights: str, image_size: int) -> None:
    """Fail before any data is prepared: unknown backbone, input too small, unusable weights (ImageNet weights are
    fetched into torchvision's cache here when absent), a missing optional dependency."""
    factory = BACKBONES.get(name)
    if image_size < MIN_INPUT_SIZE.get(name, 8):
        raise ArtbenchError(f"{name} needs image_size >= {MIN_INPUT_SIZE[name]}, got {image_size}")
    if weights == "imagenet" and name in IMAGENET_WEIGHTS:
        imagenet_state_dict(name)
    elif weights.startswith(RUN_PREFIX):
        resolve_weights(weights, name, 1)
    else:
        factory(weights)
