"""SilkNet losses: focal multi-task classification (eq. 2-4) and auxiliary clustering (eq. 6-8)."""

from artbench.losses.clustering import colour_similarity_loss, self_similarity_loss, semantic_similarity_loss
from artbench.losses.multitask import focal_multitask_loss

__all__ = [
    "colour_similarity_loss",
    "focal_multitask_loss",
    "self_similarity_loss",
    "semantic_similarity_loss",
]
