"""Figure helpers: what they draw for edge cases of the data."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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
