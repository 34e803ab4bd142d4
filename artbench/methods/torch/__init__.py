"""Torch method families: backbones, networks, losses, batches, augmentation and the training loop."""
