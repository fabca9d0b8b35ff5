"""Tests of lpbook.metrics: Hungarian accuracy and the synonym-partition score."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lpbook import RHM, level_accuracy, synonym_partition_score
from lpbook.grammar import encode_tuples


def brute_force(true, learned):
    """Best accuracy over every injective map from learned codes to true codes."""
    t_vals, l_vals = np.unique(true), np.unique(learned[learned >= 0])
    best = 0
    for image in itertools.permutations(list(t_vals) + [-1] * len(l_vals), len(l_vals)):
        mapping = dict(zip(l_vals, image))
        best = max(best, sum(mapping.get(x, -2) == y for x, y in zip(learned, true)))
    return best / len(true)


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 3)), min_size=1, max_size=25),
)
def test_level_accuracy_is_the_best_relabelling(pairs):
    true = np.array([p[0] for p in pairs])
    learned = np.array([p[1] for p in pairs])
    assert level_accuracy(true, learned) == pytest.approx(brute_force(true, learned))


@given(st.integers(0, 2**32 - 1))
def test_permuted_codes_score_one(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 7, size=(30, 4))
    perm = rng.permutation(12)  # a larger learned alphabet
    assert level_accuracy(true, perm[true]) == 1.0


def test_chance_level_for_random_codes():
    rng = np.random.default_rng(0)
    N, v = 100_000, 8
    true, learned = rng.integers(0, v, N), rng.integers(0, v, N)
    # The best matching of independent codes beats 1/v only by sampling noise.
    assert abs(level_accuracy(true, learned) - 1 / v) < 5 * np.sqrt(v / N)


def test_unassigned_codes_count_as_wrong():
    assert level_accuracy([0, 1, 1, 2], [5, -1, 3, 3]) == 0.5


@pytest.mark.parametrize(
    "true, learned, error, match",
    [
        ([0, 1], [0, 1, 2], ValueError, "same shape"),
        ([], [], ValueError, "must not be empty"),
        ([-1, 0], [0, 0], ValueError, "true_codes must be >= 0"),
        ([0.5, 1], [0, 1], TypeError, "true_codes must hold integers"),
        ([0, 1], [0.0, 1.0], TypeError, "learned_codes must hold integers"),
    ],
)
def test_level_accuracy_errors(true, learned, error, match):
    with pytest.raises(error, match=match):
        level_accuracy(true, learned)


def test_synonym_partition_score():
    rhm = RHM(6, 3, 2, 3, seed=2)
    level = 2
    rules = rhm.rules[level]
    codes = encode_tuples(rules.reshape(-1, 2), rhm.v)
    parents = np.repeat(np.arange(rules.shape[0]), rhm.m)
    perfect = np.full(rhm.v**2, -1)
    perfect[codes] = np.random.default_rng(0).permutation(20)[parents]
    assert synonym_partition_score(rhm, level, perfect) == 1.0
    merged = perfect.copy()
    merged[codes[parents == 1]] = perfect[codes[0]]  # merge parent 1 into parent 0
    assert synonym_partition_score(rhm, level, merged) == pytest.approx(1 - rhm.m / codes.size)
    missing = perfect.copy()
    missing[codes[:2]] = -1
    assert synonym_partition_score(rhm, level, missing) == pytest.approx(1 - 2 / codes.size)
    with pytest.raises(ValueError, match=r"assignment must have shape \(v\*\*s = 36,\)"):
        synonym_partition_score(rhm, level, perfect[:10])
    with pytest.raises(ValueError, match="level must be <= L = 3"):
        synonym_partition_score(rhm, 4, perfect)
    with pytest.raises(TypeError, match="rhm must be an RHM"):
        synonym_partition_score("grammar", 1, perfect)
