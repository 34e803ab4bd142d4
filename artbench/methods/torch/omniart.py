"""The OmniArt family (Strezoski & Worring 2017, "OmniArt: Multi-task Deep Learning for Artistic Data Analysis",
arXiv 1708.00684; seeds/001 §3): frozen ResNet-50 features → one shared ReLU layer → one output block per task.

* Base layer (§3.4, §4.4): ResNet-50 on ImageNet, features of "the last layer before the classifier" (2048-d global
  average pooling), frozen (§3.3: "we limit the back-propagation effects to only the additional layers"). They come
  from the frozen-feature cache (:mod:`artbench.methods.torch.features`), computed once for every epoch and seed.
* Shared representation layer (§3.3, §4.5): a fully connected ReLU layer, 6,144 units by default ("best overall
  balance" of 1,024 ... 8,192).
* One output per task, of any kind (§3.2, §4.3): softmax with categorical cross-entropy (artist), sigmoid with
  binary cross-entropy (type and material, multi-label), a linear output with the mean absolute error (period).
* Combined loss, eq. 2: L_t = Σᵢ wᵢ·sᵢ·Lᵢ with task weights wᵢ and scale factors sᵢ. The period's MAE is "at least
  10 times larger" than the other losses and is "scaled down by a factor of ten" (§3.2, printed as s_period = 10;
  here sᵢ multiplies, so the default is regression=0.1). Lᵢ of a regression target is its MAE in the target's own
  units (years): the output is trained standardised and the loss multiplied back by the training std.

``task_weights`` and ``task_scales`` are mappings written as ``key=value`` pairs separated by commas, a key being a
target name or a target kind (``multiclass``, ``multilabel``, ``regression``; a name wins over its kind; unnamed
targets get 1), e.g. ``--set task_weights="artist=1,type=0.5"``. The paper sets the weights from the tasks' loss
ratios on the validation set (§4.1) without printing them, so the default weights are 1 (open).

``omniart_stl`` is the single-task comparison of Table 4 ("Deep CNN"): the same frozen features, shared layer and
output, trained per target. Not reproduced: horizontal-flip augmentation (§4.2; frozen features are computed from
the un-flipped images) and the class-wise weight matrix of the artist softmax on Rijks'14 (§4.3.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from artbench.core.device import seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.params import param
from artbench.core.targets import TARGET_KINDS, TargetSpec
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData
from artbench.methods.base import Method, Predictions, Predictor, RunContext, register_method
from artbench.methods.torch.backbones import check_backbone, native_input_size
from artbench.methods.torch.features import cached_features, features_on_device
from artbench.methods.torch.heads import (
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
    training_labels,
    weighted_loss,
)
from artbench.methods.torch.trainer import FitResult, train_epochs

MAX_IMAGE_SIZE = 2048


def parse_factors(text: str) -> dict[str, float]:
    """``"artist=1, regression=0.1"`` → ``{"artist": 1.0, "regression": 0.1}``; ValueError when malformed."""
    factors: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        number = float(value)
        if not sep or not key.strip() or not math.isfinite(number) or number < 0:
            raise ValueError(item)
        factors[key.strip()] = number
    return factors


def _well_formed(text: str) -> bool:
    try:
        parse_factors(text)
    except ValueError:
        return False
    return True


MAPPING = "comma-separated key=value pairs, keys target names or kinds, values finite and >= 0"


@dataclass
class OmniArtMethod(Method):
    """Frozen backbone features → shared ReLU layer → one output per target, trained with eq. 2."""

    supports = frozenset({"multiclass", "multilabel", "regression"})

    strategy: Literal["multitask", "single_task"] = param(
        "multitask", "multitask: one shared layer for all targets (OmniArt); single_task: one model per target (STL)"
    )
    backbone: str = param("resnet50", "frozen feature extractor (§3.4, §4.4: ResNet-50 without its top block)")
    weights: str = param(
        "imagenet", "imagenet (§4.4), none (a fixed random backbone), a state-dict path or run:<run folder>[#seed]"
    )
    image_size: int = param(
        0,
        "square input size in px; 0 = the backbone's own (224 for ResNet-50; the paper does not say)",
        lambda v: v == 0 or 8 <= v <= MAX_IMAGE_SIZE,
        f"0 or in [8, {MAX_IMAGE_SIZE}]",
    )
    shared_units: int = param(6144, "units of the shared ReLU layer (§4.5: 6144)", lambda v: v >= 1, ">= 1")
    task_weights: str = param("", "wᵢ of eq. 2 as target=value,... (others 1; open, §4.1)", _well_formed, MAPPING)
    task_scales: str = param(
        "regression=0.1", "sᵢ of eq. 2 (§3.2: the period's MAE scaled down 10×)", _well_formed, MAPPING
    )
    standardise_features: bool = param(
        False, "z-score the features with the training rows' mean/std (not in the paper; random backbones need it)"
    )
    batch_size: int = param(32, "training batch size (open; §4.5 times batches of 32)", lambda v: v >= 2, ">= 2")
    eval_batch_size: int = param(1024, "batch size for features, validation and prediction", lambda v: v >= 1, ">= 1")
    optimizer: Literal["sgd", "rmsprop", "adam"] = param("adam", "optimiser of the heads (open)")
    lr: float = param(1e-3, "learning rate (open; Keras' Adam default)", lambda v: v > 0, "> 0")
    momentum: float = param(0.9, "SGD momentum", lambda v: 0 <= v < 1, "in [0, 1)")
    nesterov: bool = param(True, "Nesterov momentum for SGD")
    rho: float = param(0.9, "RMSprop decay ρ", lambda v: 0 <= v < 1, "in [0, 1)")
    eps: float = param(1e-8, "Adam/RMSprop ε", lambda v: v > 0, "> 0")
    weight_decay: float = param(0.0, "L2 weight decay", lambda v: v >= 0, ">= 0")
    max_epochs: int = param(100, "epoch limit (open)", lambda v: v >= 1, ">= 1")
    patience: int = param(
        10, "early stopping on the validation L_t: epochs without improvement (open)", lambda v: v >= 1, ">= 1"
    )
    min_delta: float = param(0.0, "smallest decrease of the validation L_t that counts", lambda v: v >= 0, ">= 0")

    @property
    def input_size(self) -> int:
        return self.image_size or native_input_size(self.backbone)

    def check(self, task: TaskSpec) -> None:
        """Unknown backbone or unusable weights; weight or scale keys that name no target and no kind."""
        targets = task.targets
        names = {t.name for t in targets}
        for label, text in (("task_weights", self.task_weights), ("task_scales", self.task_scales)):
            unknown = sorted(set(parse_factors(text)) - names - set(TARGET_KINDS))
            if unknown:
                raise ArtbenchError(
                    f"{label}: {', '.join(unknown)} name no target of the task and no kind; "
                    f"targets: {', '.join(sorted(names))}"
                )
        check_backbone(self.backbone, self.weights, self.input_size)

    def factor(self, spec: TargetSpec) -> float:
        """wᵢ·sᵢ of a target: its name's value, else its kind's, else 1."""
        weights, scales = parse_factors(self.task_weights), parse_factors(self.task_scales)
        w = weights.get(spec.name, weights.get(spec.kind, 1.0))
        s = scales.get(spec.name, scales.get(spec.kind, 1.0))
        return w * s

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> OmniArtPredictor:
        cache = cached_features(
            data, self.backbone, self.weights, self.input_size, ctx, seed=seed, batch_size=self.eval_batch_size
        )
        features = features_on_device(cache, ctx.device)
        train_rows, val_rows = data.index("train"), data.index("val")
        scaling = {
            m: standardisation(data.labels[m][train_rows]) for m, t in enumerate(data.targets) if t.kind == "regression"
        }
        labels = [
            torch.from_numpy(np.ascontiguousarray(training_labels(y, scaling.get(m)))).to(ctx.device)
            for m, y in enumerate(data.labels)
        ]
        predictor = OmniArtPredictor(self, features, scaling)
        predictor.info.update(
            feature_cache=cache.path.name, feature_cache_built=cache.built, feature_seconds=cache.seconds
        )
        groups = (
            [list(range(len(data.targets)))]
            if self.strategy == "multitask"
            else [[m] for m in range(len(data.targets))]
        )
        for members in groups:
            targets = [data.targets[m] for m in members]
            kinds = [t.kind for t in targets]
            ys = [labels[m] for m in members]
            # Lᵢ of a regression target in its own units: the standardised L1 times the training std.
            factors = [self.factor(data.targets[m]) * scaling.get(m, (0.0, 1.0))[1] for m in members]
            known = np.any([t.known(data.labels[m]) for m, t in zip(members, targets, strict=True)], axis=0)
            train, val = train_rows[known[train_rows]], val_rows[known[val_rows]]
            name = "all" if self.strategy == "multitask" else targets[0].name
            check_trainable(train, f"{ctx.description} · {name}")
            seed_everything(seed)
            statistics = feature_statistics(features, train) if self.standardise_features else None
            head = MultiHead(features.shape[1], [t.num_outputs for t in targets], self.shared_units, statistics)
            head = head.to(ctx.device)

            def loss_fn(
                model: nn.Module, batch: Any, generator: torch.Generator, kinds=kinds, factors=factors
            ) -> tuple[torch.Tensor, dict]:
                x, batch_labels = batch
                return weighted_loss(model(x), batch_labels, kinds, factors)

            def criterion(model: nn.Module, rows=val, ys=ys, kinds=kinds, factors=factors) -> float:
                model.eval()
                batches = feature_batches(features, ys, rows, self.eval_batch_size)
                return combined(mean_losses(((model(x), y) for x, y in batches), kinds), factors)

            result = train_epochs(
                head,
                make_optimiser(self, head.parameters()),
                lambda rng, rows=train, ys=ys: feature_batches(features, ys, rows, self.batch_size, rng),
                loss_fn,
                criterion,
                self,
                ctx,
                seed=seed,
                train_rows=train,
                early_stopping=len(val) > 0,
                prefix="" if self.strategy == "multitask" else f"{name}.",
            )
            predictor.add(members, head, result, name)
        return predictor


class OmniArtPredictor(Predictor):
    """The trained heads of one seed on the cached features: probabilities or values in the targets' units."""

    def __init__(self, method: OmniArtMethod, features: torch.Tensor, scaling: dict[int, tuple[float, float]]) -> None:
        self.method, self.features, self.scaling = method, features, scaling
        self.heads: list[tuple[list[int], MultiHead]] = []
        self.info: dict[str, Any] = {"best_epoch": {}, "epochs": {}, "train_seconds": 0.0}

    def add(self, members: list[int], head: MultiHead, result: FitResult, name: str) -> None:
        self.heads.append((members, head))
        self.info["best_epoch"][name] = result.best_epoch
        self.info["epochs"][name] = result.epochs_run
        self.info["train_seconds"] += result.seconds

    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        out = {}
        for members, head in self.heads:
            outputs = head_outputs(head, self.features, np.asarray(index), self.method.eval_batch_size)
            for m, z in zip(members, outputs, strict=True):
                out[data.targets[m].name] = scores(data.targets[m], z, self.scaling.get(m))
        return Predictions(np.asarray(index), out)


REFERENCE = "Strezoski & Worring 2017, OmniArt, §3 (eq. 2), Tables 2 and 4"
register_method(
    "omniart_mtl",
    OmniArtMethod,
    description="frozen ResNet-50 features → shared ReLU layer (6144) → one head per target of any kind, eq. 2",
    reference=REFERENCE,
    strategy="multitask",
)
register_method(
    "omniart_stl",
    OmniArtMethod,
    description="OmniArt's single-task comparison: the same frozen features, shared layer and head per target",
    reference=REFERENCE,
    strategy="single_task",
)
