"""SIFT bag of visual words + RBF SVM, one-vs-rest per target: the classical model of the iMet report (seeds/002).

The report (§2.1, Table 1) describes: keypoint descriptors of the training images clustered into a vocabulary of
500, 1000 or 2500 visual words; an image represented by the counts of its words (§2.1.1); an SVM with the RBF kernel
(fixed), one-vs-rest "because of a big number of classes", C ∈ {0.1, 1, 10} and gamma ∈ {auto, scale} chosen by grid
search (§2.1.2); no handling of the class imbalance in this model (§2.1.3). Table 1's best settings: 500 words C = 10,
1000 words C = 10, 2500 words C = 1, all with gamma = scale.

What the report leaves open, and what artbench does (see :mod:`artbench.methods.classical.features` for the words):

* descriptor: OpenCV SIFT on the greyscale image of the prepared cache at ``image_size`` px (the report names no
  detector or image size); histograms are L1-normalised, so images with more keypoints are not favoured;
* grid search: on the task's validation split (not cross-validation), scored with the task-appropriate score:
  macro-F1 over the foreground classes present in the validation split for a multiclass target (what ``f1_macro``
  reports), macro average precision over the classes with a positive and a negative validation sample for a
  multilabel target (``map_macro``: threshold-free, so the choice of (C, gamma) does not depend on a threshold);
  ties go to the earlier grid point;
* no refit on train + validation: the chosen model is the one trained on the training split. The runner chooses
  multilabel thresholds on validation scores, which must come from a model that has not seen those rows;
* the kernel is computed once per (target, gamma) and given to scikit-learn's SVC as a precomputed kernel: the same
  model as ``SVC(kernel="rbf", gamma=...)`` (gamma ``scale`` = 1 / (V · Var(X_train)), ``auto`` = 1 / V), without
  recomputing the kernel for every class and C;
* multiclass scores: a softmax over the one-vs-rest decision values (argmax = the one-vs-rest decision; classes
  absent from the training rows score 0); the background class, where a target has one, is trained as a class;
* multilabel targets: one binary SVM per class over the rows whose label is known; each class gets its own decision
  threshold on the validation decision values (the one maximising that class's F_beta, ``threshold_beta``), an
  improvement the report's conclusion (§5) names but did not try. The scores are ``sigmoid(decision - threshold)``,
  so 0.5 is each class's own threshold; the runner's global threshold, chosen on validation for each thresholded
  metric, then starts from per-class calibrated scores. A class without a positive validation sample keeps the
  SVM's own boundary (decision 0);
* regression targets are not supported (the report has none).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import average_precision_score, f1_score
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.svm import SVC

from artbench.core.errors import ArtbenchError
from artbench.core.params import param
from artbench.core.targets import TargetSpec
from artbench.core.task import TaskSpec
from artbench.data.task_data import TaskData
from artbench.methods.base import Method, Predictions, Predictor, RunContext, register_method
from artbench.methods.classical.features import sift_descriptors, visual_vocabulary

GAMMAS = ("scale", "auto")
REFERENCE = "Artwork recognition (iMet Collection 2019), FEUP VCOM report (seeds/002)"
KERNEL_CHUNK = 4096
"""Rows whose kernel against the training rows is computed at once when predicting."""


def _gamma_value(gamma: str, x_train: np.ndarray) -> float:
    """scikit-learn's SVC gamma: ``scale`` = 1 / (n_features · X.var()), ``auto`` = 1 / n_features."""
    variance = float(x_train.var()) if gamma == "scale" else 1.0
    return 1.0 / (x_train.shape[1] * variance) if variance > 0 else 1.0


@dataclass
class BinarySvm:
    """One one-vs-rest SVM on a precomputed kernel, or a constant decision where its rows hold one class only."""

    model: SVC | None
    constant: float = 0.0

    def decision(self, kernel: np.ndarray) -> np.ndarray:
        return self.model.decision_function(kernel) if self.model is not None else np.full(len(kernel), self.constant)


def _decisions(svms: list[BinarySvm], kernel: np.ndarray) -> np.ndarray:
    """Decision values ``[n, classes]`` of one-vs-rest SVMs for the rows of a kernel against their training rows."""
    if not len(kernel):
        return np.zeros((0, len(svms)))
    return np.stack([svm.decision(kernel) for svm in svms], axis=1)


def _fit_binary(kernel: np.ndarray, positive: np.ndarray, C: float) -> BinarySvm:
    if positive.all() or not positive.any():
        return BinarySvm(None, 1.0 if positive.all() else -1.0)
    return BinarySvm(SVC(kernel="precomputed", C=C).fit(kernel, positive))


def _validation_score(spec: TargetSpec, truth: np.ndarray, decisions: np.ndarray, classes: np.ndarray) -> float:
    """Multiclass: macro-F1 over the foreground classes present in ``truth``; multilabel: macro AP over the classes
    with a positive and a negative row (NaN where no class qualifies)."""
    if spec.kind == "multiclass":
        foreground = [c for c in np.unique(truth) if c < spec.num_classes]
        if not foreground:
            return math.nan
        predicted = classes[decisions.argmax(axis=1)]
        return float(f1_score(truth, predicted, labels=foreground, average="macro", zero_division=0))
    scored = [k for k in range(truth.shape[1]) if 0 < truth[:, k].sum() < len(truth)]
    if not scored:
        return math.nan
    return float(np.mean([average_precision_score(truth[:, k], decisions[:, k]) for k in scored]))


def best_threshold(positive: np.ndarray, decision: np.ndarray, beta: float) -> float:
    """The decision threshold maximising F_beta of one class on these rows: midway between the lowest score
    predicted positive and the next lower score; 0 (the SVM's boundary) where there is no positive row."""
    total = int(positive.sum())
    if total == 0:
        return 0.0
    order = np.argsort(-decision, kind="stable")
    scores, hits = decision[order], positive[order].astype(float)
    tp = np.cumsum(hits)
    predicted = np.arange(1, len(scores) + 1)
    b2 = beta * beta
    f_beta = (1 + b2) * tp / (b2 * total + predicted)
    cut = np.r_[scores[:-1] > scores[1:], True]  # a threshold can only fall between distinct scores
    best = int(np.flatnonzero(cut)[np.argmax(f_beta[cut])])
    return float((scores[best] + scores[best + 1]) / 2) if best + 1 < len(scores) else float(scores[best] - 1.0)


@dataclass
class TargetModel:
    """A target's one-vs-rest SVMs with the chosen gamma, the training rows their kernel is taken against, and the
    per-class thresholds of a multilabel target."""

    spec: TargetSpec
    rows: np.ndarray
    gamma: float
    classes: np.ndarray
    """Multiclass: the class codes of the SVMs; multilabel: 0..K-1."""
    svms: list[BinarySvm]
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def decisions(self, histograms: np.ndarray, index: np.ndarray) -> np.ndarray:
        train = np.asarray(histograms[self.rows], np.float64)
        out = np.empty((len(index), len(self.svms)))
        for start in range(0, len(index), KERNEL_CHUNK):
            rows = index[start : start + KERNEL_CHUNK]
            kernel = rbf_kernel(np.asarray(histograms[rows], np.float64), train, gamma=self.gamma)
            out[start : start + len(rows)] = _decisions(self.svms, kernel)
        return out

    def scores(self, histograms: np.ndarray, index: np.ndarray) -> np.ndarray:
        decisions = self.decisions(histograms, index)
        if self.spec.kind == "multilabel":
            return 1.0 / (1.0 + np.exp(-(decisions - self.thresholds)))
        shifted = np.exp(decisions - decisions.max(axis=1, keepdims=True))
        scores = np.zeros((len(index), self.spec.num_outputs))
        scores[:, self.classes] = shifted / shifted.sum(axis=1, keepdims=True)
        return scores


@register_method(
    "sift_bow_svm",
    description="SIFT bag of visual words (k-means vocabulary) + RBF SVM one-vs-rest per target, C and gamma "
    "chosen on validation",
    reference=f"{REFERENCE}, §2.1 and Table 1; OpenCV SIFT",
)
@dataclass
class SiftBowSvm(Method):
    supports = frozenset({"multiclass", "multilabel"})

    image_size: int = param(
        224, "image side in px that SIFT runs on (the prepared cache's size)", lambda v: v >= 16, ">= 16"
    )
    vocabulary_size: int = param(
        1000, "visual words V (k-means clusters); the report: 500, 1000, 2500", lambda v: v >= 2, ">= 2"
    )
    vocabulary_sample: int = param(
        100_000, "at most this many training descriptors, drawn at random, fit the vocabulary", lambda v: v >= 2, ">= 2"
    )
    max_keypoints: int = param(0, "SIFT keypoints kept per image, strongest first (0 = all)", lambda v: v >= 0, ">= 0")
    C_grid: tuple[float, ...] = param(
        (0.1, 1.0, 10.0), "SVM C values searched on validation", lambda v: len(v) > 0 and min(v) > 0, "non-empty, > 0"
    )
    gamma_grid: tuple[str, ...] = param(
        GAMMAS,
        "RBF gamma values searched on validation",
        lambda v: len(v) > 0 and set(v) <= set(GAMMAS),
        "non-empty, each scale or auto",
    )
    threshold_beta: float = param(
        1.0, "multilabel: per-class thresholds maximise F_beta on validation", lambda v: v > 0, "> 0"
    )

    def check(self, task: TaskSpec) -> None:
        if self.vocabulary_size > self.vocabulary_sample:
            raise ArtbenchError(
                f"vocabulary_size={self.vocabulary_size} is larger than vocabulary_sample={self.vocabulary_sample}, "
                "the most descriptors the vocabulary is fitted on; lower vocabulary_size or raise vocabulary_sample"
            )

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> Predictor:
        clock = time.perf_counter()
        cache = data.images(self.image_size)
        timings = {"images": time.perf_counter() - clock}
        clock = time.perf_counter()
        descriptors = sift_descriptors(data.dataset, cache.images, self.image_size, self.max_keypoints)
        timings["descriptors"] = time.perf_counter() - clock
        clock = time.perf_counter()
        # rows whose image was missing or unreadable are blank in the cache: they neither train nor validate
        train, val = (np.setdiff1d(data.index(split), cache.skipped) for split in ("train", "val"))
        vocabulary = visual_vocabulary(descriptors, train, self.vocabulary_size, self.vocabulary_sample, seed)
        histograms = np.asarray(vocabulary.histograms)
        timings["vocabulary"] = time.perf_counter() - clock
        clock = time.perf_counter()
        models, chosen = {}, {}
        for spec, codes in zip(data.targets, data.labels, strict=True):
            models[spec.name], chosen[spec.name] = self._fit_target(spec, codes, histograms, train, val)
        timings["svm"] = time.perf_counter() - clock
        counts = descriptors.counts
        info = {
            "vocabulary_size": self.vocabulary_size,
            "descriptors": {
                "total": int(counts.sum()),
                "per_image_mean": float(counts.mean()) if len(counts) else 0.0,
                "images_without_descriptors": int((counts == 0).sum()),
                "images_skipped": len(cache.skipped),
                "train_sampled_for_vocabulary": vocabulary.sampled,
            },
            "cache": {
                "descriptors": "loaded" if descriptors.loaded else "computed",
                "vocabulary": "loaded" if vocabulary.loaded else "computed",
            },
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "svm": chosen,
        }
        return SiftBowSvmPredictor(models, histograms, info)

    def _fit_target(
        self, spec: TargetSpec, codes: np.ndarray, histograms: np.ndarray, train: np.ndarray, val: np.ndarray
    ) -> tuple[TargetModel, dict[str, Any]]:
        """Grid search of (C, gamma) on the validation rows with a known label; the best model is kept."""
        rows, val_rows = train[spec.known(codes[train])], val[spec.known(codes[val])]
        x_train, x_val = np.asarray(histograms[rows], np.float64), np.asarray(histograms[val_rows], np.float64)
        truth = codes[val_rows]
        if spec.kind == "multiclass":
            classes = np.unique(codes[rows])
            positives = [codes[rows] == c for c in classes]
        else:
            classes = np.arange(spec.num_classes)
            positives = [codes[rows, k] == 1 for k in classes]
        grid: dict[str, float | None] = {}
        best: dict[str, Any] = {}
        for gamma in self.gamma_grid:
            value = _gamma_value(gamma, x_train)
            kernel, val_kernel = rbf_kernel(x_train, gamma=value), rbf_kernel(x_val, x_train, gamma=value)
            for C in self.C_grid:
                svms = Parallel(n_jobs=-1, prefer="threads")(delayed(_fit_binary)(kernel, p, C) for p in positives)
                decisions = _decisions(svms, val_kernel)
                score = _validation_score(spec, truth, decisions, classes) if len(val_rows) else math.nan
                grid[f"C={C:g},gamma={gamma}"] = None if math.isnan(score) else round(score, 6)
                if not best or (not math.isnan(score) and (math.isnan(best["score"]) or score > best["score"])):
                    model = TargetModel(spec, rows, value, classes, svms)
                    best = {"score": score, "model": model, "decisions": decisions, "C": C, "gamma": gamma}
        model, decisions = best["model"], best["decisions"]
        chosen: dict[str, Any] = {
            "C": best["C"],
            "gamma": best["gamma"],
            "gamma_value": model.gamma,
            "selected_by": "f1_macro" if spec.kind == "multiclass" else "map_macro",
            "validation_score": None if math.isnan(best["score"]) else best["score"],
            "grid": grid,
            "train_samples": len(rows),
            "svms_trained": int(sum(svm.model is not None for svm in model.svms)),
        }
        if spec.kind == "multilabel":  # a class without an SVM (one label value in training) keeps threshold 0
            model.thresholds = np.array(
                [
                    best_threshold(truth[:, k] == 1, decisions[:, k], self.threshold_beta)
                    if svm.model is not None
                    else 0.0
                    for k, svm in zip(classes, model.svms, strict=True)
                ]
            )
            chosen["thresholds"] = [round(float(t), 6) for t in model.thresholds]
        return model, chosen


class SiftBowSvmPredictor(Predictor):
    def __init__(self, models: dict[str, TargetModel], histograms: np.ndarray, info: dict[str, Any]) -> None:
        self.models, self.histograms, self.info = models, histograms, info

    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        return Predictions(index, {name: m.scores(self.histograms, index) for name, m in self.models.items()})


for _size in (500, 1000, 2500):
    register_method(
        f"sift_bow_svm_{_size}",
        SiftBowSvm,
        description=f"sift_bow_svm with the report's {_size}-word vocabulary (Table 1)",
        reference=f"{REFERENCE}, §2.1.1 and Table 1",
        vocabulary_size=_size,
    )
