"""The method contract's smallest example: per target, logistic regression on SilkNet's HSV colour histogram."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from artbench.core.params import param
from artbench.data.task_data import TaskData
from artbench.methods.base import Method, Predictions, Predictor, RunContext, register_method
from artbench.methods.torch.colour import COLOUR_SIZE, colour_feature


@register_method(
    "colour_hist_logreg",
    description="per target: logistic regression on the HSV colour histogram h(x) (a colour-only baseline)",
    reference="features: Dorozynski 2023, §3.2; classifier: scikit-learn LogisticRegression",
)
@dataclass
class ColourHistLogReg(Method):
    supports = frozenset({"multiclass", "multilabel"})

    colour_grid: int = param(8, "bins per axis of the hue-saturation histogram", lambda v: v >= 2, ">= 2")
    C: float = param(1.0, "inverse L2 regularisation strength", lambda v: v > 0, "> 0")
    max_iter: int = param(1000, "solver iterations", lambda v: v >= 1, ">= 1")

    def fit(self, data: TaskData, seed: int, ctx: RunContext) -> Predictor:
        feature = colour_feature(self.colour_grid)
        histograms = data.images(8, [feature]).features[feature.name] / COLOUR_SIZE**2  # shares of the pixels
        train = data.index("train")
        models = {}
        for spec, codes in zip(data.targets, data.labels, strict=True):
            rows = train[spec.known(codes[train])]
            model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed)
            if spec.kind == "multilabel":
                model = OneVsRestClassifier(model)
            models[spec.name] = model.fit(histograms[rows], codes[rows])
        return ColourHistPredictor(models, histograms)


class ColourHistPredictor(Predictor):
    def __init__(self, models: dict, histograms: np.ndarray) -> None:
        self.models, self.histograms, self.info = models, histograms, {}

    def predict(self, data: TaskData, index: np.ndarray) -> Predictions:
        scores = {}
        for spec in data.targets:
            model, x = self.models[spec.name], self.histograms[index]
            if spec.kind == "multilabel":
                scores[spec.name] = model.predict_proba(x)
            else:  # columns of the classes seen in training, placed among all outputs
                scores[spec.name] = np.zeros((len(index), spec.num_outputs))
                scores[spec.name][:, model.classes_] = model.predict_proba(x)
        return Predictions(index, scores)
