"""Sample complexity read off sweeps: ``P*`` with its bootstrap interval, and its growth fitted.

:func:`estimate_pstar` reads the sample complexity ``P*`` off the median
accuracy curve over seeds of one setting (:func:`group_results` splits rows
into settings), with a bootstrap over seeds; :func:`pstar_ratio` divides two
of them; :func:`fit_exponent` regresses ``log P*`` on ``log m`` (or on
``L``), and :func:`exponent_fits` does so over every group of settings that
differ only in that parameter. The rows are plain dicts, as
:func:`lpbook.storage.load_results` gives them (or any dicts with ``P``,
``seed`` and ``accuracy``): nothing here runs or stores a sweep.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ._validate import check_float, check_int
from .points import SETTING_FIELDS, canonical_json

def setting_of(row: Mapping) -> tuple:
    """What identifies the curve a row belongs to: ``(field, value)`` pairs of :data:`SETTING_FIELDS`.

    Fields a row lacks count as ``None``; options are compared as canonical JSON.
    """
    return tuple(
        (name, canonical_json(row.get(name)) if name == "options" else row.get(name)) for name in SETTING_FIELDS
    )


def group_results(rows: Iterable[Mapping]) -> dict[tuple, list]:
    """Rows split by :func:`setting_of` (one curve each), in order of first appearance."""
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault(setting_of(row), []).append(row)
    return groups


@dataclass(frozen=True)
class PStar:
    """A sample complexity read off the median accuracy curve.

    ``value`` is ``P*`` in samples, NaN when ``censored`` is ``"below"`` (the
    median curve is at or above ``threshold`` already at the smallest ``P``)
    or ``"above"`` (it never reaches it); ``censored`` is ``None`` otherwise.
    ``[low, high]`` is the bootstrap percentile interval at ``confidence``.
    ``boot`` (shape ``(n_boot,)``) holds the bootstrap draws of ``P*``, where
    a draw censored below is ``0`` and one censored above is ``inf``; so are
    ``low`` and ``high`` when the interval leaves the grid. ``P_grid`` and
    ``median`` (same length) are the median curve itself. ``missing`` lists
    the ``(P, seed)`` pairs of the grid ``P_grid x seeds`` that the results
    lack (the medians use the seeds present at each ``P``).
    """

    value: float
    low: float
    high: float
    censored: str | None
    level: int
    threshold: float
    confidence: float
    n_seeds: int
    P_grid: tuple
    median: tuple
    boot: np.ndarray = field(repr=False, compare=False)
    missing: tuple = ()


def accuracy_matrix(rows: list, level: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid ``P`` of shape ``(n_P,)`` and the accuracies of ``level``, shape ``(n_P, n_seeds)``.

    The columns are the seeds found in ``rows``; a ``(P, seed)`` pair that
    ``rows`` lack is NaN (see :func:`missing_pairs`).
    """
    P_grid = sorted({row["P"] for row in rows})
    seeds = sorted({row["seed"] for row in rows})
    acc = np.full((len(P_grid), len(seeds)), np.nan)
    filled = np.zeros(acc.shape, dtype=bool)
    at_P, at_seed = {P: i for i, P in enumerate(P_grid)}, {s: j for j, s in enumerate(seeds)}
    for row in rows:
        i, j = at_P[row["P"]], at_seed[row["seed"]]
        if filled[i, j]:
            raise ValueError(f"results hold two rows for P={row['P']}, seed={row['seed']}")
        if level not in row["accuracy"]:
            levels = sorted(row["accuracy"])
            raise ValueError(f"level must be one of the levels in the results {levels}, got {level}")
        acc[i, j], filled[i, j] = row["accuracy"][level], True
    if len(P_grid) < 2:
        raise ValueError(f"results must hold at least 2 values of P, got {P_grid}")
    return np.array(P_grid, dtype=float), acc


def missing_pairs(rows: list) -> list[tuple[int, int]]:
    """The ``(P, seed)`` pairs of the grid (every ``P`` x every seed found in ``rows``) that ``rows`` lack."""
    present = {(row["P"], row["seed"]) for row in rows}
    P_grid, seeds = sorted({P for P, _ in present}), sorted({seed for _, seed in present})
    return [(P, seed) for P in P_grid for seed in seeds if (P, seed) not in present]


def _crossing(log_P: np.ndarray, curves: np.ndarray, threshold: float) -> np.ndarray:
    """``log P*`` of each column of ``curves`` (shape ``(n_P, k)``, on the grid ``log_P``).

    Linear interpolation in ``(log P, accuracy)`` between the last grid point
    below ``threshold`` and the first at or above; ``-inf`` where the first
    point is already at or above, ``+inf`` where none is. Shape ``(k,)``.
    NaN entries (no data at that ``P``) are skipped.
    """
    n_P, k = curves.shape
    valid = ~np.isnan(curves)
    reached = valid & (curves >= threshold)
    first = reached.argmax(axis=0)
    # The last valid grid point at or before each row, -1 where there is none.
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(n_P)[:, None], -1), axis=0)
    columns = np.arange(k)
    lower = np.where(first > 0, last_valid[np.maximum(first - 1, 0), columns], -1)
    y0, y1 = curves[np.maximum(lower, 0), columns], curves[first, columns]
    x0, x1 = log_P[np.maximum(lower, 0)], log_P[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = x0 + (threshold - y0) * (x1 - x0) / (y1 - y0)
    crossing = np.where(lower < 0, -np.inf, crossing)
    return np.where(reached.any(axis=0), crossing, np.inf)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of ``draws`` (infinite draws allowed: no interpolation)."""
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2], method="inverted_cdf")
    return float(low), float(high)


def _check_one_setting(rows: list) -> None:
    """Raise a ``ValueError`` naming the fields in which ``rows`` differ, unless they share one setting."""
    settings = list(group_results(rows))
    if len(settings) > 1:
        mixed = {name: sorted({dict(s)[name] for s in settings}, key=repr) for name in SETTING_FIELDS}
        described = ", ".join(f"{name} in {values}" for name, values in mixed.items() if len(values) > 1)
        raise ValueError(
            f"results must come from one setting (learner, options, grammar, n_test); they mix {described}"
        )


def estimate_pstar(results, level, threshold=0.9, *, n_boot=1000, confidence=0.95, seed=0) -> PStar:
    """The sample complexity ``P*`` at which the median accuracy of ``level`` first reaches ``threshold``.

    ``results`` are rows as :func:`lpbook.storage.load_results` gives them, all of one
    setting (learner, options, grammar, ``n_test``), with at least 2 values of
    ``P``. For each ``P`` the accuracy is the median over the seeds present
    there: ``(P, seed)`` pairs that are missing (e.g. seeds added later on
    another grid) are left out and listed in :attr:`PStar.missing`. ``P*`` interpolates linearly in
    ``(log P, accuracy)`` (see :class:`PStar` for censoring). The bootstrap
    resamples the seeds with replacement, the same resample for every ``P``
    since training sets are nested across ``P``, ``n_boot`` times from the
    generator seeded by ``seed``.
    """
    rows = list(results)
    if not rows:
        raise ValueError("results must not be empty")
    _check_one_setting(rows)
    level = check_int("level", level, minimum=0)
    threshold = check_float("threshold", threshold, low=0.0, high=1.0, closed_high=True)
    confidence = check_float("confidence", confidence, low=0.0, high=1.0)
    n_boot = check_int("n_boot", n_boot, minimum=1)
    P_grid, acc = accuracy_matrix(rows, level)
    log_P = np.log(P_grid)
    n_seeds = acc.shape[1]
    resample = np.random.default_rng(seed).integers(0, n_seeds, size=(n_boot, n_seeds))
    with warnings.catch_warnings():  # a resample may hold no seed at some P: that P is skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(acc, axis=1)
        boot_medians = np.nanmedian(acc[:, resample], axis=-1)  # (n_P, n_boot)
    log_value = _crossing(log_P, median[:, None], threshold)[0]
    boot = np.exp(_crossing(log_P, boot_medians, threshold))  # (n_boot,)
    boot.flags.writeable = False
    censored = None if np.isfinite(log_value) else ("below" if np.isneginf(log_value) else "above")
    low, high = _interval(boot, confidence)
    return PStar(
        value=float(np.exp(log_value)) if censored is None else float("nan"),
        low=low,
        high=high,
        censored=censored,
        level=level,
        threshold=threshold,
        confidence=confidence,
        n_seeds=n_seeds,
        P_grid=tuple(int(P) for P in P_grid),
        median=tuple(float(a) for a in median),
        boot=boot,
        missing=tuple(missing_pairs(rows)),
    )


def pstar_ratio(numerator: PStar, denominator: PStar, confidence: float = 0.95) -> tuple[float, float, float]:
    """``numerator.value / denominator.value`` and the percentile interval at ``confidence`` of the
    ratio of their bootstrap draws (independent sweeps, so draws are paired by index only).

    Returns ``(ratio, low, high)``; the ratio is NaN when either ``P*`` is censored, and
    draws censored on both sides are left out of the interval (NaN if none remains).
    """
    if not (isinstance(numerator, PStar) and isinstance(denominator, PStar)):
        raise TypeError("numerator and denominator must be PStar results of estimate_pstar")
    if numerator.boot.size != denominator.boot.size:
        raise ValueError(f"numerator and denominator must have as many bootstrap draws, got "
                         f"{numerator.boot.size} and {denominator.boot.size}")
    confidence = check_float("confidence", confidence, low=0.0, high=1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = numerator.boot / denominator.boot
        value = numerator.value / denominator.value
    draws = draws[~np.isnan(draws)]
    low, high = _interval(draws, confidence) if draws.size else (float("nan"), float("nan"))
    return float(value), low, high


@dataclass(frozen=True)
class Exponent:
    """A least-squares fit ``log P* = intercept + slope * X``, ``X = log x`` or ``x``.

    ``[low, high]`` is the bootstrap percentile interval of ``slope`` at
    ``confidence``, over the ``n_boot`` replicates whose P* draws were all
    finite (replicates with a draw censored off the grid are left out).
    ``n_points`` finite P* values entered the fit.
    """

    slope: float
    low: float
    high: float
    intercept: float
    log_x: bool
    confidence: float
    n_points: int
    n_boot: int


def _slopes(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of each row of ``Y`` (shape ``(k, n)``) against ``X`` (shape ``(n,)``)."""
    Xc = X - X.mean()
    return (Y - Y.mean(axis=-1, keepdims=True)) @ Xc / (Xc @ Xc)


def fit_exponent(x, pstars, log_x=True, *, n_boot=1000, confidence=0.95, seed=0) -> Exponent:
    """Regress ``log P*`` on ``log x`` (exponent in ``m``) or, with ``log_x=False``, on ``x`` (growth in ``L``).

    ``x`` and ``pstars`` (:class:`PStar` results) have equal lengths; censored
    P* are left out, and at least 2 finite ones at distinct ``x`` must remain.
    Each of ``n_boot`` bootstrap replicates draws one of each P*'s bootstrap
    draws (independently, from the generator seeded by ``seed``) and refits.
    """
    pstars = list(pstars)
    if not all(isinstance(p, PStar) for p in pstars):
        raise TypeError("pstars must be PStar results of estimate_pstar")
    x = np.asarray(x, dtype=float)
    if x.shape != (len(pstars),) or not np.isfinite(x).all():
        raise ValueError(f"x must hold len(pstars) = {len(pstars)} finite numbers, got {x.tolist()}")
    if log_x and (x <= 0).any():
        raise ValueError(f"x must be > 0 when log_x is true, got {x.tolist()}")
    confidence = check_float("confidence", confidence, low=0.0, high=1.0)
    n_boot = check_int("n_boot", n_boot, minimum=1)
    finite = np.isfinite([p.value for p in pstars])
    if np.unique(x[finite]).size < 2:
        raise ValueError(f"fit_exponent needs at least 2 finite P* at distinct x, got x={x[finite].tolist()}")
    kept = [p for p, ok in zip(pstars, finite) if ok]
    X = np.log(x[finite]) if log_x else x[finite]
    Y = np.log([p.value for p in kept])
    slope = float(_slopes(X, Y))
    rng = np.random.default_rng(seed)
    draws = np.stack([p.boot[rng.integers(0, p.boot.size, n_boot)] for p in kept], axis=1)  # (n_boot, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = _slopes(X, np.log(draws))
    boot = boot[np.isfinite(boot)]
    low, high = _interval(boot, confidence) if boot.size else (float("nan"), float("nan"))
    return Exponent(
        slope=slope,
        low=low,
        high=high,
        intercept=float(Y.mean() - slope * X.mean()),
        log_x=bool(log_x),
        confidence=confidence,
        n_points=int(finite.sum()),
        n_boot=int(boot.size),
    )


def try_fit_exponent(x, pstars, **kwargs) -> Exponent | None:
    """:func:`fit_exponent`, or ``None`` when fewer than two ``P*`` were measured (censored ones do not count)."""
    return fit_exponent(x, pstars, **kwargs) if sum(p.censored is None for p in pstars) >= 2 else None


@dataclass(frozen=True)
class ExponentFit:
    """One fit of :func:`exponent_fits`: the shared ``setting`` (every field of
    :data:`~lpbook.points.SETTING_FIELDS` but ``variable``), the values ``x`` of
    ``variable`` (``"m"`` or ``"L"``) in the order of the ``P*`` that entered,
    ``n_points`` the uncensored ones among them, and ``exponent``, the
    :class:`Exponent` (``None`` with fewer than two uncensored ``P*``).
    ``growth`` is ``exp(slope)`` and its interval, for a fit in ``L``: the
    factor by which ``P*`` grows per level."""

    setting: dict
    variable: str
    x: tuple
    n_points: int
    exponent: Exponent | None

    @property
    def growth(self) -> tuple[float, float, float] | None:
        """``(exp(slope), exp(low), exp(high))`` for a fit in ``L``; ``None`` otherwise or when nothing was fitted."""
        if self.variable != "L" or self.exponent is None:
            return None
        return math.exp(self.exponent.slope), math.exp(self.exponent.low), math.exp(self.exponent.high)


def exponent_fits(settings: Iterable[Mapping], pstars: Iterable[PStar], variable: str, *, n_boot=1000,
                  seed=0) -> list[ExponentFit]:
    """:func:`try_fit_exponent` over every group of settings that differ only in ``variable`` (``"m"`` or ``"L"``).

    ``settings[i]`` is a row (or any mapping with the fields of
    :data:`~lpbook.points.SETTING_FIELDS`) of the curve whose ``P*`` is
    ``pstars[i]``. Groups come in the order of their first setting; a fit
    in ``m`` regresses on ``log m``, one in ``L`` on ``L``.
    """
    if variable not in ("m", "L"):
        raise ValueError(f"variable must be 'm' or 'L', got {variable!r}")
    settings, pstars = list(settings), list(pstars)
    if len(settings) != len(pstars):
        raise ValueError(f"settings and pstars must have equal lengths, got {len(settings)} and {len(pstars)}")
    groups: dict[str, list] = {}
    for setting, pstar in zip(settings, pstars):
        others = {name: setting.get(name) for name in SETTING_FIELDS if name != variable}
        groups.setdefault(canonical_json(others), []).append((setting[variable], pstar))
    fits = []
    for others, members in groups.items():
        x = tuple(value for value, _ in members)
        measured = [p for _, p in members]
        exponent = try_fit_exponent(x, measured, log_x=variable == "m", n_boot=n_boot, seed=seed)
        fits.append(ExponentFit(json.loads(others), variable, x, sum(p.censored is None for p in measured), exponent))
    return fits
