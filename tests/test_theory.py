"""Tests of lpbook.theory: the signal lemma against exact gaps averaged over random grammars."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from lpbook import RHM, exact
from lpbook.theory import inverse_occupancy, pair_gap
from lpbook.tree import Node, random_steps


@pytest.mark.parametrize("v, m, s, target, joint", [(4, 2, 2, (1, 1), False), (4, 2, 2, (0, 2), False), (5, 2, 2, (1, 1), True), (3, 2, 3, (0, 4), False)])
def test_pair_gap_is_the_mean_exact_gap(v, m, s, target, joint):
    # The lemma is exact for the RHM when the parent node is the root. Average
    # the exact gap of a child of the root over many grammars and compare within
    # four standard errors of that average.
    L, node = 2, Node(1, 0)
    gaps = []
    for seed in range(1500):
        rhm = RHM(v, m, s, L, seed=seed)
        pairwise = exact.squared_gaps(exact.parent_context(rhm, node, target, joint=joint))
        off = pairwise[~np.eye(v, dtype=bool)]
        gaps.append(off[np.isfinite(off)])
    gaps = np.concatenate(gaps)
    k = random_steps(node, Node(*target), s)
    predicted = pair_gap(v, m, s, k, joint=joint)
    assert abs(gaps.mean() - predicted) < 4 * gaps.std() / np.sqrt(gaps.size)


def test_inverse_occupancy_limits():
    # Two productions over two symbols, both used: each is used exactly once;
    # for large v it approaches E[1/N | N >= 1] of a Poisson(m) variable.
    assert inverse_occupancy(2, 1, 2, n_above=2) == pytest.approx(1.0)  # both symbols used once each
    poisson = np.arange(1, 200)
    from scipy.stats import poisson as law

    weights = law.pmf(poisson, 3)
    assert inverse_occupancy(400, 3, 2) == pytest.approx(np.sum(weights / poisson) / np.sum(weights), rel=0.02)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pair_gap(8, 2, 2, 0)


# ------------------------------------------------------- level statistics and the predicted P*
from lpbook import ILC, level_accuracy  # noqa: E402
from lpbook.theory import (  # noqa: E402
    CHOICE_FLOOR, CHOICE_SPREAD, MODELS, _choice_table, level_statistics, predict_pstars, predicted_accuracy, predicted_pstar,
    required_occurrences, search_loss, seed_trials, seeding_misses, tuple_occurrences, tuple_pstar,
)
from lpbook.tree import cousin_targets  # noqa: E402


def test_level_statistics_are_exact():
    rhm = RHM(8, 3, 2, 3, seed=1)
    stats = level_statistics(rhm, 1)
    # One tuple of parent a occurs occurrences[a] times per sample; the m tuples of all parents fill the N_1 positions.
    assert stats.occurrences.sum() * rhm.m == pytest.approx(rhm.n_positions(1))
    # Against counts in a sample: the occurrences of each parent's tuples, per sample.
    P = 20000
    sample = rhm.sample(P, seed=3)
    counted = np.bincount(sample.levels[1].ravel(), minlength=rhm.v) / P / rhm.m
    used = exact.marginals(rhm)[1].sum(axis=0) > 0
    sd = np.sqrt(rhm.n_positions(1) * stats.occurrences * rhm.m / P) / rhm.m  # Poisson-like bound per parent
    assert np.all(np.abs(counted[used] - stats.occurrences) < 5 * sd + 1e-9)
    q = exact.pooled_context(rhm, 1, cousin_targets)[:: rhm.m][used]
    assert np.allclose(stats.purity, (q**2).sum(axis=1))
    assert np.allclose(stats.gaps, stats.gaps.T) and np.allclose(np.diag(stats.gaps), 0)
    brute = [min(((q[a] - q[b]) ** 2).sum() for b in range(len(q)) if b != a) for a in range(len(q))]
    assert np.allclose(stats.nearest_gap, brute)


@pytest.mark.parametrize("model", MODELS)
def test_predicted_pstar_is_where_predicted_accuracy_crosses(model):
    stats = level_statistics(RHM(16, 3, 2, 3, seed=0), 2)
    for threshold in (0.5, 0.9, 0.99):
        p = predicted_pstar(stats, threshold, model=model)
        assert predicted_accuracy(stats, p, model=model) >= threshold > predicted_accuracy(stats, 0.999 * p, model=model)
    assert predicted_pstar(stats, 0.9, model=model) <= predicted_pstar(stats, 0.99, model=model)
    assert np.all(required_occurrences(stats) > 8)
    with pytest.raises(ValueError, match="threshold"):
        predicted_pstar(stats, 1.5)


def _ilc_accuracy_at(rhm, level, P):
    """ILC's accuracy at `level` (1, on L = 2 grammars) after training on P samples, on 2,000 test samples."""
    test = rhm.sample(2000, seed=1)
    learner = ILC(v=rhm.v, s=rhm.s, L=rhm.L, seed=0).fit(rhm.sample(int(P), seed=2).tokens)
    return level_accuracy(test.levels[level], learner.transform(test.tokens)[level])


@pytest.mark.parametrize("rule_probs", ["uniform", "zipf"])
def test_the_prediction_brackets_ilc(rule_probs):
    # The prediction is a scale, not a bound: ILC must fail well below it and succeed well above it.
    # Under uniform rules predicted_pstar and tuple_pstar agree (tested below); under Zipf rules the
    # prediction is tuple by tuple.
    rhm = RHM(16, 3, 2, 2, seed=0, rule_probs=rule_probs, zipf_a=1.5 if rule_probs == "zipf" else None)
    p = tuple_pstar(rhm, 1, 0.9) if rule_probs == "zipf" else predicted_pstar(level_statistics(rhm, 1), 0.9)
    assert _ilc_accuracy_at(rhm, 1, p / 8) < 0.9 <= _ilc_accuracy_at(rhm, 1, 8 * p)


def test_zero_gap_never_separates():
    stats = level_statistics(RHM(8, 3, 2, 3, seed=1), 1)
    twin = type(stats)(stats.m, stats.slots, stats.occurrences, stats.purity, np.zeros_like(stats.gaps))
    assert np.all(np.isinf(required_occurrences(twin)))
    assert predicted_pstar(twin, 0.9) == float("inf")
    assert predicted_pstar(twin, 0.9, model="choice") == float("inf")  # no gain for the greedy choice either


def test_the_choice_model_is_where_its_accuracy_crosses():
    stats = level_statistics(RHM(16, 6, 2, 3, seed=0), 2)
    for threshold in (0.9, 0.99):
        p = predicted_pstar(stats, threshold, model="choice")
        acc = predicted_accuracy(stats, np.array([0.999 * p, p]), model="choice")
        assert acc[1] >= threshold > acc[0]
        # past its floor, held back by the search only
        assert np.all(p * stats.occurrences >= CHOICE_FLOOR) and search_loss(stats, 0.999 * p, spread=CHOICE_SPREAD) > 0
    assert predicted_pstar(stats, 0.9, model="choice", search=False) == pytest.approx(CHOICE_FLOOR / stats.occurrences.min())
    pstars = predict_pstars(16, 6, 2, 3, (0.9,), [0], model="choice")
    assert pstars.shape == (1, 1) and pstars[0, 0] == predicted_pstar(stats, 0.9, model="choice")
    # spread 0 is the plain chain: it never errs in its choice, so it predicts no more than the greedy choice
    assert predicted_pstar(stats, 0.9, spread=0.0) < predicted_pstar(stats, 0.9)
    assert predicted_pstar(stats, 0.9, model="rows", spread=CHOICE_SPREAD) > predicted_pstar(stats, 0.9, model="rows")
    with pytest.raises(ValueError, match="spread"):
        predicted_pstar(stats, 0.9, spread=-1.0)
    with pytest.raises(ValueError, match="model"):
        predicted_pstar(stats, 0.9, model="token")
    with pytest.raises(ValueError, match="model"):
        predicted_accuracy(stats, 1000.0, model=None)


# ------------------------------------------------------- the prediction tuple by tuple (skewed rules)


@pytest.mark.parametrize("model", MODELS)
def test_tuple_pstar_equals_predicted_pstar_under_uniform_rules(model):
    rhm = RHM(16, 3, 2, 3, seed=0)
    for level in (1, 2):
        assert np.allclose(tuple_occurrences(rhm, level), level_statistics(rhm, level).occurrences[:, None])
        for threshold in (0.5, 0.9, 0.99):
            assert tuple_pstar(rhm, level, threshold, model=model) == pytest.approx(
                predicted_pstar(level_statistics(rhm, level), threshold, model=model))


def test_tuple_occurrences_follow_the_production_law():
    rhm = RHM(8, 3, 2, 3, seed=1, rule_probs="zipf", zipf_a=1.5)
    w = tuple_occurrences(rhm, 1)
    used = exact.marginals(rhm)[1].sum(axis=0) > 0
    assert np.allclose(w.sum(axis=1), exact.marginals(rhm)[1].sum(axis=0)[used])
    assert np.allclose(w / w.sum(axis=1, keepdims=True), rhm.production_probs[1][used])
    assert w.sum() == pytest.approx(rhm.n_positions(1))


@pytest.mark.parametrize("model", MODELS)
def test_tuple_pstar_is_where_the_tuple_accuracy_crosses(model):
    rhm = RHM(16, 3, 2, 3, seed=0, rule_probs="zipf", zipf_a=1.0)
    w = tuple_occurrences(rhm, 2)
    stats = level_statistics(rhm, 2)
    need, spread = (required_occurrences(stats)[:, None], 0.0) if model == "rows" else (CHOICE_FLOOR, CHOICE_SPREAD)

    def accuracy(P):  # brute force: every tuple below the occurrences it needs costs 0.75 of its share; then the search
        return 1 - 0.75 * (w * (P * w < need)).sum() / w.sum() - search_loss(stats, P, spread=spread)

    for threshold in (0.5, 0.9, 0.99):
        p = tuple_pstar(rhm, 2, threshold, model=model)
        assert accuracy(p) >= threshold > accuracy(0.999 * p)


def test_search_term_makes_exact_recovery_grow_with_v():
    # With the search term the cost of accuracy 0.99 relative to 0.9 grows with v (Chapter 3); without it,
    # a predicted P* would be the row-noise one, which the search term can only raise.
    def ratio(v, model):
        stats = [level_statistics(RHM(v, 3, 2, 3, seed=seed), 2) for seed in range(3)]
        return np.median([predicted_pstar(st, 0.99, model=model) / predicted_pstar(st, 0.9, model=model) for st in stats])

    for model in MODELS:
        assert ratio(64, model) > 1.5 * ratio(16, model)
    stats = level_statistics(RHM(64, 3, 2, 3, seed=0), 2)
    p = predicted_pstar(stats, 0.99, model="rows")
    assert search_loss(stats, 0.999 * p) > 0
    assert np.all(p * stats.occurrences >= required_occurrences(stats))  # past the row noise, held back by the search
    rows_only = predicted_pstar(stats, 0.99, search=False, model="rows")
    assert rows_only < p
    assert predicted_accuracy(stats, rows_only, search=False, model="rows") >= 0.99 > predicted_accuracy(
        stats, rows_only, model="rows")


def test_skewed_rules_cost_more_for_exact_recovery():
    # Same rules, same ranks: only the production law differs. The rarest tuples need more samples.
    flat, skewed = (RHM(16, 3, 2, 3, seed=0, rule_probs="zipf", zipf_a=a) for a in (0.0, 1.5))
    assert tuple_pstar(skewed, threshold=0.99) > 1.5 * tuple_pstar(flat, threshold=0.99)


def test_tuple_pstar_rejects_bad_input():
    rhm = RHM(8, 2, 2, 3, seed=0)
    with pytest.raises(TypeError, match="rhm"):
        tuple_pstar("grammar")
    with pytest.raises(ValueError, match="level"):
        tuple_pstar(rhm, 3)
    with pytest.raises(ValueError, match="level"):
        tuple_occurrences(rhm, 0)
    with pytest.raises(ValueError, match="threshold"):
        tuple_pstar(rhm, threshold=0)


# ------------------------------------------------------- search against information: the oracle's diagnosis
from sklearn.cluster import KMeans  # noqa: E402

from lpbook.metrics import class_recall  # noqa: E402
from lpbook.oracle import _inertia, top_step_accuracy, top_step_outcome  # noqa: E402


def test_class_recall_counts_each_true_symbol_under_the_best_matching():
    true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    learned = np.array([5, 5, 5, 7, 7, 7, 9, 9, -1, 5])  # 5 -> 0, 7 -> 1, 9 -> 2
    assert np.allclose(class_recall(true, learned), [0.75, 1.0, 0.5])
    assert np.isnan(class_recall(np.array([0, 2]), np.array([1, 1]))[1])
    assert level_accuracy(true, learned) == pytest.approx(np.sum(class_recall(true, learned) * [4, 2, 4]) / 10)
    with pytest.raises(ValueError, match="same size"):
        class_recall(true, learned[:3])


def test_inertia_is_kmeans_objective():
    rng = np.random.default_rng(0)
    X, w = rng.random((60, 5)), rng.integers(1, 9, 60).astype(float)
    model = KMeans(4, n_init=3, random_state=0).fit(X, sample_weight=w)
    assert _inertia(X, w, model.labels_) == pytest.approx(model.inertia_, rel=1e-6)


def test_kmeans_failures_near_exact_recovery_are_local_optima():
    # At v = 16, m = 4, P = 2 v m^3, Lloyd's algorithm from the true centres
    # recovers the level, with an objective no larger than the one k-means++
    # settles on; k-means++ loses at least one class in some seed.
    rhm_seeds = [RHM(16, 4, 2, 3, seed=seed) for seed in range(3)]
    P = 2 * 16 * 4**3
    known = [top_step_outcome(rhm, P, "true centres", seed=i) for i, rhm in enumerate(rhm_seeds)]
    searched = [top_step_outcome(rhm, P, "k-means++", seed=i) for i, rhm in enumerate(rhm_seeds)]
    assert all(k.accuracy > 0.99 and k.lost_classes == 0 for k in known)
    assert all(k.inertia <= s.inertia * (1 + 1e-9) for k, s in zip(known, searched))
    assert any(s.lost_classes > 0 for s in searched)
    assert searched[0].accuracy == top_step_accuracy(rhm_seeds[0], P, "k-means++", seed=0)
    with pytest.raises(ValueError, match="n_init"):
        top_step_outcome(rhm_seeds[0], P, "k-means++", n_init=0)


# ------------------------------------------------------- a model of k-means' search: the seeding chain
from sklearn.cluster import _kmeans  # noqa: E402

from lpbook.oracle import seeding_trace, unseeded_classes  # noqa: E402


def test_seed_trials_is_scikit_learns_rule():
    # The model counts scikit-learn's greedy candidates per seed; if scikit-learn changes its rule, the model must follow.
    assert "n_local_trials = 2 + int(np.log(n_clusters))" in inspect.getsource(_kmeans._kmeans_plusplus)
    assert [seed_trials(k) for k in (1, 2, 8, 16, 64)] == [2, 2, 4, 4, 6]
    with pytest.raises(ValueError, match="n_clusters"):
        seed_trials(0)


def test_seeding_misses_is_a_distribution_that_falls_with_P_and_restarts():
    stats = level_statistics(RHM(32, 4, 2, 3, seed=0), 2)
    P = 32 * 4**3 * np.array([0.5, 2, 8, 1e4])
    dist = seeding_misses(stats, P, n_init=1)
    assert dist.shape == (4, len(stats.purity) + 1)
    assert np.all(dist >= -1e-12) and np.allclose(dist.sum(axis=1), 1)
    mean = dist @ np.arange(dist.shape[1])
    assert np.all(np.diff(mean) < 0) and mean[0] > 1 and dist[-1, 0] > 0.99
    best = seeding_misses(stats, P[1], n_init=10)
    assert best @ np.arange(best.size) < mean[1]
    assert np.allclose(seeding_misses(stats, P[1]), best)  # ILC's ten restarts are the default
    with pytest.raises(ValueError, match="n_init"):
        seeding_misses(stats, P, n_init=0)


def test_search_loss_costs_the_median_misses():
    stats = level_statistics(RHM(64, 3, 2, 3, seed=0), 2)
    P = 64 * 27 * np.array([1.0, 4.0, 1e4])
    loss = search_loss(stats, P)
    at_least = np.cumsum(seeding_misses(stats, P)[:, ::-1], axis=1)[:, ::-1]
    median = (at_least[:, 1:] >= 0.5).sum(axis=1)
    assert median[0] > median[1] >= 0 and median[2] == 0 and loss[2] == 0
    # each unseeded class costs its own share plus half of a class
    share = stats.weights
    assert np.all(loss[:2] >= median[:2] * (share.min() + 0.5 / share.size) - 1e-12)
    assert np.all(loss[:2] <= median[:2] * (share.max() + 0.5 / share.size) + 1e-12)


@pytest.mark.parametrize("m", [3, 6])
def test_seeding_misses_match_kmeans_plusplus(m):
    # The chain against scikit-learn's k-means++ on the top step's real rows, one run each (n_init = 1), at
    # P = 4 v m^3. The chain is an approximation (Chapter 3 measures it within about 30%), so the mean
    # over runs must lie within 35% of it, plus three standard errors of that mean.
    v, runs = 16, 40
    for seed in (0, 1):
        rhm = RHM(v, m, 2, 3, seed=seed)
        P = 4 * v * m**3
        counted = unseeded_classes(rhm, P, runs, seed=seed)
        dist = seeding_misses(level_statistics(rhm, 2), P, n_init=1)
        model = dist @ np.arange(dist.size)
        assert abs(counted.mean() - model) <= 0.35 * model + 3 * counted.std(ddof=1) / np.sqrt(runs)


def test_choice_table_is_the_chance_that_a_seeded_candidate_wins():
    # Pr(max of t - k standard normals > a + max of k), against 200,000 draws: within four standard errors.
    t, draws = 4, 200_000
    table = _choice_table(t)
    assert np.all(table[0] == 1) and np.all(table[t] == 0)
    x = np.random.default_rng(0).standard_normal((draws, t))
    grid = np.linspace(0, 12, 481)
    for k in range(1, t):
        for a in (0.0, 0.5, 1.5):
            hit = (x[:, k:].max(axis=1) > a + x[:, :k].max(axis=1)).mean()
            assert abs(table[k][np.argmin(abs(grid - a))] - hit) <= 4 * np.sqrt(hit * (1 - hit) / draws) + 1e-3
    assert np.all(np.diff(table[1:t], axis=1) <= 1e-12)  # a larger gain, a rarer error


def test_the_greedy_choice_adds_misses_at_small_P():
    stats = level_statistics(RHM(16, 3, 2, 3, seed=0), 2)
    P = 16 * 27 * np.array([0.5, 8, 1e5])
    mean = {c: seeding_misses(stats, P, n_init=1, spread=c) @ np.arange(len(stats.purity) + 1) for c in (0, 1, 3)}
    assert np.allclose(seeding_misses(stats, P, n_init=1), seeding_misses(stats, P, n_init=1, spread=0))
    assert mean[0][0] < mean[1][0] < mean[3][0]  # a noisier choice passes over more unseeded classes
    assert mean[3][2] < 1e-3  # and none once the gain dwarfs the spread
    assert np.all(search_loss(stats, P, spread=3) >= search_loss(stats, P) - 1e-12)
    for bad, error in ((-1.0, ValueError), (float("nan"), ValueError), ("3", TypeError), (True, TypeError)):
        with pytest.raises(error, match="spread"):
            seeding_misses(stats, P, spread=bad)


def test_the_greedy_choice_counts_kmeans_plusplus_misses_at_small_P():
    # At P = v m^3 / 2 the plain chain undercounts k-means++'s unseeded classes (Chapter 3); with the greedy
    # choice's spread (set on Chapter 3's table, whose grammars are seeds 0-2) the mean over 40 runs of a grammar
    # outside that table must lie within 35% of the model, plus three standard errors.
    v, m, runs = 16, 3, 40
    rhm = RHM(v, m, 2, 3, seed=5)
    P = v * m**3 // 2
    counted = unseeded_classes(rhm, P, runs, seed=5)
    dist = seeding_misses(level_statistics(rhm, 2), P, n_init=1, spread=CHOICE_SPREAD)
    model = dist @ np.arange(dist.size)
    assert abs(counted.mean() - model) <= 0.35 * model + 3 * counted.std(ddof=1) / np.sqrt(runs)


@pytest.mark.parametrize("f", [0.5, 4])
def test_seeding_trace_is_scikit_learns_seeding(f):
    # Our traced copy of greedy k-means++ against scikit-learn's, on the same rows: the same mean number of
    # classes without a seed within four standard errors of the difference; and the exact identity between
    # the unseeded classes and the steps that seeded a class twice.
    rhm, runs = RHM(16, 3, 2, 3, seed=1), 60
    P = int(f * 16 * 27)
    traces = seeding_trace(rhm, P, runs, seed=1)
    ours = np.array([t.unseeded for t in traces])
    theirs = unseeded_classes(rhm, P, runs, seed=1)
    se = np.sqrt(ours.var(ddof=1) / runs + theirs.var(ddof=1) / runs)
    assert abs(ours.mean() - theirs.mean()) <= 4 * se + 1e-9
    assert all(t.unseeded == t.drawn_none + t.passed_over - (rhm.v - 16) for t in traces)  # all 16 classes present
    assert seeding_trace(rhm, P, 2, seed=1) == traces[:2]  # same seed, same runs


def test_seeding_trace_and_unseeded_classes_reject_bad_input():
    rhm = RHM(8, 2, 2, 3, seed=0)
    with pytest.raises(TypeError, match="rhm"):
        unseeded_classes("grammar", 100, 2)
    with pytest.raises(ValueError, match="n_runs"):
        unseeded_classes(rhm, 100, 0)
    with pytest.raises(ValueError, match="larger P"):
        unseeded_classes(rhm, 1, 2)
    with pytest.raises(TypeError, match="rhm"):
        seeding_trace(None, 100, 2)
    with pytest.raises(ValueError, match="n_runs"):
        seeding_trace(rhm, 100, 0)
    with pytest.raises(ValueError, match="P must be >= 1"):
        seeding_trace(rhm, 0, 2)
