"""Evaluation: metrics by target kind, aggregation over seeds, significance tests and plots."""
