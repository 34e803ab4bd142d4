"""Transfer-learning protocols of Sabatelli et al. (2018), "Deep Transfer Learning for Art Classification Problems"
(ECCV VisArt workshop; seeds/003 = the talk's slides, the paper's §2.3 gives the settings):

* ``tl_offshelf``: "off the shelf" — the ImageNet backbone stays frozen; only a new softmax output on the pooled
  features 𝒳 is trained, with RMSprop (lr 1e-3, ρ 0.9, ε 1e-8). 𝒳 comes from the frozen-feature cache
  (:mod:`artbench.methods.torch.features`), so every epoch and seed reuses one forward pass.
* ``tl_finetune``: "fine tuning" — all layers trained from the ImageNet weights with SGD (lr 1e-3, Nesterov
  momentum 0.9).
* ``tl_scratch``: "training from scratch" — He-uniform random init (the paper's Scratch-V3 is Inception-V3:
  ``--set backbone=inception_v3``), all layers trained; the optimiser is not stated (SGD as fine-tuning, open).

Common to all (§2.3): batch size 32, no augmentation, images resized to the backbone's input size (224 px; 299 px
for Inception-V3 and Xception), categorical cross-entropy, early stopping when the validation loss has not decreased
for 7 epochs, the model with the smallest validation loss kept. Backbones: VGG19, Inception-V3, ResNet-50 and
Xception (timm, optional).

The paper trains one single-task network per challenge. Here a task with several targets gets one classifier per
target, each trained on its target's labelled samples (``strategy = "single_task"``, the default); fine-tuning with
``strategy = "multitask"`` shares one backbone between the targets' softmax outputs and sums their losses. With a
frozen backbone the heads share nothing, so ``tl_offshelf`` is single-task either way. Multilabel and regression
targets, absent from the paper (it treats everything as multi-class), get a sigmoid or linear output with binary
cross-entropy or the absolute error on the standardised value.

Two-stage transfer ("from one art collection to another", θ̂): a fine-tuning run saves each seed's trained backbone
in its seed folder (``seed-<k>/backbone.pt``, or ``backbone.<target>.pt`` per target); ``weights=run:<run folder>``
starts seed k of another run from seed k's backbone (``#<seed>`` pins one seed, ``@<target>`` picks a target's).
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
from artbench.methods.torch.backbones import (
    backbone_file_name,
    build_backbone,
    check_backbone,
    native_input_size,
    resolve_weights,
    save_backbone,
)
from artbench.methods.torch.batches import Batch, iterate_batches, normalise
from artbench.methods.torch.features import cached_features, features_on_device
from artbench.methods.torch.heads import (
    Classifier,
    MultiHead,
    check_trainable,
    combined,
    feature_batches,
    feature_statistics,
    head_outputs,
    make_optimiser,
    mean_losses,
    scores,
    standardisation,
    target_losses,
    training_labels,
)
from artbench.methods.torch.trainer import FitResult, autocast, predict_outputs, train_epochs

MAX_IMAGE_SIZE = 2048


@dataclass
class TransferMethod(Method):
    """A backbone with one new output per target, trained frozen (off the shelf) or whole (fine-tuning, scratch)."""

    supports = frozenset({"multiclass", "multilabel", "regression"})

    protocol: Literal["off_the_shelf", "fine_tuning"] = param(
        "fine_tuning", "off_the_shelf: frozen backbone, only the new output trained (on cached features); "
        "fine_tuning: every layer trained (§2.3)"
    )  # fmt: skip
    strategy: Literal["single_task", "multitask"] = param(
        "single_task",
        "fine-tuning only: one network per target (the paper's single-task protocol) or one backbone shared by "
        "the targets' outputs (losses summed)",
    )
    backbone: str = param("resnet50", "vgg19, inception_v3, resnet50, xception (timm), resnet18/152 or tiny_cnn")
    weights: str = param(
        "imagenet", "imagenet, none (random init), a state-dict path, or run:<run folder>[#seed][@target] (θ̂)"
    )
    init: Literal["default", "he_uniform"] = param(
        "default", "he_uniform: every conv/linear layer drawn He-uniform (Scratch-V3, §3); needs weights=none"
    )
    image_size: int = param(
        0,
        "square input size in px; 0 = the backbone's own (224, or 299 for inception_v3/xception; §2.3)",
        lambda v: v == 0 or 8 <= v <= MAX_IMAGE_SIZE,
        f"0 or in [8, {MAX_IMAGE_SIZE}]",
    )
    batch_size: int = param(32, "training batch size (§2.3: 32)", lambda v: v >= 2, ">= 2")
    eval_batch_size: int = param(256, "batch size for features, validation and prediction", lambda v: v >= 1, ">= 1")
    optimizer: Literal["sgd", "rmsprop", "adam"] = param(
        "sgd", "§2.3: rmsprop off the shelf, sgd (Nesterov) for fine-tuning; scratch not stated (sgd)"
    )
    lr: float = param(1e-3, "learning rate (§2.3: 1e-3 for both optimisers)", lambda v: v > 0, "> 0")
    momentum: float = param(0.9, "SGD momentum (§2.3: Nesterov 0.9)", lambda v: 0 <= v < 1, "in [0, 1)")
    nesterov: bool = param(True, "Nesterov momentum for SGD (§2.3)")
    rho: float = param(0.9, "RMSprop decay ρ (§2.3: 0.9, Keras' default)", lambda v: 0 <= v < 1, "in [0, 1)")
    eps: float = param(1e-8, "RMSprop/Adam ε (§2.3: 1e-8)", lambda v: v > 0, "> 0")
    weight_decay: float = param(0.0, "L2 weight decay (none in the paper)", lambda v: v >= 0, ">= 0")
    max_epochs: int = param(100, "epoch limit (open: the paper stops by early stopping)", lambda v: v >= 1, ">= 1")
    patience: int = param(7, "early stopping: epochs without a lower validation loss (§2.3)", lambda v: v >= 1, ">= 1")
    min_delta: float = param(0.0, "smallest decrease of the validation loss that counts", lambda v: v >= 0, ">= 0")
    standardise_features: bool = param(
        False, "off the shelf: z-score 𝒳 with the training rows' mean/std (not in the paper; random backbones need it)"
    )
    save_backbone: bool = param(True, "fine-tuning: save each seed's trained backbone for weights=run:<run folder>")
    channels_last: bool = param(True, "channels_last memory format (faster convolutions on CUDA)")

    @property
    def input_size(self) -> int:
        return self.image_size or native_input_size(self.backbone)

    @property
    def frozen(self) -> bool:
        return self.protocol == "off_the_shelf"

    def check(self, task: TaskSpec) -> None:
        """Unknown backbone, unusable weights, an input too small, or He init over pretrained weights."""
        if self.init == "he_uniform" and self.weights != "none":
            raise ArtbenchError(f"init=he_uniform re-initialises the backbone: use weights=none, not {self.weights!r}")
        if self.init == "he_uniform" and self.frozen:
            raise ArtbenchError("init=he_uniform with protocol=off_the_shelf freezes random weights; use fine_tuning")
        check_backbone(self.backbone, self.weights, self.input_size)

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> TransferPredictor:
        scaling = {m: standardisation(data.labels[m][data.index("train")]) for m in _regression(data.targets)}
        labels = [training_labels(y, scaling.get(m)) for m, y in enumerate(data.labels)]
        predictor = TransferPredictor(self, ctx, scaling)
        if self.frozen:
            self._fit_heads(data, labels, seed, ctx, predictor)
        else:
            self._fit_networks(data, labels, seed, ctx, predictor)
        return predictor

    def _groups(self, data: TaskData) -> list[list[int]]:
        if self.strategy == "multitask" and not self.frozen:
            return [list(range(len(data.targets)))]
        return [[m] for m in range(len(data.targets))]

    def _fit_heads(
        self, data: TaskData, labels: list[np.ndarray], seed: int, ctx: RunContext, predictor: TransferPredictor
    ) -> None:
        """Off the shelf: one softmax (sigmoid, linear) output per target on the cached features 𝒳."""
        cache = cached_features(
            data, self.backbone, self.weights, self.input_size, ctx, seed=seed, batch_size=self.eval_batch_size
        )
        features = features_on_device(cache, ctx.device)
        predictor.features = features
        predictor.info.update(feature_cache=cache.path.name, feature_cache_built=cache.built)
        predictor.info["feature_seconds"] = cache.seconds
        for members in self._groups(data):
            m = members[0]
            spec = data.targets[m]
            train, val = _labelled(spec, labels[m], data.index("train")), _labelled(spec, labels[m], data.index("val"))
            check_trainable(train, f"{ctx.description} · {spec.name}")
            y = torch.from_numpy(np.ascontiguousarray(labels[m])).to(ctx.device)
            seed_everything(seed)
            statistics = feature_statistics(features, train) if self.standardise_features else None
            head = MultiHead(features.shape[1], [spec.num_outputs], standardise=statistics).to(ctx.device)

            def loss_fn(
                model: nn.Module, batch: Any, generator: torch.Generator, kind: str = spec.kind
            ) -> tuple[torch.Tensor, dict]:
                x, ys = batch
                loss = target_losses(model(x), ys, [kind])[0]
                return loss, {"loss": loss.detach()}

            def criterion(model: nn.Module, rows: np.ndarray = val, kind: str = spec.kind, target=y) -> float:
                model.eval()
                batches = feature_batches(features, [target], rows, self.eval_batch_size)
                return float(mean_losses(((model(x), ys) for x, ys in batches), [kind])[0])

            result = train_epochs(
                head,
                make_optimiser(self, head.parameters()),
                lambda rng, rows=train, target=y: feature_batches(features, [target], rows, self.batch_size, rng),
                loss_fn,
                criterion,
                self,
                ctx,
                seed=seed,
                train_rows=train,
                early_stopping=len(val) > 0,
                prefix=f"{spec.name}.",
            )
            predictor.add(members, head, result, spec.name)

    def _fit_networks(
        self, data: TaskData, labels: list[np.ndarray], seed: int, ctx: RunContext, predictor: TransferPredictor
    ) -> None:
        """Fine-tuning and scratch: backbone and new output(s) trained together on the images."""
        cache = data.images(self.input_size)
        weights = resolve_weights(self.weights, self.backbone, seed)
        groups = self._groups(data)
        for members in groups:
            targets = [data.targets[m] for m in members]
            group_labels = [labels[m] for m in members]
            kinds = [t.kind for t in targets]
            known = np.any([t.known(y) for t, y in zip(targets, group_labels, strict=True)], axis=0)
            train, val = data.index("train"), data.index("val")
            train, val = train[known[train]], val[known[val]]
            name = targets[0].name if len(groups) > 1 else None
            check_trainable(train, ctx.description + (f" · {name}" if name else ""))
            seed_everything(seed)
            backbone = build_backbone(self.backbone, weights, -1)
            if self.init == "he_uniform":
                he_uniform_(backbone.body)
            model = Classifier(backbone.body, MultiHead(backbone.feature_dim, [t.num_outputs for t in targets]))
            model = model.to(ctx.device)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            drop_last = len(train) > self.batch_size  # a batch of one breaks BatchNorm

            def batches(
                rng: np.random.Generator, rows: np.ndarray = train, ys=group_labels, drop_last: bool = drop_last
            ) -> Any:
                return iterate_batches(
                    cache,
                    ys,
                    rows,
                    self.batch_size,
                    ctx.device,
                    rng=rng,
                    drop_last=drop_last,
                    channels_last=self.channels_last,
                )

            def loss_fn(
                model: nn.Module, batch: Batch, generator: torch.Generator, kinds: list[str] = kinds
            ) -> tuple[torch.Tensor, dict]:
                loss = torch.stack(target_losses(model(normalise(batch.images)).logits, batch.labels, kinds)).sum()
                return loss, {"loss": loss.detach()}

            result = train_epochs(
                model,
                make_optimiser(self, model.parameters()),
                batches,
                loss_fn,
                self._image_criterion(cache, group_labels, kinds, val, ctx),
                self,
                ctx,
                seed=seed,
                train_rows=train,
                early_stopping=len(val) > 0,
                prefix=f"{name}." if name else "",
            )
            predictor.add(members, model, result, name or "all")
            if self.save_backbone and ctx.seed_dir is not None:
                save_backbone(model.body, self.backbone, ctx.seed_dir / backbone_file_name(name))

    def _image_criterion(
        self, cache: ImageCache, labels: list[np.ndarray], kinds: list[str], rows: np.ndarray, ctx: RunContext
    ) -> Callable[[nn.Module], float]:
        """The validation loss: Σ over the group's targets of their mean loss on the validation images."""

        def validation_loss(model: nn.Module) -> float:
            model.eval()
            with autocast(ctx.device, ctx.amp):
                batches = iterate_batches(
                    cache, labels, rows, self.eval_batch_size, ctx.device, channels_last=self.channels_last
                )
                losses = mean_losses(((model(normalise(b.images)).logits, b.labels) for b in batches), kinds)
            return combined(losses, [1.0] * len(kinds))

        return validation_loss


def he_uniform_(module: nn.Module) -> None:
    """Keras' ``he_uniform`` on every conv and linear weight (U(±√(6/fan_in))), zero biases (Sabatelli §3)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _regression(targets: list[TargetSpec]) -> list[int]:
    return [m for m, t in enumerate(targets) if t.kind == "regression"]


def _labelled(spec: TargetSpec, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return rows[spec.known(labels[rows])]


class TransferPredictor(Predictor):
    """The trained outputs of one seed: heads on cached features (off the shelf) or whole networks."""

    def __init__(self, method: TransferMethod, ctx: RunContext, scaling: dict[int, tuple[float, float]]) -> None:
        self.method, self.ctx, self.scaling = method, ctx, scaling
        self.features: torch.Tensor | None = None
        self.models: list[tuple[list[int], nn.Module]] = []
        self.info: dict[str, Any] = {"best_epoch": {}, "epochs": {}, "train_seconds": 0.0}

    def add(self, members: list[int], model: nn.Module, result: FitResult, name: str) -> None:
        self.models.append((members, model))
        self.info["best_epoch"][name] = result.best_epoch
        self.info["epochs"][name] = result.epochs_run
        self.info["train_seconds"] += result.seconds

    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        method, out = self.method, {}
        for members, model in self.models:
            if self.features is not None:
                outputs = head_outputs(model, self.features, index, method.eval_batch_size)
            else:
                outputs = predict_outputs(model, data.images(method.input_size), index, method, self.ctx)
            for m, z in zip(members, outputs, strict=True):
                out[data.targets[m].name] = scores(data.targets[m], z, self.scaling.get(m))
        return Predictions(np.asarray(index), out)


REFERENCE = "Sabatelli et al. 2018, Deep Transfer Learning for Art Classification Problems, §2.3"
register_method(
    "tl_offshelf",
    TransferMethod,
    description="frozen backbone (ImageNet) + new softmax output per target on cached features, RMSprop",
    reference=REFERENCE,
    protocol="off_the_shelf",
    optimizer="rmsprop",
)
register_method(
    "tl_finetune",
    TransferMethod,
    description="every layer trained from ImageNet weights with a new softmax output per target, SGD Nesterov",
    reference=REFERENCE,
    protocol="fine_tuning",
    optimizer="sgd",
)
register_method(
    "tl_scratch",
    TransferMethod,
    description="He-uniform random init, every layer trained, SGD (the paper's Scratch-V3 uses inception_v3)",
    reference=REFERENCE,
    protocol="fine_tuning",
    optimizer="sgd",
    weights="none",
    init="he_uniform",
)
