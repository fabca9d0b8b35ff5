"""Tests of lpbook.exact against counts in large samples (lpbook.empirical).

Fixed seeds; every tolerance comes from the sample size (conftest.assert_frequencies_match).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from scipy.stats import chi2_contingency

from lpbook import RHM, empirical, exact
from lpbook.tree import Node, cousin_targets, random_steps, token_targets

from conftest import assert_frequencies_match, grammar_params

P = 200_000


@pytest.fixture(scope="module", params=["uniform", "zipf"])
def rhm(request):
    if request.param == "zipf":  # skewed production probabilities
        return RHM(5, 3, 2, 3, n_classes=3, seed=7, rule_probs="zipf", zipf_a=1.0)
    return RHM(5, 2, 2, 3, n_classes=3, seed=7)


@pytest.fixture(scope="module")
def big(rhm):
    return rhm.sample(P, seed=1)


@given(grammar_params())
def test_transitions_and_marginals_are_distributions(params):
    v, m, s, L, n_classes, seed = params
    rhm = RHM(v, m, s, L, n_classes=n_classes, seed=seed)
    for level in range(1, L + 1):
        T = exact.transitions(rhm, level)
        assert T.shape == (s, rhm.alphabet_size(level), v)
        assert np.allclose(T.sum(axis=2), 1)
    for level, p in exact.marginals(rhm).items():
        assert p.shape == (s ** (L - level), rhm.alphabet_size(level))
        assert np.allclose(p.sum(axis=1), 1)


@given(grammar_params(max_L=2))
def test_node_joint_is_consistent(params):
    v, m, s, L, n_classes, seed = params
    rhm = RHM(v, m, s, L, n_classes=n_classes, seed=seed)
    marg = exact.marginals(rhm)
    nodes = [Node(l, p) for l in range(L + 1) for p in range(s ** (L - l))]
    for a in nodes[:: max(1, len(nodes) // 6)]:
        for b in nodes:
            J = exact.node_joint(rhm, a, b)
            assert np.allclose(J.sum(axis=1), marg[a.level][a.pos])
            assert np.allclose(J.sum(axis=0), marg[b.level][b.pos])
            assert np.allclose(J, exact.node_joint(rhm, b, a).T)
            if a == b:
                assert np.allclose(J, np.diag(marg[a.level][a.pos]))


def test_marginals_match_samples(rhm, big):
    for level, p in exact.marginals(rhm).items():
        for pos in range(p.shape[0]):
            counts = np.bincount(big.levels[level][:, pos], minlength=p.shape[1])
            assert_frequencies_match(counts / P, p[pos], P)


@pytest.mark.parametrize(
    "a, b",
    [((0, 0), (0, 1)), ((0, 0), (0, 7)), ((0, 3), (0, 4)), ((1, 0), (0, 6)), ((0, 2), (2, 1)), ((0, 5), (3, 0)), ((1, 1), (1, 2))],
)
def test_node_joint_matches_samples(rhm, big, a, b):
    x, n_x = empirical.node_values(rhm, big, a)
    y, n_y = empirical.node_values(rhm, big, b)
    counts = empirical.pair_counts(x, y, n_x, n_y)
    assert_frequencies_match(counts / P, exact.node_joint(rhm, a, b), P)


@pytest.mark.parametrize(
    "node, target, joint",
    [
        ((1, 0), (1, 1), True),  # the cousin tuple, jointly
        ((1, 0), (0, 2), False),  # one cousin symbol
        ((1, 1), (1, 3), True),  # a leaf tuple of a farther subtree
        ((2, 0), (1, 2), True),  # token context of a level-1 tuple
        ((2, 1), (3, 0), False),  # the root: supervision
        ((1, 2), (2, 0), False),  # a great-uncle
    ],
)
def test_parent_context_matches_samples(rhm, big, node, target, joint):
    x, _ = empirical.node_values(rhm, big, node)
    n_parent = np.bincount(x, minlength=rhm.alphabet_size(node[0]))
    est = empirical.parent_context(rhm, big, node, target, joint=joint)
    true = exact.parent_context(rhm, node, target, joint=joint)
    assert_frequencies_match(np.nan_to_num(est), np.nan_to_num(true), n_parent[:, None])


def test_context_rows_are_synonym_invariant_in_samples(rhm, big):
    # Empirically, given the *tuple* (not its parent), the cousin-tuple context of
    # two synonyms has the same distribution: a chi-square homogeneity test per
    # parent, which must not reject at the Bonferroni level 1e-3 / n_parents.
    node, target = Node(1, 0), Node(1, 1)
    t, n_t = empirical.node_values(rhm, big, node, joint=True)
    z, n_z = empirical.node_values(rhm, big, target, joint=True)
    counts = empirical.pair_counts(t, z, n_t, n_z)
    exact_rows = exact.context(rhm, node, target)
    for a in range(rhm.alphabet_size(1)):
        rows = counts[a * rhm.m : (a + 1) * rhm.m]
        assert np.allclose(exact_rows[a * rhm.m], exact_rows[(a + 1) * rhm.m - 1], equal_nan=True)
        keep = rows.sum(axis=0) > 0
        if rows.sum(axis=1).min() == 0 or keep.sum() < 2:
            continue
        assert chi2_contingency(rows[:, keep]).pvalue > 1e-3 / rhm.alphabet_size(1)


@pytest.mark.parametrize(
    "level, targets, joint",
    [(1, cousin_targets, True), (2, cousin_targets, True), (2, token_targets, True), (1, cousin_targets, False)],
)
def test_pooled_context_matches_samples(rhm, big, level, targets, joint):
    counts = empirical.pooled_counts(rhm, big, level, targets, joint=joint)
    n_rows = counts.sum(axis=1)
    est = counts / np.maximum(n_rows, 1)[:, None]
    true = exact.pooled_context(rhm, level, targets, joint=joint)
    assert true.shape == counts.shape
    assert_frequencies_match(est, np.nan_to_num(true), n_rows[:, None])


def test_pooled_parent_gaps_are_the_distances_between_parent_rows(rhm):
    pooled = exact.pooled_context(rhm, 1, cousin_targets)
    gaps = exact.pooled_parent_gaps(rhm, 1, cousin_targets)
    assert gaps.shape == (rhm.v, rhm.v) and np.allclose(np.diag(gaps), 0)
    a, b = 1, 3
    assert np.isclose(gaps[a, b], ((pooled[a * rhm.m] - pooled[b * rhm.m]) ** 2).sum())
    # synonyms share one pooled row
    assert np.allclose(pooled[a * rhm.m], pooled[a * rhm.m + 1])


@pytest.mark.parametrize("rule_probs", ["uniform", "zipf"])
def test_three_way_branching_matches_samples(rule_probs):
    law = dict(rule_probs="zipf", zipf_a=1.5) if rule_probs == "zipf" else {}
    rhm = RHM(4, 3, 3, 2, n_classes=3, seed=2, **law)
    big = rhm.sample(P, seed=4)
    for level, p in exact.marginals(rhm).items():
        for pos in range(p.shape[0]):
            assert_frequencies_match(np.bincount(big.levels[level][:, pos], minlength=p.shape[1]) / P, p[pos], P)
    for a, b in [((0, 0), (0, 2)), ((0, 1), (0, 5)), ((1, 0), (1, 2)), ((0, 4), (2, 0))]:
        x, n_x = empirical.node_values(rhm, big, a)
        y, n_y = empirical.node_values(rhm, big, b)
        assert_frequencies_match(empirical.pair_counts(x, y, n_x, n_y) / P, exact.node_joint(rhm, a, b), P)
    node, target = Node(1, 0), Node(1, 2)
    x, _ = empirical.node_values(rhm, big, node)
    n_parent = np.bincount(x, minlength=rhm.v)
    est = empirical.parent_context(rhm, big, node, target, joint=True)
    assert_frequencies_match(np.nan_to_num(est), np.nan_to_num(exact.parent_context(rhm, node, target)), n_parent[:, None])


def test_slot_context_matches_samples(rhm, big):
    """P(slot, tuple, cousin tuple) against the pooled counts of every (node, sibling) pair of a large sample."""
    s, m = rhm.s, rhm.m
    for level in range(1, rhm.L):
        joint = exact.slot_context(rhm, level)
        assert joint.shape == (s * (s - 1), rhm.v * m, rhm.v * m) and np.isclose(joint.sum(), 1)
        counts = np.zeros_like(joint)
        for pos in range(rhm.n_positions(level)):
            node = Node(level, pos)
            t, n_t = empirical.node_values(rhm, big, node, joint=True)
            for r, sibling in enumerate(cousin_targets(node, s)):
                z, n_z = empirical.node_values(rhm, big, sibling, joint=True)
                counts[(pos % s) * (s - 1) + r] += empirical.pair_counts(t, z, n_t, n_z)
        total = counts.sum()
        assert_frequencies_match(counts / total, joint, total)


def test_place_distribution_and_disjoint_pairs():
    """Places from the rules: a symbol occurs at place i exactly when some production of the level above has it there."""
    rhm = RHM(8, 2, 2, 3, seed=0)
    for level in (1, 2):
        places = exact.place_distribution(rhm, level)
        assert places.shape == (rhm.v, rhm.s) and np.allclose(np.nansum(places, axis=1), 1)
        rules = rhm.rules[level + 1]  # (n_above, m, s); every symbol above occurs (uniform rules)
        at = np.zeros((rhm.v, rhm.s), dtype=bool)
        for i in range(rhm.s):
            at[np.unique(rules[:, :, i]), i] = True
        np.testing.assert_array_equal(np.nan_to_num(places) > 0, at)
        pairs = exact.disjoint_place_pairs(rhm, level)
        expected = [(a, b) for a in range(rhm.v) for b in range(a + 1, rhm.v)
                    if at[a].any() and at[b].any() and not (at[a] & at[b]).any()]
        assert [tuple(p) for p in pairs] == expected
    with pytest.raises(ValueError, match="level must be < L"):
        exact.place_distribution(rhm, 3)


@pytest.mark.parametrize(("v", "m", "expected"), [(8, 2, 23), (16, 2, 71), (8, 3, 2), (16, 3, 11)])
def test_disjoint_place_pairs_are_common_at_small_m(v, m, expected):
    """Over 50 grammars x 2 levels at L = 3, the (grammar, level) pairs with two symbols that never share a place."""
    having = sum(len(exact.disjoint_place_pairs(RHM(v, m, 2, 3, seed=seed), level)) > 0
                 for seed in range(50) for level in (1, 2))
    assert having == expected


def test_gap_profile_counts_random_steps():
    rhm = RHM(16, 4, 2, 4, seed=0)
    profile = exact.gap_profile(rhm, (1, 0))
    cousin = next(g for g in profile if g.target == Node(1, 1) and g.joint)
    root = next(g for g in profile if g.target == Node(4, 0))
    assert cousin.k == 2 and root.k == 3
    assert all(g.k == random_steps(Node(1, 0), g.target, 2) + g.joint for g in profile)
    # The squared gap falls with every random step, by about a factor m.
    by_k = {}
    for g in profile:
        by_k.setdefault(g.k, []).append(g.mean)
    means = [np.mean(by_k[k]) for k in sorted(by_k)]
    assert all(later < earlier for earlier, later in zip(means, means[1:]))


def test_correlation_matches_samples(rhm, big):
    for a, b in [((0, 0), (0, 1)), ((0, 0), (0, 4))]:
        c_exact, c_emp = exact.correlation(rhm, a, b), empirical.correlation(rhm, big, a, b)
        # The empirical norm adds noise of size about sqrt(cells / P).
        assert abs(c_emp - c_exact) < 5 * np.sqrt(rhm.v**2 / P)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda r: exact.node_joint(r, (4, 0), (0, 0)), ValueError, r"a.level must be <= L = 3"),
        (lambda r: exact.node_joint(r, (0, 8), (0, 0)), ValueError, r"a.pos must be < s\*\*\(L - level\) = 8"),
        (lambda r: exact.node_joint(r, 3, (0, 0)), TypeError, r"a must be a \(level, pos\) pair"),
        (lambda r: exact.parent_context(r, (2, 0), (1, 1)), ValueError, "outside the subtree"),
        (lambda r: exact.parent_context(r, (1, 0), (3, 0)), ValueError, "ancestor"),
        (lambda r: exact.parent_context(r, (1, 0), (0, 4)), ValueError, "level-0 target has no tuple"),
        (lambda r: exact.context(r, (0, 0), (0, 4), joint=False), ValueError, "node.level must be >= 1"),
        (lambda r: exact.pooled_context(r, 0, cousin_targets), ValueError, "level must be >= 1"),
        (lambda r: exact.pooled_context(r, 3, cousin_targets), ValueError, "level must be < L = 3"),
        (lambda r: exact.pooled_context(r, 2, lambda node, s: []), ValueError, "no context node"),
        (lambda r: exact.slot_context(r, 3), ValueError, "level must be < L = 3"),
        (lambda r: exact.slot_context(r, 0), ValueError, "level must be >= 1"),
    ],
)
def test_bad_arguments(rhm, call, error, match):
    with pytest.raises(error, match=match):
        call(rhm)


def test_synonym_distances_follow_the_noise_and_level_off_at_the_gap():
    """Synonyms' rows differ by noise alone, non-synonyms' by the gap plus noise (Chapter 1's figure)."""
    rhm = RHM(8, 3, 2, 3, seed=0)
    train = rhm.sample(3000, seed=1)
    grid = (10, 30, 100, 300, 1000, 3000)
    d = empirical.synonym_distances(rhm, train, 1, cousin_targets, grid)
    parents = np.repeat(np.arange(8), 3)  # the parent of tuple a*m + j
    truth = exact.pooled_context(rhm, 1, cousin_targets)
    assert d.gap == pytest.approx(np.median(exact.squared_gaps(truth)[parents[:, None] != parents[None, :]]))
    # A median over the 24 pairs of synonyms of a noise whose relative spread is about sqrt(2/n) per pair:
    # within a factor 1.5 of the expected noise once every tuple is seen tens of times (P >= 100).
    ratio = d.synonyms[2:] / d.noise[2:]
    assert np.all((ratio > 1 / 1.5) & (ratio < 1.5)), ratio
    assert np.all(np.diff(d.synonyms) < 0)  # nested sets: the noise falls with P
    # Non-synonyms: the gap plus the same noise.
    assert (d.others[-1] - d.noise[-1]) / d.gap == pytest.approx(1, abs=0.2)
    assert grid[0] < d.crossing() < grid[-1]
    # The largest P is the plain computation on the whole sample.
    counts = empirical.pooled_counts(rhm, train, 1, cousin_targets)
    rows = counts / counts.sum(axis=1, keepdims=True)
    same = (parents[:, None] == parents[None, :]) & ~np.eye(24, dtype=bool)
    assert d.synonyms[-1] == pytest.approx(np.median(exact.squared_gaps(rows)[same]))
    with pytest.raises(ValueError, match="P_grid must increase"):
        empirical.synonym_distances(rhm, train, 1, cousin_targets, (100, 30))
    with pytest.raises(ValueError, match="within the sample"):
        empirical.synonym_distances(rhm, train, 1, cousin_targets, (100, 5000))
    with pytest.raises(ValueError, match="start above the crossing"):
        empirical.synonym_distances(rhm, train, 1, cousin_targets, (1000, 3000)).crossing()
