"""Methods that are not neural networks."""
