"""Tests of lpbook.pstar: P* read off synthetic sweep rows, its bootstrap, ratios and exponent fits."""

from __future__ import annotations

import numpy as np
import pytest

from lpbook.notebook import estimate_text, pstar_text
from lpbook.points import log_grid
from lpbook.pstar import PStar, estimate_pstar, exponent_fits, fit_exponent, pstar_ratio, try_fit_exponent

def synthetic_rows(curve, P_grid, seeds=3, level=1, **setting):
    """Rows of one setting whose accuracy at ``level`` is ``curve(P, seed)``."""
    setting = dict(learner="toy", options={}, v=8, m=2, s=2, L=3, n_classes=8, n_test=1000) | setting
    return [
        setting | dict(P=P, seed=seed, accuracy={level: float(curve(P, seed))})
        for P in P_grid
        for seed in range(seeds)
    ]


def linear(pstar, slope=0.05, shifts=None):
    """Accuracy 0.9 + slope * log(P / pstar), clipped to [0, 1]; seed ``i`` is shifted by ``shifts[i]``."""
    return lambda P, seed: np.clip(0.9 + slope * np.log(P / pstar) + (shifts[seed] if shifts else 0), 0, 1)


def test_pstar_is_exact_on_curves_linear_in_log_P():
    grid = log_grid(10, 10**5, 13)
    result = estimate_pstar(synthetic_rows(linear(1234.0), grid), level=1, n_boot=200)
    assert result.value == pytest.approx(1234.0, rel=1e-9)
    assert result.censored is None
    assert result.low == pytest.approx(1234.0, rel=1e-9) and result.high == pytest.approx(1234.0, rel=1e-9)
    assert result.P_grid == tuple(grid) and len(result.median) == len(grid) and result.boot.shape == (200,)


def test_pstar_of_a_logistic_is_within_the_interpolation_error():
    log_p0, width, threshold = np.log(500.0), 0.8, 0.9
    sigmoid = lambda x: 1 / (1 + np.exp(-(x - log_p0) / width))  # noqa: E731
    grid = log_grid(10, 10**5, 9)
    result = estimate_pstar(synthetic_rows(lambda P, seed: sigmoid(np.log(P)), grid), 1, threshold, n_boot=10)
    true = log_p0 + width * np.log(threshold / (1 - threshold))
    # Linear interpolation on [x0, x1] is off by at most h**2/8 * max|f''| in accuracy,
    # hence by at most that over min f' in log P.
    log_grid_ = np.log(grid)
    upper = np.searchsorted(log_grid_, true)
    x = np.linspace(log_grid_[upper - 1], log_grid_[upper], 1001)
    f = sigmoid(x)
    f1 = f * (1 - f) / width
    f2 = f1 * (1 - 2 * f) / width
    bound = (x[-1] - x[0]) ** 2 / 8 * np.abs(f2).max() / f1.min()
    assert 0 < abs(np.log(result.value) - true) <= bound


def test_pstar_uses_the_median_over_seeds():
    rows = synthetic_rows(linear(300.0, shifts=[-0.5, 0.0, 0.5]), log_grid(10, 10**4, 10))
    assert estimate_pstar(rows, 1, n_boot=10).value == pytest.approx(300.0, rel=1e-9)


@pytest.mark.parametrize("pstar, side, bound", [(1.0, "below", 0.0), (1e9, "above", np.inf)])
def test_censored_pstar(pstar, side, bound):
    result = estimate_pstar(synthetic_rows(linear(pstar), [10, 100, 1000]), 1, n_boot=20)
    assert np.isnan(result.value) and result.censored == side
    assert result.low == result.high == bound
    assert np.all(result.boot == bound)


def test_bootstrap_interval_contains_the_value_and_is_reproducible():
    shifts = list(np.random.default_rng(1).normal(0, 0.05, size=9))
    rows = synthetic_rows(linear(2000.0, shifts=shifts), log_grid(10, 10**5, 16), seeds=9)
    result = estimate_pstar(rows, 1, n_boot=300, seed=5)
    assert result.low < result.value < result.high
    again = estimate_pstar(rows, 1, n_boot=300, seed=5)
    assert again == result and np.array_equal(again.boot, result.boot)
    assert not np.array_equal(estimate_pstar(rows, 1, n_boot=300, seed=6).boot, result.boot)
    assert not result.boot.flags.writeable


def test_pstar_uses_the_pairs_that_exist_and_lists_the_missing_ones():
    rows = synthetic_rows(linear(300.0), [10, 100, 1000])
    # Seeds 3..5 added later on another grid: the union grid has holes, the curve is the same.
    later = [row | dict(seed=row["seed"] + 3) for row in synthetic_rows(linear(300.0), [30, 300, 3000])]
    result = estimate_pstar(rows + later, 1, n_boot=200)
    assert result.value == pytest.approx(300.0) and result.low == pytest.approx(300.0) == result.high
    assert result.P_grid == (10, 30, 100, 300, 1000, 3000) and result.n_seeds == 6
    assert set(result.missing) == {(P, s) for P in (10, 100, 1000) for s in (3, 4, 5)} | {
        (P, s) for P in (30, 300, 3000) for s in (0, 1, 2)
    }
    one_gap = estimate_pstar([r for r in rows if (r["P"], r["seed"]) != (100, 2)], 1)
    assert one_gap.missing == ((100, 2),) and one_gap.value == pytest.approx(300.0)
    assert estimate_pstar(rows, 1).missing == ()


def test_pstar_errors():
    rows = synthetic_rows(linear(300.0), [10, 100, 1000])
    with pytest.raises(ValueError, match=r"one setting.*mix m in \[2, 3\]"):
        estimate_pstar(rows + synthetic_rows(linear(300.0), [10, 100, 1000], m=3), 1)
    with pytest.raises(ValueError, match="two rows for P=10, seed=0"):
        estimate_pstar(rows + rows[:1], 1)
    with pytest.raises(ValueError, match="level must be one of the levels in the results \\[1\\], got 2"):
        estimate_pstar(rows, 2)
    with pytest.raises(ValueError, match="at least 2 values of P"):
        estimate_pstar([r for r in rows if r["P"] == 10], 1)
    with pytest.raises(ValueError, match="results must not be empty"):
        estimate_pstar([], 1)
    with pytest.raises(ValueError, match=r"threshold must lie in \(0.0, 1.0\]"):
        estimate_pstar(rows, 1, threshold=1.5)
    with pytest.raises(ValueError, match=r"confidence must lie in \(0.0, 1.0\)"):
        estimate_pstar(rows, 1, confidence=1)


def pstars_for(values, noisy=True, n_seeds=7):
    """P* results of synthetic sweeps whose true P* are ``values`` (same seed noise for each)."""
    shifts = list(np.random.default_rng(2).normal(0, 0.03, size=n_seeds)) if noisy else None
    grid = log_grid(10, 10**7, 29)
    return [
        estimate_pstar(synthetic_rows(linear(value, shifts=shifts), grid, seeds=n_seeds), 1, n_boot=200)
        for value in values
    ]


def test_fit_exponent_recovers_a_power_of_m():
    m = np.array([2, 3, 4, 6])
    exact = fit_exponent(m, pstars_for(30.0 * m**3, noisy=False))
    assert exact.slope == pytest.approx(3, rel=1e-9) and exact.low == pytest.approx(3, rel=1e-9)
    assert exact.intercept == pytest.approx(np.log(30.0), rel=1e-9)
    noisy = fit_exponent(m, pstars_for(30.0 * m**3), seed=1)
    assert noisy.slope == pytest.approx(3, rel=1e-9)  # the same seed shifts for every m
    assert noisy.low < 3 < noisy.high and noisy.n_points == 4 and noisy.n_boot == 1000
    assert fit_exponent(m, pstars_for(30.0 * m**3), seed=1) == noisy


def test_fit_exponent_recovers_a_growth_rate_in_L():
    L = np.array([2, 3, 4, 5, 6])
    fit = fit_exponent(L, pstars_for(50.0 * 2.0**L), log_x=False)
    assert fit.slope == pytest.approx(np.log(2), rel=1e-9)
    assert fit.low < np.log(2) < fit.high and not fit.log_x


def test_fit_exponent_leaves_censored_points_out():
    m = np.array([2, 3, 4])
    pstars = pstars_for([300.0, 3000.0, 1e12], noisy=False)
    assert pstars[2].censored == "above"
    fit = fit_exponent(m, pstars)
    assert fit.n_points == 2 and fit.slope == pytest.approx(np.log(10) / np.log(1.5))
    with pytest.raises(ValueError, match="at least 2 finite P\\*"):
        fit_exponent(m[1:], pstars[1:])


def test_try_fit_exponent_returns_none_without_two_measured_points():
    m = np.array([2, 3, 4])
    pstars = pstars_for([300.0, 3000.0, 1e12], noisy=False)
    assert try_fit_exponent(m, pstars) == fit_exponent(m, pstars)
    assert try_fit_exponent(m[1:], pstars[1:]) is None
    assert "not measured" in estimate_text(None).data
    assert estimate_text(fit_exponent(m, pstars)).data.startswith(f"{np.log(10) / np.log(1.5):.2f} (")


def test_pstar_text_gives_the_value_or_the_side_of_the_grid():
    measured, beyond, before = pstars_for([3000.0, 1e12, 1.0], noisy=False)
    assert pstar_text(measured) == f"{measured.value:,.0f}" and "," in pstar_text(measured)
    assert pstar_text(beyond) == "above 10,000,000" and pstar_text(before) == "below 10"


def test_fit_exponent_errors():
    pstars = pstars_for([300.0, 3000.0], noisy=False)
    with pytest.raises(ValueError, match="x must hold len\\(pstars\\) = 2"):
        fit_exponent([2, 3, 4], pstars)
    with pytest.raises(ValueError, match="x must be > 0"):
        fit_exponent([0, 3], pstars)
    with pytest.raises(ValueError, match="distinct x"):
        fit_exponent([3, 3], pstars)
    with pytest.raises(TypeError, match="PStar"):
        fit_exponent([2, 3], [300.0, 3000.0])
    assert all(isinstance(p, PStar) for p in pstars)


def _pstar(value, boot) -> PStar:
    boot = np.asarray(boot, dtype=float)
    censored = None if np.isfinite(value) else "above"
    return PStar(value, float(boot.min()), float(boot.max()), censored, 1, 0.9, 0.95, 3, (1, 2), (0.0, 1.0), boot)


def test_pstar_ratio_divides_values_and_pairs_bootstrap_draws():
    top, bottom = _pstar(200.0, np.arange(1, 101) * 4.0), _pstar(100.0, np.arange(1, 101) * 2.0)
    value, low, high = pstar_ratio(top, bottom)
    assert value == 2.0 and low == high == 2.0  # every paired draw has ratio 2
    value, low, high = pstar_ratio(_pstar(float("nan"), np.full(100, np.inf)), bottom)
    assert np.isnan(value) and low == high == np.inf
    with pytest.raises(ValueError, match="as many bootstrap draws"):
        pstar_ratio(top, _pstar(100.0, np.ones(10)))
    with pytest.raises(TypeError, match="PStar"):
        pstar_ratio(200.0, bottom)


def test_exponent_fits_group_the_settings_that_differ_only_in_the_variable():
    """P* = 100 m**2 at L = 3 and 300 m**2 at L = 4 (curves linear in log P, so each P* is exact)."""
    grid = log_grid(10, 10**6, 25)
    rows, pstars = [], []
    for L, factor in ((3, 100.0), (4, 300.0)):
        for m in (2, 3, 4):
            curve = synthetic_rows(linear(factor * m**2), grid, m=m, L=L)
            rows.append(curve[0])
            pstars.append(estimate_pstar(curve, level=1, n_boot=50))
    by_m = exponent_fits(rows, pstars, "m", n_boot=50)
    assert [fit.setting["L"] for fit in by_m] == [3, 4] and all(fit.x == (2, 3, 4) for fit in by_m)
    assert all(fit.exponent.slope == pytest.approx(2.0, rel=1e-9) and fit.n_points == 3 for fit in by_m)
    assert all("m" not in fit.setting and fit.growth is None for fit in by_m)
    by_L = exponent_fits(rows, pstars, "L", n_boot=50)
    assert [fit.setting["m"] for fit in by_L] == [2, 3, 4]
    assert all(fit.growth[0] == pytest.approx(3.0, rel=1e-9) for fit in by_L)
    lonely = exponent_fits(rows[:1], pstars[:1], "m")
    assert lonely[0].exponent is None and lonely[0].n_points == 1
    with pytest.raises(ValueError, match="variable must be 'm' or 'L'"):
        exponent_fits(rows, pstars, "v")
    with pytest.raises(ValueError, match="equal lengths"):
        exponent_fits(rows, pstars[:2], "m")

