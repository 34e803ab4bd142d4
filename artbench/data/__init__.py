"""From a task to training-ready data: encoded labels by kind, splits, class statistics and the image cache."""
