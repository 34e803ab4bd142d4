"""SilkNet losses: the focal multi-task loss over targets of any kind (eq. 2-4) and auxiliary clustering (eq. 6-8)."""

from artbench.methods.torch.losses.clustering import (
    colour_similarity_loss,
    self_similarity_loss,
    semantic_similarity_loss,
)
from artbench.methods.torch.losses.focal import focal_multitask_loss, multitask_loss

__all__ = [
    "colour_similarity_loss",
    "focal_multitask_loss",
    "multitask_loss",
    "self_similarity_loss",
    "semantic_similarity_loss",
]
