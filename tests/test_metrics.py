"""Tests of lpbook.metrics: Hungarian accuracy and the synonym-partition score."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lpbook import RHM, level_accuracy, synonym_partition_score
from lpbook.metrics import synonym_share
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


def _keyed_features(offset_scale, n=20000, n_classes=10, keys_per_class=5, dim=4, seed=0):
    """Observations of 50 keys in 10 classes: class centre + offset_scale * key offset + unit noise; the population share."""
    rng = np.random.default_rng(seed)
    key = rng.integers(0, n_classes * keys_per_class, size=n)
    cls = key // keys_per_class
    centres = rng.normal(size=(n_classes, dim))
    offsets = offset_scale * rng.normal(size=(n_classes * keys_per_class, dim))
    x = centres[cls] + offsets[key] + rng.normal(size=(n, dim))
    # the population value for these centres and offsets, with the observed key frequencies as weights
    w = np.bincount(key, minlength=offsets.shape[0]) / n
    key_means = centres[np.arange(offsets.shape[0]) // keys_per_class] + offsets
    wc = np.bincount(np.arange(offsets.shape[0]) // keys_per_class, weights=w)
    class_means = np.array([w[c * keys_per_class:(c + 1) * keys_per_class] @ key_means[c * keys_per_class:(c + 1) * keys_per_class]
                            for c in range(n_classes)]) / wc[:, None]
    within = (w * ((key_means - np.repeat(class_means, keys_per_class, axis=0)) ** 2).sum(1)).sum()
    between = (wc * ((class_means - w @ key_means) ** 2).sum(1)).sum()
    return x, key, cls, within / (within + between)


def test_synonym_share_is_zero_for_features_that_see_only_the_class():
    x, key, cls, truth = _keyed_features(0.0)
    assert truth == pytest.approx(0, abs=1e-12)
    # each key mean has noise of variance dim / 400; its squared error fluctuates by about sqrt(2 dim) / 400
    # around that, and 50 keys average it: a standard error near 2.5e-4 of a between-class spread near 4
    assert abs(synonym_share(x, key, cls)) < 2e-3


def test_synonym_share_recovers_the_within_class_share():
    x, key, cls, truth = _keyed_features(0.5)
    assert 0.1 < truth < 0.3
    # the key means' noise (variance 4/400 each) crosses the offsets (squared norm near 1): a standard error
    # near 2e-3 on the share, and 5 of them as tolerance
    assert synonym_share(x, key, cls) == pytest.approx(truth, abs=1e-2)


def test_synonym_share_errors_name_the_argument():
    x, key, cls, _ = _keyed_features(0.0, n=200)
    with pytest.raises(ValueError, match="features must have shape"):
        synonym_share(x[:, 0], key, cls)
    with pytest.raises(ValueError, match="one entry per row of features"):
        synonym_share(x, key[:-1], cls)
    with pytest.raises(ValueError, match="classes must be a function of keys"):
        synonym_share(x, key, np.where(np.arange(200) == 0, cls + 1, cls))
    with pytest.raises(ValueError, match="every key is seen once"):
        synonym_share(x[:3], np.arange(3), np.arange(3))
