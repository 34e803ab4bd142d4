"""The SilkNet family (Dorozynski 2023): a CNN with one branch per target, trained with the focal multi-task loss
and the auxiliary clustering losses; its single-task baseline and the six multi-task rows of Table 3 are recipes.

Defaults follow §3.1 and §5.1 (ResNet-152 on ImageNet, last NB_RN = 3 residual blocks trained, one joint fc layer of
128, dropout 30 %, Adam with lr 1e-4, 224 px). Settings the paper leaves open are marked "(open)" in their docs and
listed in ``baselines/silknet.toml``. Frozen layers, BatchNorm included, are a fixed function (running statistics,
no autograd; :mod:`.network`), so the frozen trunk's outputs are computed once per image (``precompute_trunk``,
:mod:`.trunk`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from artbench.core.device import seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.params import param
from artbench.core.targets import TargetSpec
from artbench.core.task import TaskSpec
from artbench.data.cache import ImageCache
from artbench.data.task_data import TaskData
from artbench.methods.base import Method, Predictions, Predictor, RunContext, register_method
from artbench.methods.torch.backbones import BACKBONES, build_backbone
from artbench.methods.torch.batches import TrunkSource, iterate_batches
from artbench.methods.torch.colour import colour_feature
from artbench.methods.torch.losses import multitask_loss
from artbench.methods.torch.network import SilkNet
from artbench.methods.torch.objective import SilkNetObjective
from artbench.methods.torch.trainer import autocast, batch_outputs, fit, predict_outputs
from artbench.methods.torch.trunk import TrunkCache, cached_trunk, trunk_source

MAX_IMAGE_SIZE = 2048
"""Largest square input size: the prepared cache holds every image at this size (uint8 RGB)."""


def _positive_sizes(sizes: tuple[int, ...]) -> bool:
    return all(n > 0 for n in sizes)


@dataclass
class SilkNetMethod(Method):
    """SilkNet (§3.1, Fig. 1): backbone → ReLU → dropout → joint fc → one branch and classifier per target."""

    supports = frozenset({"multiclass", "multilabel", "regression"})

    strategy: Literal["multitask", "single_task"] = param(
        "multitask", "multitask: one network for all targets; single_task: one network per target (STL)"
    )
    backbone: str = param("resnet152", "feature extractor: resnet18/50/152 or the CPU-sized tiny_cnn (§5.1)")
    weights: str = param("imagenet", "imagenet, none (random init) or a path to a state dict (§5.1: ImageNet)")
    finetune_blocks: int = param(
        3, "NB_RN: residual blocks trained from the top; -1 trains everything (§5.1: 3)", lambda v: v >= -1, ">= -1"
    )
    joint_layers: tuple[int, ...] = param(
        (128,),
        "nodes of the joint fc layers (§5.1: one layer of 128)",
        lambda v: len(v) >= 1 and _positive_sizes(v),
        "one or more positive sizes",
    )
    target_layers: tuple[int, ...] = param(
        (), "nodes of each branch's task-specific fc layers", _positive_sizes, "positive sizes"
    )
    dropout: float = param(0.3, "dropout after the backbone (§3.1: 30 %)", lambda v: 0 <= v < 1, "in [0, 1)")
    image_size: int = param(
        224, "square input size in px (§5.1: 224)", lambda v: 8 <= v <= MAX_IMAGE_SIZE, f"in [8, {MAX_IMAGE_SIZE}]"
    )
    augment: bool = param(
        False, "random flips, 90° rotations, crops and ±5° rotations for classification; the paper uses none (§5.1)"
    )
    batch_size: int = param(
        32,
        "training batch size (open; baselines/silknet.toml sets 128, a choice of artbench's that keeps a GPU busy)",
        lambda v: v >= 2,
        ">= 2",
    )
    eval_batch_size: int = param(256, "batch size for validation and prediction", lambda v: v >= 1, ">= 1")
    lr: float = param(1e-4, "Adam learning rate (§5.1)", lambda v: v > 0, "> 0")
    beta1: float = param(0.9, "Adam β1 (§5.1)", lambda v: 0 <= v < 1, "in [0, 1)")
    beta2: float = param(0.999, "Adam β2 (§5.1)", lambda v: 0 <= v < 1, "in [0, 1)")
    eps: float = param(1e-8, "Adam ε (§5.1)", lambda v: v > 0, "> 0")
    weight_decay: float = param(0.0, "L2 weight decay", lambda v: v >= 0, ">= 0")
    max_epochs: int = param(100, "epoch limit (open)", lambda v: v >= 1, ">= 1")
    patience: int = param(10, "early-stopping patience in epochs (open)", lambda v: v >= 1, ">= 1")
    min_delta: float = param(
        0.0, "smallest improvement of the criterion that resets patience", lambda v: v >= 0, ">= 0"
    )
    monitor: Literal["val_ce", "val_f1"] = param(
        "val_ce",
        "early-stopping criterion, the same for every method: val_ce = unweighted eq. 2 (γ = 0, no clustering) on "
        "the validation labels; val_f1 = mean macro-F1 of the multiclass targets",
    )
    gamma: float = param(
        0.0, "focal focusing parameter γ of eq. 3 (0 = cross-entropy; value for _fo open)", lambda v: v >= 0, ">= 0"
    )
    normalize: Literal["all", "per_target"] = param(
        "all", "eq. 2 divides by N_M over all targets (all) or averages per target (SILKNOW code: per_target)"
    )
    lambda_c: float = param(1.0, "λ_C of eq. 1", lambda v: v >= 0, ">= 0")
    lambda_aux: float = param(0.0, "λ_aux of eq. 1", lambda v: v >= 0, ">= 0")
    alpha_sem: float = param(0.0, "α_sem of eq. 5", lambda v: v >= 0, ">= 0")
    alpha_co: float = param(0.0, "α_co of eq. 5", lambda v: v >= 0, ">= 0")
    alpha_slf: float = param(0.0, "α_slf of eq. 5", lambda v: v >= 0, ">= 0")
    max_triplets: int = param(
        200_000, "cap on the triplets of L_sem per batch (sampled beyond it)", lambda v: v >= 1, ">= 1"
    )
    colour_grid: int = param(8, "bins per axis of the colour feature h(x) of L_co (open)", lambda v: v >= 2, ">= 2")
    selfsim_noise: float = param(0.1, "σ_G of the Gaussian noise added to x' in L_slf (§3.2)", lambda v: v >= 0, ">= 0")
    channels_last: bool = param(True, "channels_last memory format (faster convolutions on CUDA)")
    precompute_trunk: Literal["auto", True, False] = param(
        "auto",
        "compute the frozen trunk (the stages before the first trained block) once per image, stored as float16, "
        "and train on its outputs; changes results only by that rounding. auto: on when finetune_blocks >= 0, "
        "augment is false and the backbone can be split (ResNets, VGG-19, tiny_cnn); false: the trunk runs for "
        "every batch",
        lambda v: isinstance(v, bool) or v == "auto",
        "auto, true or false",
    )

    def check(self, task: TaskSpec) -> None:
        """An unknown backbone, unusable weights or a bad NB_RN fail before any data is prepared."""
        targets = task.targets
        BACKBONES.get(self.backbone)
        backbone = build_backbone(self.backbone, self.weights, self.finetune_blocks)
        if self.precompute_trunk is True:
            if self.augment:
                raise ArtbenchError(
                    "precompute_trunk=true needs augment=false (augmented images change the trunk's outputs); set "
                    "precompute_trunk=auto or false"
                )
            if backbone.stages is None:
                raise ArtbenchError(
                    f"precompute_trunk=true: backbone {self.backbone} cannot be split into stages; use a ResNet, "
                    "vgg19 or tiny_cnn, or precompute_trunk=auto or false"
                )
            if self.finetune_blocks < 0:
                raise ArtbenchError(
                    "precompute_trunk=true: finetune_blocks=-1 trains every layer, so there is no frozen trunk; set "
                    "finetune_blocks >= 0 or precompute_trunk=auto or false"
                )
        if self.monitor == "val_f1" and not any(t.kind == "multiclass" for t in targets):
            raise ArtbenchError("monitor=val_f1 needs a multiclass target; use monitor=val_ce")

    @property
    def uses_colour(self) -> bool:
        return self.lambda_aux > 0 and self.alpha_co > 0

    def build_network(self, targets: list[TargetSpec], device: torch.device) -> SilkNet:
        backbone = build_backbone(self.backbone, self.weights, self.finetune_blocks)
        model = SilkNet(
            backbone, [t.num_outputs for t in targets], self.joint_layers, self.target_layers, self.dropout
        ).to(device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def uses_trunk(self, model: SilkNet) -> bool:
        """Whether ``model`` trains on precomputed trunk outputs (``precompute_trunk``)."""
        return self.precompute_trunk is not False and not self.augment and model.trunk_depth > 0

    def trunk(self, data: TaskData, model: SilkNet, ctx: RunContext) -> TrunkCache | None:
        """The precomputed trunk outputs of ``model`` over ``data``, or None when it trains on images."""
        if not self.uses_trunk(model):
            return None
        return cached_trunk(
            data,
            model,
            self.backbone,
            self.image_size,
            ctx,
            batch_size=self.eval_batch_size,
            channels_last=self.channels_last,
        )

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> SilkNetPredictor:
        feature = colour_feature(self.colour_grid, ctx.device) if self.uses_colour else None
        cache = data.images(self.image_size, [feature] if feature else [])
        train, val = data.index("train"), data.index("val")
        groups = (
            [list(range(len(data.targets)))]
            if self.strategy == "multitask"
            else [[m] for m in range(len(data.targets))]
        )
        scaling = {
            m: _standardisation(data.labels[m][train]) for m, t in enumerate(data.targets) if t.kind == "regression"
        }
        predictor = SilkNetPredictor(self, ctx, scaling)
        for members in groups:
            seed_everything(seed)
            targets = [data.targets[m] for m in members]
            labels = [_training_labels(data.labels[m], scaling.get(m)) for m in members]
            known = np.any([t.known(y) for t, y in zip(targets, labels, strict=True)], axis=0)
            name = "all" if self.strategy == "multitask" else targets[0].name
            model = self.build_network(targets, ctx.device)
            trunk = self.trunk(data, model, ctx)
            source = trunk_source(trunk, ctx.device) if trunk is not None else None
            objective = SilkNetObjective(self, [t.kind for t in targets], feature.name if feature else None)
            val_rows = val[known[val]]
            result = fit(
                model,
                objective,
                cache,
                labels,
                train[known[train]],
                self._criterion(cache, targets, labels, val_rows, ctx, source),
                self,
                ctx,
                seed=seed,
                early_stopping=len(val_rows) > 0,
                prefix="" if self.strategy == "multitask" else f"{name}.",
                trunk=source,
                trunk_images=objective.needs_images,
            )
            predictor.add(members, model, trunk)
            predictor.info["best_epoch"][name] = result.best_epoch
            predictor.info["epochs"][name] = result.epochs_run
            predictor.info["train_seconds"] += result.seconds
            predictor.info["trunk_precomputed"][name] = trunk is not None
            if trunk is not None:  # one-off cost of the trunk outputs (computed, or read back and verified)
                predictor.info["trunk_seconds"] += trunk.seconds
                predictor.info["trunk_built"] = predictor.info["trunk_built"] or trunk.built
        return predictor

    def _criterion(
        self,
        cache: ImageCache,
        targets: list[TargetSpec],
        labels: list[np.ndarray],
        rows: np.ndarray,
        ctx: RunContext,
        trunk: TrunkSource | None = None,
    ) -> Callable[[nn.Module], float]:
        """The early-stopping criterion on the validation ``rows`` (lower is better; from the precomputed ``trunk``
        outputs when given); see ``monitor``."""
        kinds = [t.kind for t in targets]
        if self.monitor == "val_f1":
            from sklearn.metrics import f1_score

            def negative_f1(model: nn.Module) -> float:
                outputs = predict_outputs(model, cache, rows, self, ctx, trunk)
                scores = []
                for t, y, z in zip(targets, labels, outputs, strict=True):
                    if t.kind != "multiclass":
                        continue
                    truth, known = y[rows], y[rows] >= 0
                    present = sorted(set(truth[known].tolist()) - {t.num_classes})
                    pred = z.argmax(axis=1)
                    scores.append(f1_score(truth[known], pred[known], labels=present, average="macro", zero_division=0))
                return -float(np.mean(scores))

            return negative_f1

        def cross_entropy(model: nn.Module) -> float:
            model.eval()
            total, weight = 0.0, 0
            with torch.no_grad(), autocast(ctx.device, ctx.amp):
                for batch in iterate_batches(
                    cache,
                    labels,
                    rows,
                    self.eval_batch_size,
                    ctx.device,
                    channels_last=self.channels_last,
                    trunk=trunk,
                    images=trunk is None,
                ):
                    n = sum(int(t.known(y.cpu().numpy()).sum()) for t, y in zip(targets, batch.labels, strict=True))
                    if n:
                        logits = [z.float() for z in batch_outputs(model, batch).logits]
                        total += float(multitask_loss(logits, batch.labels, kinds, 0.0, self.normalize)) * n
                        weight += n
            return total / weight if weight else float("nan")

        return cross_entropy


def _standardisation(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the known training values (std 1 where it is 0)."""
    known = values[~np.isnan(values)]
    std = float(known.std()) if len(known) > 1 else 1.0
    return float(known.mean()) if len(known) else 0.0, std if std > 0 else 1.0


def _training_labels(codes: np.ndarray, scaling: tuple[float, float] | None) -> np.ndarray:
    """Labels as the loss wants them: regression values standardised as float32, classes unchanged."""
    if scaling is None:
        return codes
    mean, std = scaling
    return ((codes - mean) / std).astype(np.float32)


class SilkNetPredictor(Predictor):
    """The trained network(s) of one seed: class probabilities (softmax, sigmoid) or de-standardised values."""

    def __init__(self, method: SilkNetMethod, ctx: RunContext, scaling: dict[int, tuple[float, float]]) -> None:
        self.method, self.ctx, self.scaling = method, ctx, scaling
        self.models: list[tuple[list[int], SilkNet, TrunkCache | None]] = []
        self.info: dict[str, Any] = {
            "best_epoch": {},
            "epochs": {},
            "train_seconds": 0.0,
            "trunk_precomputed": {},
            "trunk_seconds": 0.0,
            "trunk_built": False,
        }

    def add(self, members: list[int], model: SilkNet, trunk: TrunkCache | None = None) -> None:
        """A trained network for the targets ``members``, with its precomputed trunk outputs if it uses them."""
        self.models.append((members, model, trunk))

    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        cache = data.images(self.method.image_size)
        scores: dict[str, np.ndarray] = {}
        for members, model, trunk in self.models:
            source = trunk_source(trunk, self.ctx.device) if trunk is not None else None
            outputs = predict_outputs(model, cache, index, self.method, self.ctx, source)
            for m, z in zip(members, outputs, strict=True):
                spec = data.targets[m]
                if spec.kind == "multiclass":
                    scores[spec.name] = torch.softmax(torch.from_numpy(z), dim=1).numpy()
                elif spec.kind == "multilabel":
                    scores[spec.name] = torch.sigmoid(torch.from_numpy(z)).numpy()
                else:
                    mean, std = self.scaling[m]
                    scores[spec.name] = z.reshape(-1).astype(np.float64) * std + mean
        return Predictions(np.asarray(index), scores)


# Every row fixes all loss weights, so a task's [defaults] cannot leak into a method's definition.
CE = {"gamma": 0.0, "lambda_c": 1.0}
FOCAL = {"gamma": 2.0, "lambda_c": 1.0}
NO_AUX = {"lambda_aux": 0.0, "alpha_sem": 0.0, "alpha_co": 0.0, "alpha_slf": 0.0}
R_SEM = {"lambda_aux": 1.0, "alpha_sem": 1.0, "alpha_co": 0.0, "alpha_slf": 0.0}
R_ALL = {"lambda_aux": 1.0, "alpha_sem": 0.5, "alpha_co": 0.5, "alpha_slf": 0.5}

TABLE3_METHODS: dict[str, tuple[str, dict[str, float]]] = {
    "mtl": ("multi-task SilkNet, softmax cross-entropy over available labels (eq. 2, γ = 0)", {**CE, **NO_AUX}),
    "mtl_fo": ("multi-task SilkNet with the focal multi-task loss (eq. 2-4, γ = 2)", {**FOCAL, **NO_AUX}),
    "mtl_rsem": ("MTL + auxiliary semantic-similarity clustering (eq. 6; λ_aux = α_sem = 1)", {**CE, **R_SEM}),
    "mtl_rall": ("MTL + semantic, colour and self-similarity clustering (eq. 5-8; α = 0.5 each)", {**CE, **R_ALL}),
    "mtl_fo_rsem": ("focal MTL (γ = 2) + semantic-similarity clustering", {**FOCAL, **R_SEM}),
    "mtl_fo_rall": (
        "focal MTL (γ = 2) + semantic, colour and self-similarity clustering (best in Table 4)",
        {**FOCAL, **R_ALL},
    ),
}
"""The rows of Table 3: name → (description, fixed parameters). ``_fo``: γ = 2 (the focal-loss default, also the
SILKNOW code's; the paper does not print it)."""

register_method(
    "stl",
    SilkNetMethod,
    description="one SilkNet per target, trained on that target's labelled samples (single-task baseline)",
    reference="Dorozynski 2023, §1 (STL)",
    strategy="single_task",
    **CE,
    **NO_AUX,
)
for _name, (_description, _fixed) in TABLE3_METHODS.items():
    register_method(_name, SilkNetMethod, description=_description, reference="Dorozynski 2023, Table 3", **_fixed)
