"""lpbook.notebook's readers of sweep rows: P* by depth and rows split by grammar."""

from __future__ import annotations

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
