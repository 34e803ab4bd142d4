"""Dataset modules: each declares its metadata, files and download, and registers a builder on import."""

from artbench.datasets import csv, imet, omniart, rijks14, silknow, silknow_synth, wikiart  # noqa: F401  (register the datasets)
