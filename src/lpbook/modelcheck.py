"""Predicted against measured ``P*``: the greedy-choice model's constants fitted on some sweeps, tested on others.

:func:`measured_points` reads the ``P*`` of one level from a sweep's rows,
one :class:`MeasuredPoint` per grammar setting and threshold.
:class:`PStarTest` holds such points with the exact statistics of their
grammars (the sweep's seeds are the grammars' seeds); it fits the floor and
the spread of :func:`lpbook.theory.predicted_pstar` on the points a rule
selects (:func:`lpbook.theory.fit_choice`), and compares any constants'
prediction with the measurements (:class:`Comparison`), in or out of sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ._validate import check_int
from .grammar import RHM
from .pstar import PStar, estimate_pstar, group_results
from .theory import FIT_FLOORS, FIT_SPREADS, ChoiceFit, LevelStatistics, choice_pstars, fit_choice, level_statistics
from .theory import predicted_pstar
from .tree import cousin_targets


@dataclass(frozen=True)
class MeasuredPoint:
    """The measured ``P*`` of ``level`` at ``threshold`` for the grammars ``RHM(v, m, s, L, seed)``, seeds ``seeds``.

    ``pstar`` is :func:`lpbook.pstar.estimate_pstar` over those seeds (the
    median accuracy over them, with a bootstrap interval); ``learner`` names
    the sweep's learner.
    """

    learner: str
    v: int
    m: int
    s: int
    L: int
    level: int
    threshold: float
    seeds: tuple
    pstar: PStar

    @property
    def grammar(self) -> tuple:
        """``(v, m, s, L)``."""
        return self.v, self.m, self.s, self.L


def measured_points(rows: Iterable, thresholds=(0.9, 0.99), level: int | None = None) -> list[MeasuredPoint]:
    """One :class:`MeasuredPoint` per setting and threshold of ``rows`` (as :func:`lpbook.storage.load_results` gives).

    ``level`` defaults to ``L - 1``, the top non-root level, of each setting.
    Settings come in the order of :func:`lpbook.pstar.group_results`, thresholds inside each.
    """
    out = []
    for setting, group in group_results(rows).items():
        fields = dict(setting)
        v, m, s, L = (fields[name] for name in ("v", "m", "s", "L"))
        lev = L - 1 if level is None else check_int("level", level, minimum=1)
        seeds = tuple(sorted({row["seed"] for row in group}))
        for threshold in thresholds:
            out.append(MeasuredPoint(fields["learner"], v, m, s, L, lev, float(threshold), seeds,
                                     estimate_pstar(group, lev, threshold=threshold)))
    return out


@dataclass(frozen=True)
class Comparison:
    """A measured point against the model's ``P*``: the median over the point's grammars of :func:`predicted_pstar`."""

    point: MeasuredPoint
    predicted: float

    @property
    def ratio(self) -> float:
        """Measured over predicted ``P*`` (NaN where the measurement is censored or the prediction infinite)."""
        return self.point.pstar.value / self.predicted if np.isfinite(self.predicted) else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """The measured ``P*``'s bootstrap interval over the predicted ``P*``."""
        return self.point.pstar.low / self.predicted, self.point.pstar.high / self.predicted


class PStarTest:
    """Measured points with the exact statistics of their grammars, to fit the model's constants and test them.

    ``targets`` chooses the context of the statistics
    (:func:`lpbook.theory.level_statistics`; ILC's cousin tuples by default,
    :func:`lpbook.tree.token_targets` for TokenClustering); ``floors`` and
    ``spreads`` are the grid of :meth:`fit`.
    """

    def __init__(self, points: Sequence[MeasuredPoint], targets=cousin_targets, floors=FIT_FLOORS, spreads=FIT_SPREADS):
        self.points = list(points)
        if not all(isinstance(p, MeasuredPoint) for p in self.points):
            raise TypeError("points must be MeasuredPoint results of measured_points")
        self.targets, self.floors, self.spreads = targets, np.asarray(floors, float), np.asarray(spreads, float)
        self._stats: dict[tuple, list[LevelStatistics]] = {}
        self._lattice: dict[tuple, np.ndarray] = {}

    def statistics(self, point: MeasuredPoint) -> list[LevelStatistics]:
        """The :class:`lpbook.theory.LevelStatistics` of ``point``'s level, one per grammar seed."""
        key = point.grammar + (point.level, point.seeds)
        if key not in self._stats:
            self._stats[key] = [level_statistics(RHM(point.v, point.m, point.s, point.L, seed=seed), point.level,
                                                 self.targets) for seed in point.seeds]
        return self._stats[key]

    def _predicted_grid(self, point: MeasuredPoint) -> np.ndarray:
        """The median over ``point``'s grammars of :func:`choice_pstars` on the fit's grid, shape ``(f, c)``."""
        key = point.grammar + (point.level, point.seeds)
        if key not in self._lattice:  # every threshold of the grammar's points at once: they share the search
            thresholds = sorted({p.threshold for p in self.points if p.grammar + (p.level, p.seeds) == key})
            grids = [choice_pstars(st, thresholds, self.floors, self.spreads) for st in self.statistics(point)]
            grid = np.median(grids, axis=0)
            self._lattice[key] = dict(zip(thresholds, grid))
        return self._lattice[key][point.threshold]

    def select(self, where: Callable[[MeasuredPoint], bool] | None = None) -> list[MeasuredPoint]:
        """The points for which ``where`` holds (all of them by default)."""
        return [p for p in self.points if where is None or where(p)]

    def fit(self, where: Callable[[MeasuredPoint], bool] | None = None) -> ChoiceFit:
        """:func:`lpbook.theory.fit_choice` on the selected points whose ``P*`` was measured (not censored)."""
        chosen = [p for p in self.select(where) if p.pstar.censored is None]
        if not chosen:
            raise ValueError("where must select at least one point with a measured (not censored) P*")
        predicted = np.stack([self._predicted_grid(p) for p in chosen])
        return fit_choice(predicted, [p.pstar.value for p in chosen], self.floors, self.spreads)

    def compare(self, floor: float, spread: float, where: Callable[[MeasuredPoint], bool] | None = None
                ) -> list[Comparison]:
        """Each selected point against the median :func:`lpbook.theory.predicted_pstar` with ``floor`` and ``spread``."""
        return [Comparison(p, float(np.median([predicted_pstar(st, p.threshold, floor, spread=spread)
                                               for st in self.statistics(p)])))
                for p in self.select(where)]


def log_errors(comparisons: Sequence[Comparison]) -> np.ndarray:
    """``log(measured / predicted)`` of the comparisons whose ratio is finite, shape ``(k,)``."""
    ratios = np.array([c.ratio for c in comparisons], dtype=float)
    return np.log(ratios[np.isfinite(ratios)])
