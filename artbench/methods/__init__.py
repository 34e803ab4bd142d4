"""The method contract and the registered methods (importing this package registers the built-in families)."""

from artbench.core.predictions import Predictions
from artbench.methods.base import (
    METHODS,
    Method,
    MethodEntry,
    Predictor,
    RunContext,
    all_parameter_names,
    register_method,
)
from artbench.methods.classical import colour_hist_logreg as _colour_hist_logreg  # noqa: F401  (registers)
from artbench.methods.classical import sift_bow_svm as _sift_bow_svm  # noqa: F401  (registers)
from artbench.methods.torch import multimodal as _multimodal  # noqa: F401  (registers)
from artbench.methods.torch import omniart as _omniart  # noqa: F401  (registers)
from artbench.methods.torch import silknet as _silknet  # noqa: F401  (registers)
from artbench.methods.torch import transfer as _transfer  # noqa: F401  (registers)

__all__ = [
    "METHODS",
    "Method",
    "MethodEntry",
    "Predictions",
    "Predictor",
    "RunContext",
    "all_parameter_names",
    "register_method",
]
