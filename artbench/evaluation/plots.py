"""Plots people would rather look at than read: row-normalised confusion matrices."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    """Save a row-normalised confusion matrix (recall per true class) with counts as PNG.

    Labels are plain text (a class called ``$x$`` is not maths) and a glyph missing from the font is drawn as a
    box without a warning per character.
    """
    with plt.rc_context({"text.parse_math": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        return _plot_confusion(matrix, labels, title, path)


def _plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    cm = np.asarray(matrix, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = max(4.0, 0.35 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        int(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, label="recall")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
