"""lpbook.notebook's readers of sweep rows: P* by depth and rows split by grammar."""

from __future__ import annotations

import numpy as np
import pytest

from lpbook.notebook import pstars_by_depth


def _rows(accuracies_by_P, level):
    """Sweep-like rows of one seed whose ``level`` has the given accuracy at each P."""
    return [{"P": P, "seed": 0, "accuracy": {level: acc}} for P, acc in accuracies_by_P.items()]


def test_pstars_by_depth_skips_missing_depths_and_reads_the_top_or_the_root():
    curve = {100: 0.2, 1000: 0.95}
    series = {3: _rows(curve, 2), 4: None, 5: _rows(curve, 4)}
    depths, pstars = pstars_by_depth(series)
    assert depths == [3, 5] and [p.level for p in pstars] == [2, 4]
    assert all(p.censored is None and 100 < p.value < 1000 for p in pstars)
    depths, pstars = pstars_by_depth({3: _rows(curve, 3)}, root=True)
    assert depths == [3] and pstars[0].level == 3 and pstars[0].censored is None
    assert pstars_by_depth({3: _rows(curve, 2)}, threshold=0.99)[1][0].censored == "above"
    assert pstars_by_depth({}) == ([], [])


def test_rows_by_splits_a_specs_rows_by_grammar_and_refuses_no_field():
    from lpbook.notebook import rows_by

    rows = [{"m": 3, "L": 4, "P": 1}, {"m": 2, "L": 3, "P": 2}, {"m": 3, "L": 4, "P": 3}]
    assert rows_by(rows, "m", "L") == {(2, 3): [rows[1]], (3, 4): [rows[0], rows[2]]}
    assert list(rows_by(rows, "L")) == [3, 4]
    with pytest.raises(ValueError, match="field"):
        rows_by(rows)


def _point(L, P, seed, top, excess, val_slope=0.0, stopped="patience"):
    """A measured network of depth L whose top level reads ``top``, whose excess loss is ``excess``, whose
    validation loss fell by ``-val_slope`` per step at its end (within a half-width of 1e-6), stopped by ``stopped``."""
    from lpbook.neural.measure import NetworkPoint

    return NetworkPoint(L=L, P=P, seed=seed, accuracy={L - 1: top}, test_loss=1.0 + excess, bayes_loss=1.0,
                        steps=10, seconds=1.0, trends={"val": (val_slope, 1e-6)}, stopped=stopped)


def test_network_pstars_keeps_a_depth_only_with_two_sizes_and_its_largest_converged_on_two_grammars():
    pytest.importorskip("torch")
    from lpbook import bp
    from lpbook.notebook import network_pstars, no_pstar_reason

    good, bad = bp.CONVERGED_EXCESS / 2, bp.CONVERGED_EXCESS * 2
    two = [_point(3, 1000, seed, 0.95, good) for seed in (0, 1)]
    points = {3: [_point(3, 100, 0, 0.2, bad), _point(3, 100, 1, 0.3, bad), *two],  # a P* between 100 and 1000
              4: [_point(4, 1000, 0, 0.95, good)],  # one size
              5: [_point(5, 100, 0, 0.2, good), _point(5, 1000, 0, 0.95, good), _point(5, 1000, 1, 0.95, bad)],
              6: [_point(6, 100, 0, 0.2, bad), _point(6, 1000, 0, 0.95, good)]}  # one grammar at 1000
    depths, pstars = network_pstars(points)
    assert depths == [3] and pstars[0].level == 2 and 100 < pstars[0].value < 1000
    assert [no_pstar_reason(points[L]) for L in (3, 4, 5, 6)] == [
        None, "one size only", "its largest size is not converged", "one grammar at its largest size"]
    assert network_pstars({}) == ([], [])


def test_a_network_its_patience_stopped_while_improving_below_the_threshold_does_not_count_towards_pstar():
    pytest.importorskip("torch")
    from lpbook import bp
    from lpbook.notebook import counted_networks, network_pstars, no_pstar_reason, pstars_by_depth

    good, bad = bp.CONVERGED_EXCESS / 2, bp.CONVERGED_EXCESS * 2
    top = [_point(3, 4000, seed, 0.95, good, val_slope=-1e-3) for seed in (0, 1)]  # improving, yet counted
    finished = [_point(3, 1000, 0, 0.5, bad), _point(3, 2000, 0, 0.92, bad, val_slope=-1e-3)]
    unfinished = _point(3, 2000, 1, 0.5, bad, val_slope=-1e-3)
    budget = _point(3, 2000, 1, 0.5, bad, val_slope=-1e-3, stopped="budget")  # ran its budget: finished
    assert unfinished.unfinished and not finished[0].improving and budget.improving and not budget.unfinished
    assert counted_networks([*finished, unfinished, *top]) == [*finished, *top]
    assert counted_networks([*finished, budget, *top]) == [*finished, budget, *top]
    counted, = network_pstars({3: [*finished, unfinished, *top]})[1]
    everything, = pstars_by_depth({3: [p.row() for p in [*finished, unfinished, *top]]})[1]
    assert 1000 < counted.value < 2000 < everything.value < 4000  # median at 2,000: 0.92 counted, 0.71 with all
    only = [_point(3, 1000, 0, 0.5, bad, val_slope=-1e-3), *top]
    assert no_pstar_reason(only) == "its smaller sizes hold only unfinished networks"


def test_measured_networks_measures_each_committed_network_once_by_depth(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from lpbook import __main__ as cli
    from lpbook.experiments import NETWORKS, Fit, NetworkSet
    from lpbook.notebook import measured_networks, own_and_new

    options = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10)
    fits = [Fit("masked-token", {"v": 4, "m": 2, "s": 2, "L": L}, P, 0, options, f"results/networks/mt-L{L}-P{P}.npz")
            for L, P in ((3, 60), (3, 30), (2, 30))]
    other = Fit("masked-token", {"v": 5, "m": 2, "s": 2, "L": 3}, 30, 0, options, "results/networks/mt-v5.npz")
    monkeypatch.setitem(NETWORKS, "one", NetworkSet("one", "test", (fits[0], fits[1], other)))
    monkeypatch.setitem(NETWORKS, "two", NetworkSet("two", "test", (fits[0], fits[2])))
    (tmp_path / "results" / "networks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for name in ("one", "two"):
        assert cli.main(["fit", "--spec", name, "--record", "--option", "progress=false"]) == 0
    found = measured_networks(["one", "two"], "masked-token", v=4)
    assert list(found) == [2, 3] and [(p.P, p.seed) for p in found[3]] == [(30, 0), (60, 0)]
    assert all(set(p.accuracy) == set(range(1, L)) for L, points in found.items() for p in points)
    assert measured_networks("one", "data2vec") == {}
    kept = measured_networks(["one", "two"], "masked-token", select=lambda fit: fit.P == 60, v=4)
    assert list(kept) == [3] and kept[3] == [p for p in found[3] if p.P == 60]
    both = own_and_new(["two", "one"], "masked-token",
                       select=lambda fit: fit.grammar["L"] == 3 and fit.grammar["v"] == 4)
    assert sorted(both) == sorted(fit.path for fit in fits[:2])
    measured = {(p.P, p.seed): p for p in found[3]}
    for point, own in both.values():  # the same measurement as measured_networks', and a finite excess
        assert point is measured[point.P, point.seed] and np.isfinite(own)


def test_gap_texts_gives_the_ranges_on_own_and_new_strings_of_one_depth():
    pytest.importorskip("torch")
    from lpbook.notebook import gap_texts

    measured = {"a": (_point(4, 100, 0, 0.5, 0.10), 0.08), "b": (_point(4, 200, 0, 0.5, 0.12), 0.09),
                "c": (_point(3, 100, 0, 0.5, 0.20), 0.05)}
    assert gap_texts(measured, 4) == ("0.08 to 0.09", "0.10 to 0.12")
    assert gap_texts(measured, 3) == ("0.05", "0.20")
    assert gap_texts(measured, 5, empty="none") == ("none", "none")


def test_pstar_interval_text_names_an_open_end_and_defers_to_pstar_text_when_censored():
    from lpbook.notebook import pstar_interval_text

    closed = [{"P": P, "seed": s, "accuracy": {2: a}} for s, shift in ((0, 0.0), (1, 0.05), (2, -0.05))
              for P, a in ((100, 0.2 + shift), (1000, 0.8 + shift), (10000, 0.97 + shift))]
    p = pstars_by_depth({3: closed})[1][0]
    text = pstar_interval_text(p)
    assert text.startswith(f"{p.value:,.0f} (") and "beyond" not in text, text
    open_above = [{"P": P, "seed": s, "accuracy": {2: a}} for s, top in ((0, 0.97), (1, 0.85))
                  for P, a in ((100, 0.2), (1000, 0.5), (10000, top))]
    p = pstars_by_depth({3: open_above})[1][0]
    assert p.censored is None and pstar_interval_text(p).endswith("to beyond the largest size, 10,000)"), p
    censored = pstars_by_depth({3: [{"P": 100, "seed": 0, "accuracy": {2: 0.1}}, {"P": 200, "seed": 0,
                                                                                  "accuracy": {2: 0.2}}]})[1][0]
    assert pstar_interval_text(censored) == "above 200"


def test_ratio_text_gives_the_interval_an_open_end_and_a_censored_ratio():
    from lpbook.notebook import ratio_text

    assert ratio_text((2.789, 2.121, 3.806)) == "2.79 (2.12 to 3.81)"
    assert ratio_text((8.17, 6.05, float("inf"))) == "8.17 (6.05 to ∞)"
    assert ratio_text((float("nan"), float("nan"), float("nan"))) == "not measured (a P* is censored)"


def test_span_text_gives_one_number_when_both_ends_read_the_same():
    from lpbook.notebook import span_text

    assert span_text([0.104, 0.052, 0.1]) == "0.05 to 0.10"
    assert span_text([0.091, 0.092]) == "0.09" and span_text([0.091, 0.092], digits=3) == "0.091 to 0.092"
    assert span_text([], empty="(none at this scale)") == "(none at this scale)"
    assert span_text(x for x in (1.0, 2.0)) == "1.00 to 2.00"
