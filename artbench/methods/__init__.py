"""Method registry and the built-in methods."""

from artbench.methods import silknet as _silknet  # noqa: F401  (registers the built-in methods)
from artbench.methods.registry import METHODS, MethodSpec, register_method

__all__ = ["METHODS", "MethodSpec", "register_method"]
