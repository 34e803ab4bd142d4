"""Sample tables, dataset adapters, splits, image cache and class statistics."""

from artbench.data import silknow  # noqa: F401  (registers the ``silknow`` dataset)
