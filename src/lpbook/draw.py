"""Drawings of the RHM tree (matplotlib).

Level 0 (the tokens) is at the bottom, the root at the top. A node
``(l, p)`` sits above the middle of the tokens it spans.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .tree import Node, children


def node_xy(node: Node, s: int) -> tuple[float, float]:
    """Drawing coordinates of ``node``: tokens at ``x = 0 .. s**L - 1``, level ``l`` at ``y = l``."""
    width = s**node.level
    return node.pos * width + (width - 1) / 2, float(node.level)


def draw_tree(
    L: int,
    s: int,
    symbols: Sequence[Sequence[int]] | None = None,
    highlight: Sequence[tuple[Sequence[Node], str, str]] = (),
    ax: plt.Axes | None = None,
    node_size: float = 0.32,
) -> plt.Axes:
    """Draw the depth-``L`` tree with branching ``s``.

    Parameters
    ----------
    symbols : optional
        ``symbols[l][p]`` is written in node ``(l, p)``; for example
        ``[level[row] for level in sample.levels]`` draws one derivation.
    highlight : sequence of ``(nodes, colour, label)``
        Fills ``nodes`` with ``colour`` and adds ``label`` to the legend.
    ax : optional
        Axes to draw on (a new figure is made otherwise).
    node_size : float
        Node radius in token-spacing units.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(min(1.0 + 0.45 * s**L, 14), 0.9 * (L + 1)))
    fill = {}
    for nodes, colour, label in highlight:
        for node in nodes:
            fill[Node(*node)] = colour
        ax.scatter([], [], s=120, color=colour, label=label)
    for level in range(L + 1):
        for pos in range(s ** (L - level)):
            node = Node(level, pos)
            x, y = node_xy(node, s)
            if level > 0:
                for child in children(node, s):
                    cx, cy = node_xy(child, s)
                    ax.plot([x, cx], [y, cy], color="0.6", lw=1, zorder=1)
            ax.add_patch(
                plt.Circle((x, y), node_size, facecolor=fill.get(node, "white"), edgecolor="0.25", lw=1, zorder=2)
            )
            if symbols is not None:
                ax.text(x, y, str(int(symbols[level][pos])), ha="center", va="center", fontsize=9, zorder=3)
    ax.set_xlim(-0.7, s**L - 0.3)
    ax.set_ylim(-0.6, L + 0.6)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks(np.arange(L + 1))
    ax.set_yticklabels([f"level {l}" + (" (tokens)" if l == 0 else " (root)" if l == L else "") for l in range(L + 1)])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    if highlight:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
    return ax
