"""The contracts every layer builds on: errors, registries, target kinds, tasks and datasets."""
