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


MAX_LABELLED_CLASSES = 40
"""Above this many classes the matrix is drawn as an image with every n-th label, fast and still readable."""


def _plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    cm = np.asarray(matrix, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(labels)
    size = max(4.0, 0.35 * min(k, MAX_LABELLED_CLASSES) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    step = max(1, int(np.ceil(k / MAX_LABELLED_CLASSES)))
    ticks = list(range(0, k, step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=7)
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
    if k <= MAX_LABELLED_CLASSES:
        fig.tight_layout()
    else:  # tight_layout measures every label; fixed margins are as good here and much faster
        fig.subplots_adjust(left=0.25, bottom=0.25, right=0.95, top=0.92)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
