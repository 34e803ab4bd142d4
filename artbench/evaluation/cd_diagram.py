"""Critical-difference diagram of average ranks with Nemenyi cliques (Demšar 2006, §3.2.2 and Fig. 1)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROW = 0.25  # vertical distance between label rows, in axis units
CLIQUE_ROW = 0.12  # vertical distance between clique bars


def nonsignificant_groups(avg_ranks: Mapping[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal groups of ≥ 2 methods, consecutive by average rank, whose ranks span less than ``cd``.

    Two methods differ significantly when their average ranks differ by at least CD (Demšar 2006, §3.2.2), so no pair
    within a group does; these are the bars of the diagram. Methods are listed best (lowest rank) first.
    """
    ordered = sorted(avg_ranks.items(), key=lambda item: item[1])
    groups: list[tuple[str, ...]] = []
    last_end = 0
    for start, (_, rank) in enumerate(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1][1] - rank < cd:
            end += 1
        if end > start and end > last_end:
            groups.append(tuple(name for name, _ in ordered[start : end + 1]))
            last_end = end
    return groups


def plot_critical_difference(
    avg_ranks: Mapping[str, float], cd: float, path: str | Path, title: str | None = None
) -> Path:
    """Save a Demšar-style CD diagram as PNG and return ``path``.

    The rank axis runs from 1 to k with the best (lowest) ranks on the right; the better half of the methods is
    labelled on the right, the other half on the left; thick bars join methods that are not significantly different
    (:func:`nonsignificant_groups`); the CD interval is drawn above the axis. Names are plain text (no mathtext).
    """
    with plt.rc_context({"text.parse_math": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        return _plot(avg_ranks, cd, Path(path), title)


def _plot(avg_ranks: Mapping[str, float], cd: float, path: Path, title: str | None) -> Path:
    ordered = sorted(avg_ranks.items(), key=lambda item: item[1])
    k = len(ordered)
    low, high = 1, max(k, math.ceil(max(rank for _, rank in ordered)))
    groups = nonsignificant_groups(avg_ranks, cd)
    right = ordered[: (k + 1) // 2]  # best ranks: top row is the rightmost method
    left = ordered[(k + 1) // 2 :][::-1]  # worst ranks: top row is the leftmost method
    first_row = -(0.25 + CLIQUE_ROW * len(groups))
    bottom = first_row - ROW * max(len(right), len(left))

    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.9 * -bottom))
    ax.set_xlim(high + 0.05, low - 0.05)
    ax.set_ylim(bottom - 0.1, 0.75)
    ax.axis("off")
    ax.hlines(0, low, high, color="black", lw=1)
    for tick in range(low, high + 1):
        ax.vlines(tick, 0, 0.06, color="black", lw=1)
        ax.text(tick, 0.1, str(tick), ha="center", va="bottom", fontsize=9)
    ax.hlines(0.5, high, high - cd, color="black", lw=1)
    ax.vlines([high, high - cd], 0.46, 0.54, color="black", lw=1)
    ax.text(high - cd / 2, 0.56, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)

    for side, edge, align in ((right, low - 0.1, "left"), (left, high + 0.1, "right")):
        for row, (name, rank) in enumerate(side):
            y = first_row - ROW * row
            ax.plot([rank, rank, edge], [0, y, y], color="black", lw=0.8, clip_on=False)
            ax.text(edge, y, f"{name} ({rank:.2f})", ha=align, va="center", fontsize=9, clip_on=False)
    for i, group in enumerate(groups):
        ranks = [avg_ranks[name] for name in group]
        y = -(0.15 + CLIQUE_ROW * i)
        ax.hlines(y, min(ranks) - 0.03, max(ranks) + 0.03, color="black", lw=3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
