"""Figures of the chapters (matplotlib): sample-complexity sweeps, built on
:mod:`lpbook.sweep` rows, and exact-inference curves from :mod:`lpbook.bp`.

Every plot labels its axes; ``P`` is a number of training samples.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .sweep import PStar, accuracy_matrix


def accuracy_curve(ax: plt.Axes, rows: list, level: int, *, scale: float = 1.0, band: bool = True, **style):
    """Median accuracy of ``level`` over seeds against ``P / scale``, with the interquartile band.

    ``rows`` are the sweep rows of one curve (one learner and grammar).
    Returns the line.
    """
    P, acc = accuracy_matrix(rows, level)
    x = P / scale
    (line,) = ax.semilogx(x, np.median(acc, axis=1), marker="o", ms=3, **style)
    if band and acc.shape[1] > 1:
        low, high = np.percentile(acc, [25, 75], axis=1)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, lw=0)
    return line


def pstar_points(ax: plt.Axes, x, pstars: list[PStar], **style):
    """``P*`` against ``x`` on a log scale, with bootstrap intervals; censored points are left out."""
    kept = [(xi, p) for xi, p in zip(x, pstars) if p.censored is None]
    if not kept:
        return None
    xs = np.array([xi for xi, _ in kept], dtype=float)
    values = np.array([p.value for _, p in kept])
    low = np.array([p.low for _, p in kept])
    high = np.array([p.high for _, p in kept])
    bars = ax.errorbar(xs, values, yerr=[values - low, np.minimum(high, 1e300) - values], fmt="o", capsize=3, **style)
    ax.set_yscale("log")
    return bars


def label_accuracy_axes(ax: plt.Axes, xlabel: str, *, chance: float | None = None) -> None:
    """Axis labels and limits shared by accuracy plots, with an optional chance line."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (median over seeds)")
    ax.set_ylim(0, 1.03)
    if chance is not None:
        ax.axhline(chance, color="0.6", ls=":", lw=1)


def root_accuracy_curves(ax: plt.Axes, fractions, curves: dict, *, chance: float, title: str = "") -> None:
    """Bayes-optimal root accuracy against the fraction of hidden tokens, one line per depth.

    ``curves`` maps a depth ``L`` to its accuracies at ``fractions``
    (e.g. from :func:`lpbook.bp.root_accuracy_curve`); deeper trees are drawn darker.
    """
    shades = plt.cm.viridis(np.linspace(0.85, 0.1, len(curves)))
    for color, (L, accuracy) in zip(shades, sorted(curves.items())):
        ax.plot(fractions, accuracy, "o-", ms=3, color=color, label=f"L = {L}")
    ax.axhline(chance, color="0.6", ls=":", lw=1)
    ax.set_xlabel("fraction of tokens hidden")
    ax.set_ylabel("Bayes-optimal root accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.03)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
