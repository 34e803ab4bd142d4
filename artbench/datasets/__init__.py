"""Dataset modules: each declares its metadata, files and download, and registers a builder on import."""

from artbench.datasets import csv, silknow, silknow_synth  # noqa: F401  (register the datasets)
