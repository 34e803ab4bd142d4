"""Multimodal image + metadata classification (Belhi et al. 2018, "Leveraging Known Data for Missing Label
Prediction in Cultural Heritage Context", Appl. Sci. 8(10), 1768; seed paper 004).

The network of §2.6 (Fig. 9): the image goes through a fine-tuned CNN (ResNet-50, global average pooling → 2048
ReLU units); the metadata inputs (genre, style, media: any columns the task lists in ``metadata = [...]``) are
one-hot arrays that *together* feed one aggregation layer of 256 units ("The textual inputs (three) are then
connected to an aggregation layer of 256 units ... We then merged the 2048 units and the 256 units in a
concatenation layer"); the concatenation is regularised with 50 % dropout and feeds a ReLU layer of 1024 units
(the "global features"), shared by one softmax output per target; the loss is the sum over the outputs of their
categorical cross-entropies. ``multimodal_image_only`` is the paper's single-input network of §2.5 (average pooling
→ dropout 50 % → ReLU 1024 → softmax outputs), the "1-Input" columns of Table 5.

A regression target (the creation year) is learnt as classification into bins of ``bin_width`` (§2.1.2: "the year
label was divided into bins of 10 years"): the method turns the values into bin classes itself and reports the
centre of the predicted bin as the value, so a task keeps one regression target that every method can learn and
that the regression metrics (MAE, RMSE, within 50 years) score alike.

Training follows Table 3: SGD with learning rate 1e-3, momentum 0.9, Nesterov, decay 1e-6, batch 64, 100 epochs.
"Decay" is Keras 2.1.5's (§3.1) per-update learning-rate decay, lr_t = lr / (1 + decay · t) after t updates, not a
weight decay; it is ``lr_decay`` here. Augmentation: horizontal flips and random crops only (§2.1.2).

The paper's protocol choices that are not method settings: the artist subsets (all / >50 / >100 / >300 paintings
per artist, Table 1) filter the dataset before it is split, so they belong to the task (e.g. the omniart dataset's
``min_artist_samples``); the 5-fold cross-validation (§2.6, Tables 4-5) is a split protocol, whose fold assignment
is :func:`cross_validation_folds`. Settings the paper leaves open are marked "(open)" and listed in
``baselines/belhi2018.toml``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from artbench.core.device import seed_everything
from artbench.core.errors import ArtbenchError
from artbench.core.params import param
from artbench.core.targets import MISSING
from artbench.core.task import TaskSpec
from artbench.data.cache import ImageCache
from artbench.data.task_data import TaskData
from artbench.methods.base import Method, Predictions, Predictor, RunContext, register_method
from artbench.methods.torch.augment import random_geometric
from artbench.methods.torch.backbones import Backbone, build_backbone
from artbench.methods.torch.batches import Batch, iterate_batches, normalise
from artbench.methods.torch.heads import check_trainable
from artbench.methods.torch.losses.focal import multiclass_terms
from artbench.methods.torch.trainer import autocast, train_epochs

MAX_IMAGE_SIZE = 2048
"""Largest square input size (the prepared cache's limit, as for SilkNet)."""
UNKNOWN = 0
"""Metadata code of a value that is missing or was not seen in the training rows (each column's extra slot)."""


@dataclass(frozen=True)
class MetadataVocabulary:
    """One-hot encoding of the task's metadata columns (§2.1.2: "encoded using One Hot Encoding").

    Each column's vocabulary is the sorted set of values in the training rows; code ``i + 1`` stands for
    ``values[c][i]`` and code :data:`UNKNOWN` (0) for a missing value or one never seen in training, so validation
    and test rows never add inputs the network was not trained with.
    """

    columns: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    @classmethod
    def fit(cls, metadata: pd.DataFrame, rows: np.ndarray) -> MetadataVocabulary:
        train = metadata.iloc[rows]
        return cls(
            tuple(metadata.columns),
            tuple(tuple(sorted({str(v) for v in train[c].dropna()})) for c in metadata.columns),
        )

    @property
    def widths(self) -> tuple[int, ...]:
        """One-hot width of each column: its vocabulary plus the unknown slot."""
        return tuple(len(v) + 1 for v in self.values)

    def encode(self, metadata: pd.DataFrame) -> np.ndarray:
        """Codes ``[N, C]`` (int64) of the rows of ``metadata``, one column per metadata column."""
        codes = np.full((len(metadata), len(self.columns)), UNKNOWN, dtype=np.int64)
        for c, (column, values) in enumerate(zip(self.columns, self.values, strict=True)):
            lookup = {v: i + 1 for i, v in enumerate(values)}
            cells = metadata[column]
            present = cells.notna().to_numpy()
            codes[present, c] = [lookup.get(str(v), UNKNOWN) for v in cells[present]]
        return codes


@dataclass(frozen=True)
class ValueBins:
    """A regression target learnt as classes (§2.1.2: years in bins of 10).

    Bin k holds the values in ``[k·width, (k+1)·width)`` (decades 1870-1879, ...); the classes are the bins from the
    lowest to the highest training value, class 0 being bin ``first``. Values beyond them fall into the end classes.
    """

    width: float
    first: int
    count: int

    @classmethod
    def fit(cls, values: np.ndarray, width: float) -> ValueBins:
        known = values[~np.isnan(values)]
        low, high = math.floor(known.min() / width), math.floor(known.max() / width)
        return cls(width, low, high - low + 1)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Class codes (int64) of ``values``; :data:`MISSING` where a value is NaN."""
        codes = np.full(len(values), MISSING, dtype=np.int64)
        known = ~np.isnan(values)
        codes[known] = np.clip(np.floor(values[known] / self.width).astype(np.int64) - self.first, 0, self.count - 1)
        return codes

    @property
    def centres(self) -> np.ndarray:
        """The value reported for each class: the centre of its bin (1875.0 for the 1870s)."""
        return (self.first + np.arange(self.count) + 0.5) * self.width


class DecayingSGD(torch.optim.SGD):
    """Keras' (2.1.5, §3.1) SGD with Table 3's "Decay": update t (counted from 0) uses lr / (1 + decay · t).

    The decay is the optimiser's own, as in Keras; the update count lives in the parameter groups, so it is part of
    the optimiser's state. (Keras accumulates the lr-scaled velocity, torch the raw one: the two Nesterov updates
    agree while the rate is constant, and differ by the decay's relative change, under 1e-6 per update, otherwise.)
    """

    def __init__(
        self, parameters: Iterable[nn.Parameter], lr: float, momentum: float, nesterov: bool, decay: float
    ) -> None:
        super().__init__(parameters, lr=lr, momentum=momentum, nesterov=nesterov)
        for group in self.param_groups:
            group.update(initial_lr=lr, decay=decay, updates=0)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        for group in self.param_groups:
            group["lr"] = group["initial_lr"] / (1 + group["decay"] * group["updates"])
            group["updates"] += 1
        return super().step(closure)


def flip_and_crop(images: torch.Tensor, generator: torch.Generator, crop_scale: float) -> torch.Tensor:
    """The paper's only augmentations (§2.1.2): a random square crop of side ``crop_scale`` · H, resized back to H,
    and a horizontal flip with probability 0.5; no rotations or vertical flips ("any data augmentation will
    decrease ... the generalization capability")."""
    cropped = random_geometric(
        images, generator, rot90=False, flips=False, crop_scale=(crop_scale, crop_scale), max_rotation_deg=0.0
    )
    flip = torch.rand(len(images), generator=generator, device=generator.device).to(images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), cropped.flip(3), cropped)


def cross_validation_folds(
    groups: Sequence[str] | np.ndarray, strata: np.ndarray | None = None, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Fold ``0..folds-1`` of every sample for k-fold cross-validation (§2.6: five folds, each in turn the 20 %
    validation part while the other 80 % train; Tables 4-5 average over the folds).

    Whole groups go to one fold. The groups are sorted by stratum (the ``strata`` code of a group's first sample,
    e.g. the artist; ``-1`` missing is a stratum of its own), in random order within a stratum, and dealt to the
    folds in turn: every stratum's groups spread over the folds as evenly as possible (counts differ by at most
    one) and the folds' group counts differ by at most one. ``seed`` fixes the order.
    """
    names, group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    if folds < 2 or len(names) < folds:
        raise ArtbenchError(
            f"cross-validation needs at least 2 folds and one group per fold: {folds} folds, {len(names)} groups"
        )
    first_sample = np.unique(group_index, return_index=True)[1]
    group_strata = np.zeros(len(names), dtype=np.int64) if strata is None else np.asarray(strata)[first_sample]
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(names)), group_strata))
    fold_of_group = np.empty(len(names), dtype=np.int64)
    fold_of_group[order] = np.arange(len(names)) % folds
    return fold_of_group[group_index]


class MultimodalNet(nn.Module):
    """Fig. 9 (§2.6): image features ⊕ ReLU(W·[one-hot metadata]) → dropout → ReLU 1024 → one output per target.

    Without metadata widths it is the single-input network of §2.5. Dense layers start as Keras' default
    (Glorot-uniform weights, zero biases).
    """

    def __init__(
        self,
        backbone: Backbone,
        metadata_widths: Sequence[int],
        num_outputs: Sequence[int],
        metadata_units: int = 256,
        joint_units: int = 1024,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.backbone = backbone.body
        self.metadata_widths = tuple(metadata_widths)
        self.aggregation = (
            nn.Sequential(nn.Linear(sum(self.metadata_widths), metadata_units), nn.ReLU())
            if self.metadata_widths
            else None
        )
        merged = backbone.feature_dim + (metadata_units if self.metadata_widths else 0)
        self.joint = nn.Sequential(nn.Dropout(dropout), nn.Linear(merged, joint_units), nn.ReLU())
        self.outputs = nn.ModuleList(nn.Linear(joint_units, k) for k in num_outputs)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def train(self, mode: bool = True) -> MultimodalNet:
        super().train(mode)
        for module in self.backbone.modules():  # frozen BatchNorm layers keep their statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.weight.requires_grad:
                module.eval()
        return self

    def forward(self, images: torch.Tensor, metadata: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Logits per target for normalised ``images`` and metadata codes ``[N, C]`` (see MetadataVocabulary)."""
        features = self.backbone(images)
        if self.aggregation is not None:
            if metadata is None:
                raise ValueError("this network has metadata inputs; pass their codes")
            columns = [F.one_hot(metadata[:, c], width) for c, width in enumerate(self.metadata_widths)]
            one_hot = torch.cat(columns, dim=1).to(features.dtype)
            features = torch.cat([features, self.aggregation(one_hot)], dim=1)
        shared = self.joint(features)
        return [output(shared) for output in self.outputs]


class MultimodalObjective:
    """Sum over the outputs of their categorical cross-entropy (§2.6), each averaged over the batch's available
    labels; ``metadata`` holds every row's codes on the device and is looked up by ``batch.index``."""

    def __init__(self, metadata: torch.Tensor | None) -> None:
        self.metadata = metadata

    def inputs(self, batch: Batch) -> torch.Tensor | None:
        if self.metadata is None:
            return None
        return self.metadata[torch.from_numpy(batch.index).to(self.metadata.device)]

    def terms(self, model: nn.Module, images: torch.Tensor, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per target: the sum of the cross-entropies over its available labels and their count."""
        logits = model(normalise(images), self.inputs(batch))
        return [multiclass_terms(z.float(), y, 0.0) for z, y in zip(logits, batch.labels, strict=True)]

    def __call__(
        self, model: nn.Module, images: torch.Tensor, batch: Batch, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = torch.stack([total / count.clamp(min=1) for total, count in self.terms(model, images, batch)]).sum()
        return loss, {"loss": loss.detach()}


@dataclass
class MultimodalMethod(Method):
    """Belhi et al. 2018 (§2.5-2.6, Table 3): a fine-tuned CNN plus one-hot metadata inputs, SGD with Nesterov."""

    supports = frozenset({"multiclass", "regression"})

    use_metadata: bool = param(
        True, "feed the task's metadata columns (§2.6, 'Multi'); false: the image-only network (§2.5, '1-Input')"
    )
    backbone: str = param(
        "resnet50", "image CNN, any registered backbone (§2.6: resnet50; Table 4 also inception_v3, vgg19)"
    )
    weights: str = param("imagenet", "imagenet, none (random init) or a path to a state dict (§2.5: ImageNet)")
    finetune_blocks: int = param(
        -1, "residual blocks trained from the top; -1 trains everything (§2.6: all layers)", lambda v: v >= -1, ">= -1"
    )
    metadata_units: int = param(256, "units of the metadata aggregation layer (§2.6: 256)", lambda v: v >= 1, ">= 1")
    joint_units: int = param(1024, "units of the global-features layer (§2.6: 1024)", lambda v: v >= 1, ">= 1")
    dropout: float = param(0.5, "dropout on the concatenation (§2.6: 50 %)", lambda v: 0 <= v < 1, "in [0, 1)")
    bin_width: float = param(
        10.0, "a regression target is learnt as classes of this width (§2.1.2: 10 years)", lambda v: v > 0, "> 0"
    )
    image_size: int = param(
        224,
        "square input size in px (§2.1.2 resizes to 300 px, crops for ResNet-50's 224: open)",
        lambda v: 8 <= v <= MAX_IMAGE_SIZE,
        f"in [8, {MAX_IMAGE_SIZE}]",
    )
    augment: bool = param(True, "random crops and horizontal flips while training (§2.1.2)")
    crop_scale: float = param(
        0.75, "side of the random crop relative to the image (open; 224/300 ≈ 0.75)", lambda v: 0 < v <= 1, "in (0, 1]"
    )
    batch_size: int = param(64, "training batch size (Table 3: 64)", lambda v: v >= 2, ">= 2")
    eval_batch_size: int = param(256, "batch size for validation and prediction", lambda v: v >= 1, ">= 1")
    lr: float = param(1e-3, "SGD learning rate (Table 3: 0.001)", lambda v: v > 0, "> 0")
    momentum: float = param(0.9, "SGD momentum (Table 3: 0.9)", lambda v: 0 <= v < 1, "in [0, 1)")
    nesterov: bool = param(True, "Nesterov momentum (Table 3: true)")
    lr_decay: float = param(
        1e-6, "Keras learning-rate decay: update t uses lr / (1 + lr_decay·t) (Table 3: 1e-6)", lambda v: v >= 0, ">= 0"
    )
    max_epochs: int = param(100, "epochs (Table 3: 100)", lambda v: v >= 1, ">= 1")
    patience: int = param(
        100,
        "early-stopping patience on the validation loss (open: the paper trains all epochs; the best one is kept)",
        lambda v: v >= 1,
        ">= 1",
    )
    min_delta: float = param(
        0.0, "smallest improvement of the validation loss that resets patience", lambda v: v >= 0, ">= 0"
    )
    channels_last: bool = param(True, "channels_last memory format (faster convolutions on CUDA)")

    def check(self, task: TaskSpec) -> None:
        """No metadata columns, an unknown backbone, unusable weights, a bad ``finetune_blocks`` or Nesterov without
        momentum fail before any data is prepared."""
        if self.use_metadata and not task.metadata:  # the task parser keeps targets out of metadata
            raise ArtbenchError(
                f"the multimodal method feeds metadata columns, but task {task.name!r} lists none: add "
                "metadata = [...] to the task file, or run multimodal_image_only (the image-only network)"
            )
        if self.nesterov and self.momentum == 0:
            raise ArtbenchError("nesterov=true needs momentum > 0; set momentum or nesterov=false")
        build_backbone(self.backbone, self.weights, self.finetune_blocks)

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> MultimodalPredictor:
        train, val = data.index("train"), data.index("val")
        bins = {
            m: ValueBins.fit(data.labels[m][train], self.bin_width)
            for m, t in enumerate(data.targets)
            if t.kind == "regression"
        }
        labels = [bins[m].encode(y) if m in bins else y for m, y in enumerate(data.labels)]
        vocabulary = MetadataVocabulary.fit(data.metadata, train) if self.use_metadata else None
        seed_everything(seed)
        model = self.build_network(
            vocabulary.widths if vocabulary else (),
            [bins[m].count if m in bins else t.num_outputs for m, t in enumerate(data.targets)],
            ctx.device,
        )
        codes = torch.from_numpy(vocabulary.encode(data.metadata)).to(ctx.device) if vocabulary else None
        objective = MultimodalObjective(codes)
        known = np.any([code >= 0 for code in labels], axis=0)
        train, val = train[known[train]], val[known[val]]
        check_trainable(train, ctx.description)
        cache = data.images(self.image_size)

        def batches(rng: np.random.Generator) -> Iterator[Batch]:
            drop_last = len(train) > self.batch_size  # a batch of one breaks BatchNorm
            return iterate_batches(
                cache, labels, train, self.batch_size, ctx.device, rng=rng, drop_last=drop_last,
                channels_last=self.channels_last,
            )  # fmt: skip

        def loss(
            model: nn.Module, batch: Batch, generator: torch.Generator
        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            images = flip_and_crop(batch.images, generator, self.crop_scale) if self.augment else batch.images
            return objective(model, images, batch, generator)

        result = train_epochs(
            model,
            DecayingSGD(
                [p for p in model.parameters() if p.requires_grad], self.lr, self.momentum, self.nesterov, self.lr_decay
            ),
            batches,
            loss,
            lambda model: self._validation_loss(model, objective, cache, labels, val, ctx),
            self,
            ctx,
            seed=seed,
            train_rows=train,
            early_stopping=len(val) > 0,
        )
        info: dict[str, Any] = {
            "best_epoch": result.best_epoch,
            "epochs": result.epochs_run,
            "train_seconds": result.seconds,
            "metadata_vocabulary": dict(zip(vocabulary.columns, vocabulary.widths, strict=True)) if vocabulary else {},
            "bins": {data.targets[m].name: dataclasses.asdict(b) for m, b in bins.items()},
        }
        return MultimodalPredictor(self, ctx, model, vocabulary, bins, info)

    def build_network(
        self, metadata_widths: Sequence[int], num_outputs: Sequence[int], device: torch.device
    ) -> MultimodalNet:
        backbone = build_backbone(self.backbone, self.weights, self.finetune_blocks)
        model = MultimodalNet(
            backbone, metadata_widths, num_outputs, self.metadata_units, self.joint_units, self.dropout
        ).to(device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    @torch.no_grad()
    def _validation_loss(
        self,
        model: MultimodalNet,
        objective: MultimodalObjective,
        cache: ImageCache,
        labels: list[np.ndarray],
        rows: np.ndarray,
        ctx: RunContext,
    ) -> float:
        """The training loss over all validation ``rows``: per target the mean cross-entropy, summed."""
        if len(rows) == 0:
            return math.nan
        model.eval()
        sums, counts = np.zeros(len(labels)), np.zeros(len(labels))
        with autocast(ctx.device, ctx.amp):
            for batch in iterate_batches(
                cache, labels, rows, self.eval_batch_size, ctx.device, channels_last=self.channels_last
            ):
                for m, (total, count) in enumerate(objective.terms(model, batch.images, batch)):
                    sums[m] += float(total)
                    counts[m] += float(count)
        return float((sums / np.maximum(counts, 1)).sum())


class MultimodalPredictor(Predictor):
    """The trained network of one seed: class probabilities, or the centre of the most probable bin."""

    def __init__(
        self,
        method: MultimodalMethod,
        ctx: RunContext,
        model: MultimodalNet,
        vocabulary: MetadataVocabulary | None,
        bins: dict[int, ValueBins],
        info: dict[str, Any],
    ) -> None:
        self.method, self.ctx, self.model = method, ctx, model
        self.vocabulary, self.bins, self.info = vocabulary, bins, info

    @torch.no_grad()
    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        device = self.ctx.device
        codes = torch.from_numpy(self.vocabulary.encode(data.metadata)).to(device) if self.vocabulary else None
        objective = MultimodalObjective(codes)
        self.model.eval()
        batches: list[list[np.ndarray]] = []
        cache = data.images(self.method.image_size)
        with autocast(device, self.ctx.amp):
            for batch in iterate_batches(
                cache, [], np.sort(index), self.method.eval_batch_size, device, channels_last=self.method.channels_last
            ):
                logits = self.model(normalise(batch.images), objective.inputs(batch))
                batches.append([torch.softmax(z.float(), dim=1).cpu().numpy() for z in logits])
        rank = np.argsort(np.argsort(index))  # batches come in sorted row order; restore the caller's order
        scores: dict[str, np.ndarray] = {}
        for m, spec in enumerate(data.targets):
            probabilities = (
                np.concatenate([b[m] for b in batches])[rank] if batches else np.zeros((0, spec.num_outputs))
            )
            if m in self.bins:
                scores[spec.name] = self.bins[m].centres[probabilities.argmax(axis=1)]
            else:
                scores[spec.name] = probabilities
        return Predictions(np.asarray(index), scores)


register_method(
    "multimodal",
    MultimodalMethod,
    description="image CNN + one-hot metadata inputs (the task's metadata columns) → 256 ⊕ 2048 → 1024, SGD",
    reference="Belhi et al. 2018, Appl. Sci. 8:1768, §2.6 Fig. 9, Table 3 ('Multi' of Table 5)",
    use_metadata=True,
)
register_method(
    "multimodal_image_only",
    MultimodalMethod,
    description="the same network and training with the image as the only input (single-input baseline)",
    reference="Belhi et al. 2018, Appl. Sci. 8:1768, §2.5, Tables 3-4 ('1-Input' of Table 5)",
    use_metadata=False,
)
