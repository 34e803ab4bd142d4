"""Results on disk: the run-folder store, the environment record and the papers' reported baselines."""
