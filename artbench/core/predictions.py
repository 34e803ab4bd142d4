"""What a trained method hands back for evaluation: scores per target for some rows of the sample table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Predictions:
    """Scores per target for the rows ``index`` of the sample table.

    Multiclass and multilabel: class probabilities ``[n, num_outputs]`` in the order of ``TargetSpec.class_names``;
    regression: the predicted value ``[n]``.
    """

    index: np.ndarray
    scores: dict[str, np.ndarray]
