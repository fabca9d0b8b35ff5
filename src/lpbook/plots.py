"""Figures of the chapters (matplotlib): sample-complexity sweeps, built on
:mod:`lpbook.storage` rows (or any with ``P``, ``seed`` and ``accuracy``), and exact-inference curves from :mod:`lpbook.bp`.

Every plot labels its axes; ``P`` is a number of training samples.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .pstar import PStar, accuracy_matrix, pstar_ratio


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


def pstar_points(ax: plt.Axes, x, pstars: list[PStar], *, per=None, show_censored: bool = False, **style):
    """``P*`` against ``x`` on a log scale, with bootstrap intervals; censored points are left out unless ``show_censored``.

    ``per`` (a number, or one per point) divides every drawn value, e.g. ``v * m**3`` to draw
    ``P* / (v m^3)``.

    An interval open above (some bootstrap resample never crossed the threshold) ends in an arrow
    pointing up at 3 times the estimate, and one open below (some resample crossed before the
    grid) in an arrow pointing down at a third of it. With ``show_censored``, a ``P*`` that the
    grid censors is drawn as a bound: an open triangle pointing up at the largest ``P`` of its grid
    (``P*`` lies above) or down at the smallest (below), in ``style``'s colour.
    """
    per = np.broadcast_to(np.asarray(1.0 if per is None else per, dtype=float), (len(pstars),))
    if show_censored:
        for side, end, marker in (("above", -1, "^"), ("below", 0, "v")):
            bounds = [(xi, p.P_grid[end] / d) for xi, p, d in zip(x, pstars, per) if p.censored == side]
            if bounds:
                ax.scatter(*zip(*bounds), marker=marker, s=60, facecolors="none",
                           edgecolors=style.get("color", "k"), label=f"{style.get('label', 'P*')}: {side} the grid")
                ax.set_yscale("log")
    kept = [(xi, p, d) for xi, p, d in zip(x, pstars, per) if p.censored is None]
    if not kept:
        return None
    xs = np.array([xi for xi, _, _ in kept], dtype=float)
    values = np.array([p.value / d for _, p, d in kept])
    low = np.array([p.low / d for _, p, d in kept])
    high = np.array([p.high / d for _, p, d in kept])
    open_above, open_below = ~np.isfinite(high), ~(low > 0)
    bars = ax.errorbar(xs, values, yerr=[np.where(open_below, 0, values - low), np.where(open_above, 0, high - values)],
                       fmt="o", capsize=3, **style)
    color = bars[0].get_color()
    for is_open, length, direction in ((open_above, 2 * values, "lolims"), (open_below, values * 2 / 3, "uplims")):
        if is_open.any():  # the open side of an interval: an arrow from the estimate
            ax.errorbar(xs[is_open], values[is_open], yerr=length[is_open], fmt="none", color=color,
                        **{direction: True})
    ax.set_yscale("log")
    return bars


def pstar_against(ax: plt.Axes, x, series: dict, predicted: dict | None = None, *, shift: float = 0.03) -> None:
    """Several ``P*`` curves against one variable: ``series`` maps a label to a list of
    :class:`PStar` (one per ``x``), drawn with :func:`pstar_points`, each shifted by
    ``shift`` times its index so that intervals do not overlap; ``predicted`` maps a
    label to predicted values (one per ``x``), drawn as thin lines of the same colours
    as the series in order."""
    x = np.asarray(x, dtype=float)
    for i, (label, pstars) in enumerate(series.items()):
        pstar_points(ax, x + shift * i, pstars, color=f"C{i}", label=label)
    for i, (label, values) in enumerate((predicted or {}).items()):
        ax.plot(x, values, f"C{i}-" if i % 2 == 0 else f"C{i}--", lw=1, label=label)


def depth_growth(ax: plt.Axes, series: dict, *, factors=(), networks: dict | None = None, colors: dict | None = None,
                 fontsize: float = 13, empty: str = "nothing stored") -> dict:
    """Each learner's ``P*`` over its ``P*`` at its smallest depth, against the levels added, one line per learner.

    ``series`` maps a label to ``(depths, pstars)``, a learner's top-level
    ``P*`` (:class:`PStar`) at each depth, as
    :func:`lpbook.notebook.pstars_by_depth` returns them. Its reference depth
    ``L0`` is the smallest one whose ``P*`` the grid does not censor; the point
    at depth ``L`` is ``P*(L) / P*(L0)`` at ``x = L - L0``, with the 95% interval
    of the ratio of bootstrap draws (:func:`lpbook.pstar.pstar_ratio`), so every
    learner starts at ``(0, 1)``, and a line joins its depths. A depth whose
    ``P*`` is censored is drawn unjoined as an open triangle at the bound its
    grid gives, pointing up when the ratio lies above it. A learner without
    any uncensored ``P*`` is left out.

    ``networks`` (same form as ``series``) are drawn dashed with open markers:
    networks trained once per ``P``, whose ``P*`` has no interval over seeds.
    ``factors`` draws grey dashed guides ``x -> f**x`` ("× f per level"),
    beside the dotted flat line; with nothing to draw, the axes say ``empty``.
    ``colors`` maps labels to colours (default: the cycle, in order). The
    legend goes inside the axes, upper left. Returns ``{label: L0}`` of the
    learners drawn.
    """
    references, x_max = {}, 2.0
    entries = [(label, data, False) for label, data in series.items()]
    entries += [(label, data, True) for label, data in (networks or {}).items()]
    for i, (label, (depths, pstars), is_network) in enumerate(entries):
        kept = [(L, p) for L, p in zip(depths, pstars) if p.censored is None]
        if not kept:
            continue
        L0, reference = kept[0]
        references[label] = L0
        x_max = max(x_max, max(depths) - L0)
        color = (colors or {}).get(label, f"C{i}")
        x, ratio, low, high = (np.array(column, dtype=float)
                               for column in zip(*[(L - L0, *pstar_ratio(p, reference)) for L, p in kept]))
        low, high = np.where(np.isfinite(low), low, ratio), np.where(np.isfinite(high), high, ratio)
        ax.errorbar(x, ratio, yerr=[ratio - low, high - ratio], fmt="o--" if is_network else "o-", color=color,
                    mfc="none" if is_network else color, ms=6, lw=1.8, capsize=3, label=label)
        for L, p in zip(depths, pstars):
            if p.censored is not None and L > L0:
                bound = (p.P_grid[-1] if p.censored == "above" else p.P_grid[0]) / reference.value
                ax.scatter([L - L0], [bound], marker="^" if p.censored == "above" else "v", s=70,
                           facecolors="none", edgecolors=color)
    span = np.linspace(0, x_max, 50)
    ax.axhline(1, color="0.45", ls=":", lw=1.2, label="flat: × 1 per level")
    for shade, f in zip(("0.6", "0.4", "0.2"), sorted(factors)):
        ax.plot(span, float(f) ** span, color=shade, ls="--", lw=1.2, label=f"× {f:g} per level")
    if not references:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", fontsize=fontsize, color="0.3")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel(r"levels added, $L - L_0$", fontsize=fontsize)
    ax.set_ylabel(r"$P^*(L)\,/\,P^*(L_0)$", fontsize=fontsize)
    ax.tick_params(labelsize=fontsize - 1)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] not in references)  # the learners, then the guides
    ax.legend([handles[i] for i in order], [labels[i] for i in order], frameon=False, fontsize=fontsize - 2,
              loc="upper left", handlelength=1.6, labelspacing=0.3, borderaxespad=0.3)
    return references


def label_accuracy_axes(ax: plt.Axes, xlabel: str, *, chance: float | None = None) -> None:
    """Axis labels and limits shared by accuracy plots, with an optional chance line."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (median over seeds)")
    ax.set_ylim(0, 1.03)
    if chance is not None:
        ax.axhline(chance, color="0.6", ls=":", lw=1)


def level_bars(ax: plt.Axes, accuracy: dict, *, chance: float | None = None, colors=None) -> None:
    """Accuracy per level, one group of bars per level and one bar per learner.

    ``accuracy`` maps a learner's name to its accuracies at levels 1, 2, ...
    (one value per level, the same number for every learner); ``colors``, one
    per learner, default ``C0, C1, ...``.
    """
    width = 0.8 / len(accuracy)
    for i, (name, values) in enumerate(accuracy.items()):
        levels = np.arange(1, len(values) + 1)
        color = colors[i] if colors is not None else f"C{i}"
        ax.bar(levels + (i - (len(accuracy) - 1) / 2) * width, values, width, color=color, label=name)
    ax.set_xticks(levels)
    ax.set_xlabel("level")
    ax.set_ylabel("accuracy on held-out samples")
    ax.set_ylim(0, 1.03)
    if chance is not None:
        ax.axhline(chance, color="0.4", ls=":", lw=1, label="chance")
    ax.legend(loc="lower left", fontsize=8)


def pstar_against_depth(ax: plt.Axes, series: dict, guides: dict | None = None, networks: dict | None = None) -> None:
    """``P*`` of the top non-root level against the depth ``L``, one learner per series, its points joined by a line.

    ``series`` maps a label to ``(depths, pstars, color)`` with one
    :class:`PStar` per depth (censored ones are left out);
    ``networks`` (same form) are drawn with open markers and dashed lines;
    ``guides`` maps a label to ``(depths, values, color)``, drawn dotted
    (a predicted scale such as ``v m^3``). The legend sits inside the axes.
    """
    entries = [(label, data, False) for label, data in series.items()]
    entries += [(label, data, True) for label, data in (networks or {}).items()]
    for label, (depths, pstars, color), is_network in entries:
        pstar_points(ax, depths, pstars, color=color, label=label, **({"mfc": "none", "ms": 7} if is_network else {}))
        kept = [(L, p.value) for L, p in zip(depths, pstars) if p.censored is None]
        if len(kept) > 1:
            ax.plot(*zip(*kept), "--" if is_network else "-", color=color, lw=1)
    for label, (depths, values, color) in (guides or {}).items():
        ax.plot(depths, values, ":", color=color, label=label)
    ax.set_yscale("log")
    ax.set_xticks(sorted({L for depths, *_ in [*series.values(), *(networks or {}).values()] for L in depths}))
    ax.set_xlabel("depth L")
    ax.set_ylabel("P* of level L - 1 (training samples)")
    ax.legend(loc="upper left", frameon=False, fontsize=8)


def depth_experiment(series: dict, networks: dict, points: list, *, criterion: float, title: str) -> plt.Figure:
    """The depth experiment in two panels: ``P*`` of the top level against ``L``, and each network's excess loss.

    Left, :func:`pstar_against_depth` of ``series`` and ``networks`` (label ->
    ``(depths, pstars, color)``). Right, the excess loss over the Bayes floor
    of the measured networks ``points`` (objects with ``L``, ``P``, ``seed``
    and ``excess_loss``, such as :class:`lpbook.neural.measure.NetworkPoint`)
    against ``P``, one line per ``(L, seed)``, with the convergence
    ``criterion`` dotted. ``title`` names the grammar family of the left panel.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.3))
    pstar_against_depth(left, series, networks=networks)
    left.legend(loc="upper right", frameon=False, fontsize=8)
    left.set_title(title, fontsize=10)
    for i, (L, seed) in enumerate(sorted({(p.L, p.seed) for p in points})):
        chosen = sorted((p for p in points if (p.L, p.seed) == (L, seed)), key=lambda p: p.P)
        excess_loss_curve(right, [p.P for p in chosen], [p.excess_loss for p in chosen], color=f"C{i}",
                          label=f"L = {L}, seed {seed}")
    right.xaxis.set_minor_formatter(plt.NullFormatter())  # decades only: the sizes are few and far apart
    right.axhline(criterion, color="0.4", ls=":", lw=1, label=f"criterion, {criterion} nats")
    right.set_title("excess loss of every network over the Bayes floor", fontsize=10)
    right.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def level_curves(ax: plt.Axes, P, values: dict, *, scale: dict | None = None, label: str = "", **style) -> dict:
    """One line per level: ``values[level]`` (one value per entry of ``P``) against ``P / scale[level]``, log x.

    For measurements that are not sweep rows, e.g. one network per ``P``.
    Lines are labelled ``f"{label}level {level}"`` and coloured ``C{level - 1}``
    unless ``style`` says otherwise. Returns ``{level: line}``.
    """
    P = np.asarray(P, dtype=float)
    lines = {}
    for level, ys in sorted(values.items()):
        x = P / (1.0 if scale is None else scale[level])
        options = {"marker": "o", "ms": 4, "color": f"C{level - 1}", "label": f"{label}level {level}", **style}
        (lines[level],) = ax.semilogx(x, ys, **options)
    return lines


def excess_loss_curve(ax: plt.Axes, P, excess, *, target: float | None = None, **style):
    """A network's excess test loss over the Bayes floor (nats per hidden token) against ``P``, with ``target``."""
    (line,) = ax.semilogx(np.asarray(P, dtype=float), excess, marker="o", ms=4, **style)
    if target is not None:
        ax.axhline(target, color="0.6", ls=":", lw=1, label=f"target {target}")
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlabel("training samples P")
    ax.set_ylabel("excess loss (nats per hidden token)")
    return line


def floor_lines(ax: plt.Axes, floors: dict, *, minus: float = 0.0) -> None:
    """Horizontal lines at the ladder of Bayes floors ``{k: loss}`` (``lpbook.bp.bayes_masked_token_loss(..., levels=k)``).

    Each line, ``floors[k] - minus``, is labelled by the rules it knows
    ("rules of levels <= k"; the top one "Bayes, every level"), dashed and
    darker for more levels. ``minus`` turns losses into excess losses (pass
    the top floor).
    """
    top = max(floors)
    shades = plt.cm.Greys(np.linspace(0.35, 0.9, len(floors)))
    for shade, k in zip(shades, sorted(floors)):
        label = "Bayes, every level" if k == top else ("token marginals" if k == 0 else f"rules of levels $\\leq$ {k}")
        ax.axhline(floors[k] - minus, color=shade, ls="--" if k < top else "-", lw=1, label=label)


def loss_against_steps(ax: plt.Axes, steps, losses: dict, floors: dict) -> None:
    """Losses (``{label: values}``, nats per hidden token, one value per entry of ``steps``) against steps, over the floors."""
    for label, values in losses.items():
        ax.plot(steps, values, marker="o", ms=3, label=label)
    floor_lines(ax, floors)
    ax.set_xlabel("optimiser steps")
    ax.set_ylabel("masked-token loss (nats per hidden token)")


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
