"""Tests of the clustering engine and its learners: TokenClustering, SupervisedClustering, ILC, RootProbe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lpbook import ILC, RHM, ILCWithProbe, RootProbe, SupervisedClustering, TokenClustering, exact, level_accuracy
from lpbook.clustering import cluster_rows
from lpbook.contexts import CONTEXTS, View
from lpbook.empirical import cooccurrence
from lpbook.grammar import encode_tuples
from lpbook.learners import REGISTRY
from lpbook.tree import cousin_targets

CLUSTERING = [TokenClustering, SupervisedClustering, ILC, ILCWithProbe]
ILC_CONTEXTS = ["cousin_tuples", "cousin_symbols", "great_grandparent_tuples"]


def run(cls, rhm, P, seed=0, n_test=2000, **options):
    train, test = rhm.sample(P, seed=2 * seed), rhm.sample(n_test, seed=2 * seed + 1)
    learner = cls(v=rhm.v, s=rhm.s, L=rhm.L, seed=seed, **options)
    learner.fit(train.tokens, train.labels if learner.uses_labels else None)
    return learner, test, learner.transform(test.tokens)


# ------------------------------------------------------------------ engine
@given(st.integers(0, 2**32 - 1))
def test_cooccurrence_matches_a_direct_count(seed):
    rng = np.random.default_rng(seed)
    P, n, n_slots, n_rows, n_values = 7, 3, 2, 5, 4
    rows = rng.integers(0, n_rows, (P, n))
    values = rng.integers(0, n_values, (P, n, n_slots))
    expected = np.zeros((n_rows, n_slots * n_values), dtype=int)
    for p in range(P):
        for i in range(n):
            for r in range(n_slots):
                expected[rows[p, i], r * n_values + values[p, i, r]] += 1
    assert np.array_equal(cooccurrence(rows, values, n_rows, n_values), expected)
    # a non-contiguous view of the values counts the same
    wide = np.zeros((P, n, 2 * n_slots), dtype=values.dtype)
    wide[:, :, ::2] = values
    assert np.array_equal(cooccurrence(rows, wide[:, :, ::2], n_rows, n_values), expected)


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")  # far groups have zero affinity
def test_cluster_rows_recovers_separated_groups_and_marks_unseen():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 100
    groups = rng.integers(0, 4, 40)
    counts = rng.poisson(centres[groups] + 1)
    counts[[3, 17]] = 0  # two rows never seen
    assignment = cluster_rows(counts, 4, seed=0)
    assert (assignment[[3, 17]] == -1).all()
    seen = assignment >= 0
    assert level_accuracy(groups[seen], assignment[seen]) == 1.0
    for method in ("single", "spectral"):
        other = cluster_rows(counts, 4, seed=0, method=method)
        assert level_accuracy(groups[seen], other[seen]) == 1.0, method


def test_cluster_rows_with_fewer_rows_than_clusters():
    counts = np.array([[1, 0], [0, 0], [0, 3]])
    assert cluster_rows(counts, 5, seed=0).tolist() == [0, -1, 1]


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_contexts_shapes_and_ranges(name):
    rhm = RHM(5, 2, 2, 4, seed=1)
    sample = rhm.sample(6, seed=0)
    for level in range(1, rhm.L):
        codes = np.asarray(sample.levels[level - 1])
        view = View(
            codes=codes,
            tuples=encode_tuples(codes.reshape(6, -1, 2), 5),
            tokens=np.asarray(sample.tokens),
            token_tuples=encode_tuples(np.asarray(sample.tokens).reshape(6, -1, 2), 5),
            labels=np.asarray(sample.labels),
            V=5,
            v=5,
            n_classes=5,
        )
        values, n_values = CONTEXTS[name](view, level, rhm.L, rhm.s)
        assert values.ndim == 3 and values.shape[:2] == (6, 2 ** (rhm.L - level))
        assert values.min() >= 0 and values.max() < n_values


# ---------------------------------------------------------------- protocol
@pytest.mark.parametrize("cls", CLUSTERING)
def test_protocol_conformance(cls):
    rhm = RHM(6, 2, 2, 3, seed=0)
    learner, test, codes = run(cls, rhm, 300)
    assert REGISTRY[cls.name] is cls
    expected = set(range(1, rhm.L)) | ({rhm.L} if cls.uses_labels else set())
    assert set(codes) == expected
    for level, c in codes.items():
        assert c.shape == (test.P, rhm.s ** (rhm.L - level))
        assert np.issubdtype(c.dtype, np.integer) and c.min() >= 0 and c.max() < rhm.alphabet_size(level)
    assert learner.fit(test.tokens, test.labels) is learner


@pytest.mark.parametrize("cls", CLUSTERING)
def test_deterministic_given_the_seed(cls):
    rhm = RHM(8, 3, 2, 3, seed=4)
    _, _, a = run(cls, rhm, 500, seed=3)
    _, _, b = run(cls, rhm, 500, seed=3)
    assert all(np.array_equal(a[level], b[level]) for level in a)


# ------------------------------------------------------------- recovery
def identifiable(v, m, L, seed):
    """The first grammar from ``seed`` on that meets the recovery theorem's assumptions.

    Balance: every symbol of every level occurs (a symbol that no production
    of the level above uses leaves v - 1 classes, and v clusters must split
    one of them). Separation: at every level below the root, the exact cousin
    contexts of any two parents differ (in small grammars two top symbols can
    have identical contexts, and then no amount of data separates them).
    Neither is a failure of the learner; the exact module checks both.
    """
    while True:
        rhm = RHM(v, m, 2, L, seed=seed)
        balance = all((p.sum(axis=0) > 0).all() for p in exact.marginals(rhm).values())
        if balance and all(min_gap(rhm, level) > 0 for level in range(1, L)):
            return rhm
        seed += 1


def min_gap(rhm, level):
    """The smallest squared distance between the pooled cousin contexts of two parents of ``level``."""
    gaps = exact.pooled_parent_gaps(rhm, level, cousin_targets)
    return gaps[~np.eye(len(gaps), dtype=bool)].min()


@pytest.mark.parametrize("v, m, L, seed", [(8, 2, 3, 0), (8, 3, 4, 1), (12, 3, 3, 2), (8, 2, 5, 3), (6, 2, 4, 4)])
def test_ilc_recovers_every_level_at_64_v_m3(v, m, L, seed):
    rhm = identifiable(v, m, L, seed)
    _, test, codes = run(ILC, rhm, 64 * v * m**3, seed=seed)
    for level in range(1, L):
        assert level_accuracy(test.levels[level], codes[level]) == 1.0, f"level {level}"


@pytest.mark.parametrize("method", ["single", "spectral"])
def test_ilc_recovers_the_tree_with_other_clustering_methods(method):
    rhm = identifiable(8, 2, 4, seed=0)
    _, test, codes = run(ILC, rhm, 64 * 8 * 2**3, method=method)
    assert all(level_accuracy(test.levels[level], codes[level]) == 1.0 for level in codes)


@pytest.mark.parametrize("context", ILC_CONTEXTS)
def test_every_ilc_context_recovers_the_tree(context):
    rhm = identifiable(8, 2, 4, seed=5)
    _, test, codes = run(ILC, rhm, 64 * 8 * 2**3, context=context)
    assert all(level_accuracy(test.levels[level], codes[level]) == 1.0 for level in codes)


@pytest.mark.parametrize("context", ["leaf_tuples", "leaf_symbols"])
def test_token_clustering_recovers_small_grammars_at_large_P(context):
    rhm = identifiable(8, 2, 4, seed=6)
    _, test, codes = run(TokenClustering, rhm, 20_000, context=context)
    assert all(level_accuracy(test.levels[level], codes[level]) == 1.0 for level in codes)


def test_supervised_clustering_recovers_levels_and_root_at_large_P():
    rhm = identifiable(6, 2, 3, seed=7)
    _, test, codes = run(SupervisedClustering, rhm, 20_000)
    for level in range(1, rhm.L):
        assert level_accuracy(test.levels[level], codes[level]) == 1.0
    assert np.mean(codes[rhm.L][:, 0] == test.labels) == 1.0


@pytest.mark.parametrize("cls", [TokenClustering, ILC])
def test_near_chance_at_tiny_P(cls):
    # With two training samples (the fewest that fit accepts) the learner has seen
    # at most 2 s**(L-1) of the v*m grammatical tuples. Only the nodes whose tuple it has seen can be
    # coded better than chance, so the accuracy of level 1 is at most chance
    # plus the fraction of test tuples seen in training. Chance is 1/v plus the
    # bias of the best matching on N independent codes, of order
    # sqrt(2 log(v) / N) (a maximum over v! matchings of sums of noisy counts);
    # we allow 4 sqrt(log(v) / N).
    rhm = RHM(32, 4, 2, 3, seed=8)
    learner, test, codes = run(cls, rhm, cls.min_samples, n_test=5000)
    N = codes[1].size
    seen = 1 - learner.unseen_fraction(test.tokens)[1]
    bound = 1 / rhm.v + 4 * np.sqrt(np.log(rhm.v) / N) + seen
    assert level_accuracy(test.levels[1], codes[1]) <= bound
    assert bound < 0.25, "the test needs the bound to be far from 1"


def test_auto_alphabet_finds_the_used_symbols():
    # In this grammar one level-3 symbol is used by no production of level 4,
    # so level 3 has 5 classes, not v = 6: with v clusters one class is split,
    # while the estimate finds 5 at large P and recovers the level exactly.
    rhm = RHM(6, 2, 2, 5, seed=3)
    used = {level: int((p.sum(axis=0) > 0).sum()) for level, p in exact.marginals(rhm).items()}
    assert used[3] == 5 and all(used[level] == 6 for level in (1, 2, 4))
    fixed, test, codes = run(ILC, rhm, 30_000, seed=3)
    assert level_accuracy(test.levels[3], codes[3]) < 0.95
    auto, test, codes = run(ILC, rhm, 30_000, seed=3, n_clusters="auto")
    assert {level: auto.alphabets_[level] for level in range(1, 5)} == {1: 6, 2: 6, 3: 5, 4: 6}
    assert all(level_accuracy(test.levels[level], codes[level]) == 1.0 for level in codes)


def test_auto_alphabet_underestimates_below_the_sample_complexity():
    # Below P ~ v m^3 the noise hides some gaps, and the estimate is too small.
    rhm = identifiable(16, 4, 3, seed=0)
    learner, _, _ = run(ILC, rhm, 300, n_clusters="auto")
    assert learner.alphabets_[1] < 16


def test_ilc_with_probe_reads_the_root_from_few_labels():
    # The probe needs each of the n_c * m top tuples once with its label: with
    # 20 n_c m labelled samples (a top tuple, of probability about 1/(n_c m),
    # is missed with probability about exp(-20)), the root is exact; the levels below come from ILC alone.
    rhm = identifiable(8, 2, 3, seed=10)
    n_labelled = 20 * rhm.n_classes * rhm.m
    learner, test, codes = run(ILCWithProbe, rhm, 64 * 8 * 2**3, n_labelled=n_labelled)
    assert np.mean(codes[rhm.L][:, 0] == test.labels) == 1.0
    _, _, plain = run(ILC, rhm, 64 * 8 * 2**3)
    assert all(np.array_equal(plain[level], codes[level]) for level in plain)


# -------------------------------------------------------------- root probe
def test_root_probe_learns_the_table():
    rhm = RHM(6, 2, 2, 2, seed=9)
    train, test = rhm.sample(2000, seed=0), rhm.sample(500, seed=1)
    probe = RootProbe(rhm.v, rhm.s, rhm.n_classes).fit(train.levels[1], train.labels)
    assert np.mean(probe.predict(test.levels[1]) == test.labels) == 1.0
    with pytest.raises(RuntimeError, match="not fitted"):
        RootProbe(6, 2, 6).predict(test.levels[1])
    with pytest.raises(ValueError, match=r"top_codes must have shape \(P, s = 2\)"):
        probe.predict(test.tokens)
    with pytest.raises(ValueError, match="labels must hold values in"):
        RootProbe(6, 2, 3).fit(train.levels[1], train.labels + 3)


# --------------------------------------------------------------- validation
@pytest.mark.parametrize("cls", CLUSTERING)
def test_inputs_inconsistent_with_the_grammar_shape(cls):
    rhm = RHM(6, 2, 2, 3, seed=0)
    sample = rhm.sample(50, seed=0)
    learner = cls(v=6, s=2, L=3)
    with pytest.raises(ValueError, match=r"tokens must have shape \(P, s\*\*L = 8\)"):
        learner.fit(np.zeros((5, 16), dtype=int), sample.labels[:5])
    with pytest.raises(ValueError, match=r"tokens must hold values in \[0, 6\)"):
        learner.fit(np.full((5, 8), 6), sample.labels[:5])
    with pytest.raises(TypeError, match="tokens must hold integers"):
        learner.fit(np.zeros((5, 8)), sample.labels[:5])
    with pytest.raises(RuntimeError, match="not fitted"):
        cls(v=6, s=2, L=3).transform(sample.tokens)
    with pytest.raises(ValueError, match=r"tokens must have shape \(P, s\*\*L = 16\) for s=2, L=4"):
        cls(v=6, s=2, L=4).fit(sample.tokens, sample.labels)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(context="tokens"), ValueError, "context must be one of"),
        (dict(method="dbscan"), ValueError, "method must be one of kmeans, single, spectral"),
        (dict(n_init=0), ValueError, "n_init must be >= 1"),
        (dict(n_clusters=1), ValueError, "n_clusters must be >= 2"),
        (dict(n_clusters="many"), ValueError, "n_clusters must be an integer >= 2 or 'auto'"),
        (dict(max_clusters=1), ValueError, "max_clusters must be >= 2"),
        (dict(v=1), ValueError, "v must be >= 2"),
        (dict(L=0), ValueError, "L must be >= 1"),
        (dict(seed=-2), ValueError, "seed must be >= 0"),
    ],
)
def test_bad_options(options, error, match):
    kwargs = dict(v=6, s=2, L=3) | options
    with pytest.raises(error, match=match):
        ILC(**kwargs)


def test_supervised_clustering_needs_labels():
    rhm = RHM(6, 2, 2, 3)
    sample = rhm.sample(20, seed=0)
    with pytest.raises(ValueError, match="needs labels"):
        SupervisedClustering(v=6, s=2, L=3).fit(sample.tokens)
    with pytest.raises(ValueError, match=r"labels must have shape \(P,\) = \(20,\)"):
        SupervisedClustering(v=6, s=2, L=3).fit(sample.tokens, sample.labels[:5])
