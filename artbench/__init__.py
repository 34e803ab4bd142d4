"""artbench: a benchmark suite for machine learning on cultural-heritage collections."""

__version__ = "0.1.0"
