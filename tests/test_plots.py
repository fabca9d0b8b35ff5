"""Figure helpers: what they draw for edge cases of the data."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lpbook.plots import pstar_points  # noqa: E402
from lpbook.sweep import PStar  # noqa: E402


def _pstar(value, low, high, censored=None):
    one = np.array([1.0])
    return PStar(value=value, low=low, high=high, censored=censored, level=1, threshold=0.9, confidence=0.9,
                 n_seeds=3, P_grid=one, median=one, boot=one, missing=())


def test_pstar_points_draws_open_intervals_as_arrows_without_warnings():
    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the overflow; not third-party deprecations
        pstar_points(ax, [1, 2, 3, 4], [_pstar(100, 50, 200), _pstar(300, 0, 900), _pstar(1000, 500, np.inf),
                                        _pstar(np.nan, np.nan, np.nan, censored="above")])
        fig.canvas.draw()
    bars = ax.containers
    assert len(bars) == 3  # the closed bars, then one arrow set per open side
    segments = [b.lines[2][0].get_segments() for b in bars]  # one vertical segment per point drawn
    assert [len(s) for s in segments] == [3, 1, 1]  # the censored point is left out
    (above,), (below,) = segments[1], segments[2]
    assert above[0][0] == 3 and above[1][1] == 3000  # open above: up from 1,000 to 3 times it
    assert below[0][0] == 2 and below[0][1] == 100  # open below: down from 300 to a third of it
    low, high = ax.get_ylim()
    assert low > 0 and high < 1e4  # the axis follows the data, not the infinite bound
    plt.close(fig)


def test_pstar_points_divides_values_intervals_and_bounds_by_per():
    fig, ax = plt.subplots()
    bars = pstar_points(ax, [1, 2], [_pstar(100, 50, 200), _pstar(400, 300, 800)], per=[10, 100])
    (segments,) = [bars.lines[2][0].get_segments()]
    assert [(seg[0][1], seg[1][1]) for seg in segments] == [(5, 20), (3, 8)]  # the intervals, divided point by point
    assert list(bars.lines[0].get_ydata()) == [10, 4]
    grid = np.array([100.0, 1000.0])
    above = PStar(value=np.nan, low=np.nan, high=np.nan, censored="above", level=1, threshold=0.9, confidence=0.9,
                  n_seeds=1, P_grid=grid, median=np.array([0.5, 0.6]), boot=np.array([0.5]), missing=())
    pstar_points(ax, [3], [above], per=4, show_censored=True, label="net")
    assert ax.collections[-1].get_offsets().tolist() == [[3.0, 250.0]]
    plt.close(fig)


def test_floor_lines_label_the_ladder_and_subtract_the_top():
    from lpbook.plots import floor_lines, loss_against_steps

    fig, ax = plt.subplots()
    floor_lines(ax, {1: 2.6, 2: 2.3, 3: 2.2}, minus=2.2)
    lines = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
    assert lines == {"rules of levels $\\leq$ 1": pytest.approx(0.4), "rules of levels $\\leq$ 2": pytest.approx(0.1),
                     "Bayes, every level": 0.0}
    fig, ax = plt.subplots()
    loss_against_steps(ax, [10, 20], {"validation": [2.5, 2.4]}, {0: 2.7, 2: 2.2})
    assert [line.get_label() for line in ax.get_lines()] == ["validation", "token marginals", "Bayes, every level"]
    assert ax.get_xlabel() == "optimiser steps"


def test_pstar_points_draws_censored_points_as_bounds_only_when_asked():
    grid = np.array([100.0, 1000.0])

    def censored(side):
        return PStar(value=np.nan, low=np.nan, high=np.nan, censored=side, level=1, threshold=0.9, confidence=0.9,
                     n_seeds=1, P_grid=grid, median=np.array([0.5, 0.6]), boot=np.array([0.5]), missing=())

    fig, ax = plt.subplots()
    assert pstar_points(ax, [3, 4], [censored("above"), censored("below")], color="C1") is None
    assert not ax.collections
    pstar_points(ax, [3, 4], [censored("above"), censored("below")], show_censored=True, color="C1", label="net")
    offsets = {c.get_label(): c.get_offsets().tolist() for c in ax.collections}
    assert offsets == {"net: above the grid": [[3.0, 1000.0]], "net: below the grid": [[4.0, 100.0]]}
    assert ax.get_yscale() == "log"


def test_depth_growth_starts_every_learner_at_one_and_marks_censored_depths():
    from lpbook.plots import depth_growth

    grid = np.array([100.0, 10_000.0])
    boot = np.full(50, 1.0)

    def pstar(value, censored=None):
        return PStar(value=value, low=value / 2, high=value * 2, censored=censored, level=1, threshold=0.9,
                     confidence=0.95, n_seeds=3, P_grid=grid, median=np.array([0.5, 0.6]), boot=boot * value,
                     missing=())

    fig, ax = plt.subplots()
    drawn = depth_growth(
        ax,
        {"flat": ([3, 4, 5], [pstar(500), pstar(510), pstar(490)]),
         "grows": ([2, 3, 4], [pstar(np.nan, "below"), pstar(200), pstar(np.nan, "above")]),
         "never": ([3], [pstar(np.nan, "above")])},
        factors=(3,), networks={"network": ([3, 4], [pstar(400), pstar(1200)])})
    assert drawn == {"flat": 3, "grows": 3, "network": 3}  # the reference is the first uncensored depth
    lines = {bars.get_label(): bars.lines[0] for bars in ax.containers}  # each learner's joined points
    lines.update({line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")})
    assert list(lines["flat"].get_xdata()) == [0, 1, 2] and lines["flat"].get_ydata()[0] == 1
    assert list(lines["network"].get_ydata()) == [1, 3] and lines["network"].get_linestyle() == "--"
    assert list(lines["grows"].get_xdata()) == [0]  # its censored depths are not joined
    (above,) = [c for c in ax.collections if c.get_offsets().tolist() == [[1.0, 50.0]]]  # 10,000 / 200, one level up
    guide = lines["× 3 per level"]
    assert np.allclose(guide.get_ydata(), 3.0 ** guide.get_xdata()) and guide.get_xdata()[-1] == 2
    assert "flat: × 1 per level" in lines and ax.get_yscale() == "log"
    assert ax.get_legend() is not None
    plt.close(fig)

    fig, ax = plt.subplots()
    assert depth_growth(ax, {}, factors=(2,), empty="not stored") == {}
    assert [t.get_text() for t in ax.texts] == ["not stored"]
    plt.close(fig)


def test_level_bars_draws_one_bar_per_learner_and_level():
    from lpbook.plots import level_bars

    fig, ax = plt.subplots()
    level_bars(ax, {"ILC": [1.0, 0.98, 0.97], "TokenClustering": [1.0, 0.6, 0.2]}, chance=0.1, colors=("C0", "C3"))
    heights = [round(p.get_height(), 2) for p in ax.patches]
    assert heights == [1.0, 0.98, 0.97, 1.0, 0.6, 0.2]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chance", "ILC", "TokenClustering"]
    plt.close(fig)


def test_pstar_against_depth_joins_each_learner_and_leaves_out_censored_points():
    from lpbook.plots import pstar_against_depth

    fig, ax = plt.subplots()
    censored = _pstar(np.nan, np.nan, np.nan, censored="above")
    pstar_against_depth(ax, {"ILC": ([3, 4, 5], [_pstar(100, 80, 120), _pstar(110, 90, 130), censored], "C0")},
                        guides={"v m^3": ([3, 4, 5], [50, 50, 50], "C0")})
    joined = [line for line in ax.get_lines() if line.get_linestyle() == "-" and len(line.get_xdata()) > 1]
    assert [list(line.get_xdata()) for line in joined] == [[3, 4]]
    assert list(ax.get_xticks()) == [3, 4, 5] and ax.get_yscale() == "log"
    plt.close(fig)


def test_pstar_against_depth_draws_networks_open_and_dashed():
    from lpbook.plots import pstar_against_depth

    fig, ax = plt.subplots()
    pstar_against_depth(ax, {"ILC": ([3, 4], [_pstar(100, 80, 120), _pstar(110, 90, 130)], "C0")},
                        networks={"network": ([3, 5], [_pstar(1000, 800, 1200), _pstar(9000, 8000, 9900)], "C3")})
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--" and len(line.get_xdata()) > 1]
    assert [list(line.get_xdata()) for line in dashed] == [[3, 5]]
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert [line.get_markerfacecolor() for line in markers][-1] == "none"
    assert list(ax.get_xticks()) == [3, 4, 5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ILC", "network"]
    plt.close(fig)


def test_depth_experiment_draws_both_panels_with_one_line_per_depth_and_seed():
    from types import SimpleNamespace

    from lpbook.plots import depth_experiment
    from lpbook.pstar import estimate_pstar

    rows = [{"P": P, "seed": s, "accuracy": {2: a}} for s in (0, 1) for P, a in ((100, 0.2), (1000, 0.95))]
    pstar = estimate_pstar(rows, 2)
    points = [SimpleNamespace(L=L, P=P, seed=s, excess_loss=0.1 / P) for L in (3, 4) for s in (0, 1) for P in (10, 100)]
    fig = depth_experiment({"ILC": ([3, 4], [pstar, pstar], "C0")}, {"net": ([3], [pstar], "C1")}, points,
                           criterion=0.05, title="family")
    left, right = fig.axes
    assert left.get_title() == "family" and left.get_yscale() == "log"
    labels = [line.get_label() for line in right.get_lines()]
    assert [x for x in labels if x.startswith("L =")] == ["L = 3, seed 0", "L = 3, seed 1", "L = 4, seed 0",
                                                          "L = 4, seed 1"]
    assert "criterion, 0.05 nats" in labels
    plt.close(fig)
