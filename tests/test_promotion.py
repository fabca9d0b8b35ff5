"""The library under numpy's strictest promotion rules, with every warning an error.

NEP 50 ("weak" Python scalars: ``uint8_array + 300`` or ``np.where(mask,
uint8_array, -1)`` raise ``OverflowError`` instead of promoting) is the only
behaviour of numpy >= 2; numpy 1.26 offers it behind ``np._set_promotion_state``.
Mixing a negative sentinel into the grammar's unsigned codes is the kind of
bug these rules surface, and numpy releases differ on whether they raise, wrap
or warn; so this test walks every numpy code path of the library (sampling,
parsing, exact and empirical statistics, every numpy learner through a sweep
point, the metrics on codes with missing values, P* and exponent fits) under
them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lpbook import RHM, exact, level_accuracy, synonym_partition_score
from lpbook.empirical import pooled_counts
from lpbook.grammar import encode_tuples
from lpbook.learners import REGISTRY
from lpbook.sweep import Point, estimate_pstar, fit_exponent, run_point
from lpbook.theory import inverse_occupancy, pair_gap
from lpbook.tree import Node, cousin_targets

#: The learners that need no torch (the neural ones live in lpbook.neural).
NUMPY_LEARNERS = sorted(name for name, cls in REGISTRY.items() if not cls.__module__.startswith("lpbook.neural"))


@pytest.fixture
def strict():
    """NEP 50 promotion (switched on where numpy 1.x offers it) and warnings raised as errors."""
    set_state = getattr(np, "_set_promotion_state", None)  # numpy 1.x and 2.0-2.1 only
    before = np._get_promotion_state() if set_state else None
    if set_state:
        set_state("weak")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
    finally:
        if set_state:
            set_state(before)


def test_weak_promotion_is_on(strict):
    with pytest.raises(OverflowError):
        np.zeros(2, np.uint8) + 300


def test_grammar_and_statistics(strict):
    rhm = RHM(5, 2, 2, 3, n_classes=3, seed=1)
    sample = rhm.sample(300, seed=0)
    assert rhm.parse(sample.tokens).levels[-1].tolist() == sample.labels[:, None].tolist()
    ungrammatical = np.array(sample.tokens)
    ungrammatical[0] = ungrammatical[0, ::-1]  # almost surely not a production of the grammar
    assert (rhm._parse(ungrammatical)[0][rhm.L] >= -1).all()
    node = Node(1, 0)
    assert np.isfinite(exact.context(rhm, node, Node(1, 2))).any()
    assert all(gap.mean >= 0 for gap in exact.gap_profile(rhm, node))
    assert pooled_counts(rhm, sample, 1, cousin_targets).sum() > 0
    assert 0 < inverse_occupancy(5, 2, 2) and pair_gap(5, 2, 2, 1) > 0


def test_metrics_with_missing_codes(strict):
    true = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    assert level_accuracy(true, np.array([[1, 2, -1, 0]])) == 0.75  # the three coded nodes relabel exactly
    rhm = RHM(4, 2, 2, 2, seed=0)
    assignment = np.full(rhm.v**rhm.s, -1)
    assignment[encode_tuples(rhm.rules[1], rhm.v).ravel()] = np.repeat(np.arange(rhm.v), rhm.m)
    assignment[encode_tuples(rhm.rules[1][0, 0], rhm.v)] = -1  # one production left unclustered
    assert synonym_partition_score(rhm, 1, assignment) == 7 / 8


@pytest.mark.parametrize("learner", NUMPY_LEARNERS)
def test_every_numpy_learner_through_a_sweep_point(strict, learner):
    point = Point(learner, {}, v=4, m=2, s=2, L=3, n_classes=4, P=400, seed=0, n_test=100)
    result = run_point(point)
    assert all(0 <= accuracy <= 1 for accuracy in result.accuracy.values())


def test_pstar_and_exponent(strict):
    rows = [
        dict(learner="x", options={}, v=4, m=2, s=2, L=2, n_classes=4, n_test=10, P=P, seed=seed,
             accuracy={1: min(1.0, P / 100 + 0.1 * seed)})
        for P in (10, 30, 100, 300) for seed in range(3)
    ]
    pstar = estimate_pstar(rows, 1, n_boot=50)
    assert pstar.censored is None
    assert fit_exponent([2, 4], [pstar, pstar], n_boot=20).slope == pytest.approx(0.0, abs=1e-12)
