"""Tests of lpbook.bp: belief propagation against brute-force enumeration of every derivation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lpbook import RHM, UngrammaticalError, bp, exact

from conftest import ends_at_total, grammar_params

TOL = 1e-10


def derivation_probabilities(rhm: RHM, sample) -> np.ndarray:
    """The probability of every derivation of ``sample`` (rows of ``rhm.enumerate()``), shape ``(n,)``."""
    p = np.full(sample.P, 1.0 / rhm.n_classes)
    for level in range(1, rhm.L + 1):
        children = sample.levels[level - 1].astype(np.int64).reshape(sample.P, -1, rhm.s)
        index = rhm.tuple_index(level, children)
        assert (index >= 0).all()
        weights = rhm.production_probs[level].ravel()
        p *= weights[index].prod(axis=1)
    return p


def brute_force(rhm: RHM, tokens: np.ndarray, mask: np.ndarray):
    """Posteriors and log-likelihoods by summing over every derivation of the grammar."""
    every = rhm.enumerate(max_strings=20_000)
    prob = derivation_probabilities(rhm, every)
    strings = every.tokens.astype(np.int64)
    agree = (strings[None, :, :] == tokens[:, None, :]) | mask[:, None, :]  # (P, n, T)
    weight = agree.all(axis=2) * prob  # (P, n)
    evidence = weight.sum(axis=1)
    with np.errstate(divide="ignore"):
        log_lik = np.log(evidence)
    posts = {}
    for level in range(rhm.L + 1):
        onehot = np.eye(rhm.alphabet_size(level))[every.levels[level]]  # (n, n_pos, n_l)
        with np.errstate(invalid="ignore"):
            posts[level] = np.einsum("pn,nia->pia", weight, onehot) / evidence[:, None, None]
    return posts, log_lik


GRAMMARS = [
    # v, m, s, L, n_classes, seed, zipf_a (None: uniform rules)
    (2, 1, 2, 2, 2, 0, None),
    (3, 2, 2, 3, 3, 1, None),
    (4, 2, 2, 2, 2, 2, None),
    (3, 3, 2, 2, 3, 3, None),
    (5, 2, 2, 3, 1, 4, None),
    (4, 3, 2, 2, 5, 5, None),
    (3, 2, 3, 2, 3, 6, None),
    (2, 3, 3, 2, 2, 7, None),
    (4, 4, 3, 1, 4, 8, None),
    (6, 2, 2, 1, 6, 9, None),
    (3, 3, 2, 2, 3, 10, 1.0),
    (3, 2, 2, 3, 2, 11, 2.0),
    (3, 3, 3, 2, 3, 12, 1.5),
    (4, 4, 3, 1, 4, 13, 0.5),
]


def make(v, m, s, L, n_classes, seed, zipf_a=None) -> RHM:
    if zipf_a is None:
        return RHM(v, m, s, L, n_classes=n_classes, seed=seed)
    return RHM(v, m, s, L, n_classes=n_classes, seed=seed, rule_probs="zipf", zipf_a=zipf_a)


def masks_for(rhm: RHM, P: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    T = rhm.s**rhm.L
    return {
        "none": np.zeros((P, T), dtype=bool),
        "all": np.ones((P, T), dtype=bool),
        "light": rng.random((P, T)) < 0.2,
        "heavy": rng.random((P, T)) < 0.7,
        "per-row": rng.random((P, T)) < rng.random((P, 1)),
    }


@pytest.mark.parametrize("params", GRAMMARS, ids=lambda p: "v{}m{}s{}L{}c{}a{}".format(*p[:5], p[6]))
def test_matches_enumeration(params):
    v, m, s, L, n_classes, seed, _ = params
    rhm = make(*params)
    sample = rhm.sample(40, seed=seed)
    tokens = sample.tokens.astype(np.int64)
    for name, mask in masks_for(rhm, sample.P, np.random.default_rng(seed)).items():
        expected, expected_ll = brute_force(rhm, tokens, mask)
        got = bp.posteriors(rhm, tokens, mask)
        assert sorted(got) == list(range(L + 1))
        for level in range(L + 1):
            assert got[level].shape == (sample.P, s ** (L - level), rhm.alphabet_size(level))
            assert got[level].dtype == np.float64
            np.testing.assert_allclose(got[level], expected[level], rtol=0, atol=TOL, err_msg=f"{name}, level {level}")
        np.testing.assert_allclose(bp.log_likelihood(rhm, tokens, mask), expected_ll, rtol=0, atol=TOL, err_msg=name)


@given(grammar_params(max_L=2), st.integers(0, 2**32 - 1), st.floats(0, 1), st.none() | st.floats(0, 3))
def test_property_matches_enumeration_and_is_normalised(params, seed, rate, zipf_a):
    v, m, s, L, n_classes, grammar_seed = params
    rhm = make(*params, zipf_a)
    rng = np.random.default_rng(seed)
    tokens = rhm.sample(12, seed=seed % 1000).tokens.astype(np.int64)
    mask = rng.random(tokens.shape) < rate
    got = bp.posteriors(rhm, tokens, mask)
    for level, post in got.items():
        assert np.all(post >= 0)
        np.testing.assert_allclose(post.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    # visible tokens are one-hot on their value, exactly
    visible = got[0][~mask]
    assert np.array_equal(visible, np.eye(v)[tokens[~mask]])
    if rhm.n_strings <= 20_000:
        expected, expected_ll = brute_force(rhm, tokens, mask)
        for level in range(L + 1):
            np.testing.assert_allclose(got[level], expected[level], rtol=0, atol=TOL)
        np.testing.assert_allclose(bp.log_likelihood(rhm, tokens, mask), expected_ll, rtol=0, atol=TOL)


@given(grammar_params(max_L=3))
def test_nothing_hidden_gives_the_parse(params):
    v, m, s, L, n_classes, seed = params
    rhm = RHM(v, m, s, L, n_classes=n_classes, seed=seed)
    sample = rhm.sample(30, seed=1)
    got = bp.posteriors(rhm, sample.tokens)
    for level in range(L + 1):
        onehot = np.eye(rhm.alphabet_size(level))[sample.levels[level]]
        np.testing.assert_allclose(got[level], onehot, rtol=0, atol=1e-12)
    # uniform rules: every string has probability 1 / (n_c m**(number of internal nodes))
    internal = (s**L - 1) // (s - 1)
    np.testing.assert_allclose(
        bp.log_likelihood(rhm, sample.tokens), -np.log(n_classes) - internal * np.log(m), rtol=0, atol=1e-9
    )
    assert bp.bayes_root_accuracy(rhm, sample.tokens) == 1.0


@given(grammar_params(max_L=3), st.floats(0, 3))
def test_log_likelihood_of_a_full_string_is_the_sum_of_its_production_weights(params, zipf_a):
    rhm = make(*params, zipf_a)
    sample = rhm.sample(30, seed=2)
    expected = np.full(sample.P, -np.log(rhm.n_classes))
    for level in range(1, rhm.L + 1):
        children = sample.levels[level - 1].astype(np.int64).reshape(sample.P, -1, rhm.s)
        expected += np.log(rhm.production_probs[level].ravel()[rhm.tuple_index(level, children)]).sum(axis=1)
    np.testing.assert_allclose(bp.log_likelihood(rhm, sample.tokens), expected, rtol=1e-12, atol=1e-12)


@given(grammar_params(max_L=3), st.none() | st.floats(0, 3))
def test_everything_hidden_gives_the_marginals(params, zipf_a):
    v, m, s, L, n_classes, seed = params
    rhm = make(*params, zipf_a)
    tokens = np.full((3, s**L), -1)
    mask = np.ones(tokens.shape, dtype=bool)
    got = bp.posteriors(rhm, tokens, mask)
    for level, marginal in exact.marginals(rhm).items():
        np.testing.assert_allclose(got[level], np.broadcast_to(marginal, got[level].shape), rtol=0, atol=1e-12)
    np.testing.assert_allclose(bp.log_likelihood(rhm, tokens, mask), 0.0, atol=1e-12)
    labels = np.arange(3) % n_classes
    assert bp.bayes_root_accuracy(rhm, tokens, mask, labels=labels) == pytest.approx(1 / n_classes, abs=1e-12)


def test_deep_tree_does_not_underflow():
    rhm = RHM(4, 3, 2, 10, seed=3)
    sample = rhm.sample(20, seed=0)
    internal = 2**10 - 1
    ll = bp.log_likelihood(rhm, sample.tokens)
    # m**-1023 = 3**-1023 underflows float64: only normalised messages get this right
    np.testing.assert_allclose(ll, -np.log(4) - internal * np.log(3), rtol=1e-12)
    mask = np.random.default_rng(0).random(sample.tokens.shape) < 0.5
    post = bp.posteriors(rhm, sample.tokens, mask)
    for level, p in post.items():
        assert np.all(np.isfinite(p))
        np.testing.assert_allclose(p.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(np.isfinite(bp.log_likelihood(rhm, sample.tokens, mask)))
    # the posterior puts positive probability on the truth at every node
    for level, p in post.items():
        truth = np.take_along_axis(p, sample.levels[level][:, :, None].astype(np.intp), axis=2)
        assert np.all(truth > 0)


def test_chunking_does_not_change_the_result(monkeypatch):
    rhm = RHM(5, 2, 2, 3, n_classes=3, seed=1)
    sample = rhm.sample(101, seed=2)
    mask = np.random.default_rng(1).random(sample.tokens.shape) < 0.4
    whole = bp.posteriors(rhm, sample.tokens, mask)
    monkeypatch.setattr(bp, "_CHUNK_ENTRIES", 7 * rhm.s**rhm.L * rhm.v)  # 7 rows per chunk
    chunked = bp.posteriors(rhm, sample.tokens, mask)
    for level in whole:
        np.testing.assert_allclose(chunked[level], whole[level], rtol=0, atol=1e-14)
    np.testing.assert_allclose(bp.log_likelihood(rhm, sample.tokens, mask),
                               bp.log_likelihood(rhm, sample.tokens[:7], mask[:7]).tolist()
                               + bp.log_likelihood(rhm, sample.tokens[7:], mask[7:]).tolist(), atol=1e-12)


def test_binary_search_lookup_agrees_with_the_dense_table(monkeypatch):
    rhm = RHM(4, 3, 3, 2, n_classes=2, seed=3)
    sample = rhm.sample(60, seed=2)
    tokens = sample.tokens.astype(np.int64)
    tokens[5, :3] = ungrammatical_tuple(rhm)
    mask = np.random.default_rng(1).random(tokens.shape) < 0.3
    mask[5, :3] = False
    dense = bp.posteriors(rhm, np.delete(tokens, 5, 0), np.delete(mask, 5, 0))
    dense_ll = bp.log_likelihood(rhm, tokens, mask)
    monkeypatch.setattr(bp, "_DENSE_LOOKUP", 0)
    searched = bp.posteriors(rhm, np.delete(tokens, 5, 0), np.delete(mask, 5, 0))
    for level in dense:
        assert np.array_equal(dense[level], searched[level])
    assert np.array_equal(bp.log_likelihood(rhm, tokens, mask), dense_ll)
    assert dense_ll[5] == -np.inf
    with pytest.raises(UngrammaticalError, match="row 5"):
        bp.posteriors(rhm, tokens, mask)


def test_hidden_values_are_ignored():
    rhm = RHM(4, 2, 2, 3, seed=0)
    sample = rhm.sample(30, seed=0)
    mask = np.random.default_rng(2).random(sample.tokens.shape) < 0.5
    junk = np.where(mask, -7, sample.tokens.astype(np.int64))
    a, b = bp.posteriors(rhm, sample.tokens, mask), bp.posteriors(rhm, junk, mask)
    for level in a:
        assert np.array_equal(a[level], b[level])
    assert np.array_equal(bp.log_likelihood(rhm, sample.tokens, mask), bp.log_likelihood(rhm, junk, mask))


# ------------------------------------------------------------ ungrammatical input
def ungrammatical_tuple(rhm: RHM) -> np.ndarray:
    """An s-tuple of level-0 symbols that is not a level-1 production."""
    every = np.indices((rhm.v,) * rhm.s).reshape(rhm.s, -1).T
    return every[rhm.tuple_index(1, every) < 0][0]


def test_ungrammatical_rows_have_probability_zero_and_raise():
    rhm = RHM(4, 2, 2, 3, seed=5)
    tokens = rhm.sample(6, seed=0).tokens.astype(np.int64)
    tokens[3, 4:6] = ungrammatical_tuple(rhm)
    ll = bp.log_likelihood(rhm, tokens)
    assert ll[3] == -np.inf
    assert np.all(np.isfinite(np.delete(ll, 3)))
    with pytest.raises(UngrammaticalError, match="row 3") as info:
        bp.posteriors(rhm, tokens)
    assert (info.value.sample, info.value.level, info.value.position) == (3, 1, 2)
    with pytest.raises(UngrammaticalError):
        bp.bayes_root_accuracy(rhm, tokens, labels=np.zeros(6, dtype=int))
    # hiding one token of the offending tuple can make the row possible again
    mask = np.zeros(tokens.shape, dtype=bool)
    mask[3, 4:6] = True
    assert np.isfinite(bp.log_likelihood(rhm, tokens, mask)[3])
    bp.posteriors(rhm, tokens, mask)


def test_masked_token_loss_is_unlikely_true_value_gives_inf():
    rhm = RHM(4, 2, 2, 2, seed=5)
    tokens = rhm.sample(3, seed=0).tokens.astype(np.int64)
    mask = np.zeros(tokens.shape, dtype=bool)
    mask[0, 0] = True
    # the true value at the hidden position is replaced by one the visible tokens exclude
    post = bp.posteriors(rhm, tokens, mask)[0][0, 0]
    impossible = np.flatnonzero(post == 0)
    assert impossible.size
    tokens[0, 0] = impossible[0]
    assert bp.bayes_masked_token_loss(rhm, tokens, mask) == np.inf


# ------------------------------------------------------------ helpers
def test_masked_token_loss_matches_enumeration():
    rhm = RHM(3, 2, 3, 2, seed=4)
    sample = rhm.sample(50, seed=3)
    tokens = sample.tokens.astype(np.int64)
    rng = np.random.default_rng(0)
    mask = rng.random(tokens.shape) < rng.random((50, 1))
    mask[0] = True  # at least one hidden token
    expected, _ = brute_force(rhm, tokens, mask)
    p_true = np.take_along_axis(expected[0], tokens[:, :, None], axis=2)[:, :, 0]
    nll = bp.masked_token_nll(rhm, tokens, mask)
    assert np.all(np.isnan(nll[~mask]))
    np.testing.assert_allclose(nll[mask], -np.log(p_true[mask]), rtol=0, atol=1e-9)
    assert bp.bayes_masked_token_loss(rhm, tokens, mask) == pytest.approx(-np.log(p_true[mask]).mean(), abs=1e-10)


def lower_brute_force_nll(rhm: RHM, levels: int, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``-log p`` at hidden tokens under the model whose level-``levels`` nodes are independent draws from their
    exact marginals, each generating its span by the rules of levels ``1..levels``: every span enumerated."""
    k, P = levels, tokens.shape[0]
    marginal = exact.marginals(rhm)[k]
    if k == 0:
        p = np.take_along_axis(np.broadcast_to(marginal, (P, *marginal.shape)), tokens[:, :, None], axis=2)[:, :, 0]
    else:
        lower = make(rhm.v, rhm.m, rhm.s, k, rhm.v, rhm.seed, rhm.zipf_a if rhm.rule_probs == "zipf" else None)
        every = lower.enumerate(max_strings=20_000)
        prob = derivation_probabilities(lower, every) * rhm.v  # the uniform root prior divided out
        width = rhm.s**k
        spans, hidden = tokens.reshape(P, -1, width), mask.reshape(P, -1, width)
        p = np.empty(spans.shape)
        for node in range(spans.shape[1]):
            weight = prob * marginal[node][every.labels]  # (n,)
            agree = (every.tokens[None] == spans[:, node, None]) | hidden[:, node, None]  # (P, n, width)
            visible = agree.all(axis=2) * weight
            # p(true value at i | visible) = P(visible and the true value at i) / P(visible)
            joint = (agree.all(axis=2)[:, :, None] & (every.tokens[None] == spans[:, node, None])) * weight[None, :, None]
            p[:, node] = joint.sum(axis=1) / visible.sum(axis=1)[:, None]
        p = p.reshape(P, -1)
    with np.errstate(divide="ignore"):
        return np.where(mask, -np.log(p), np.nan)


@pytest.mark.parametrize("params", [g for g in GRAMMARS if g[3] >= 2], ids=lambda p: "v{}m{}s{}L{}c{}a{}".format(*p[:5], p[6]))
def test_lower_levels_floor_matches_enumeration(params):
    rhm = make(*params)
    sample = rhm.sample(30, seed=1)
    tokens = sample.tokens.astype(np.int64)
    rng = np.random.default_rng(2)
    mask = rng.random(tokens.shape) < rng.random((30, 1))
    mask[0] = True
    for levels in range(rhm.L):
        expected = lower_brute_force_nll(rhm, levels, tokens, mask)
        got = bp.masked_token_nll(rhm, tokens, mask, levels=levels)
        np.testing.assert_allclose(got[mask], expected[mask], rtol=0, atol=1e-9, err_msg=f"levels = {levels}")
        assert np.isnan(got[~mask]).all()
        assert bp.bayes_masked_token_loss(rhm, tokens, mask, levels=levels) == pytest.approx(expected[mask].mean(), abs=1e-10)
    assert bp.bayes_masked_token_loss(rhm, tokens, mask, levels=rhm.L) == bp.bayes_masked_token_loss(rhm, tokens, mask)


def test_lower_levels_floor_is_checked():
    rhm = RHM(4, 2, 2, 2, seed=0)
    tokens = rhm.sample(5, seed=0).tokens
    mask = np.ones(tokens.shape, dtype=bool)
    with pytest.raises(ValueError, match="levels"):
        bp.bayes_masked_token_loss(rhm, tokens, mask, levels=3)
    with pytest.raises(ValueError, match="levels"):
        bp.bayes_masked_token_loss(rhm, tokens, mask, levels=-1)
    with pytest.raises(TypeError, match="levels"):
        bp.masked_token_nll(rhm, tokens, mask, levels=1.0)


def test_root_accuracy_against_enumeration():
    rhm = RHM(3, 2, 2, 3, n_classes=3, seed=2)
    sample = rhm.sample(200, seed=5)
    mask = np.random.default_rng(4).random(sample.tokens.shape) < 0.6
    expected, _ = brute_force(rhm, sample.tokens.astype(np.int64), mask)
    root = expected[rhm.L][:, 0]
    best = root >= root.max(axis=1, keepdims=True) * (1 - 1e-9)
    credit = best[np.arange(sample.P), sample.labels] / best.sum(axis=1)
    got = bp.bayes_root_accuracy(rhm, sample.tokens, mask)
    assert got == pytest.approx(credit.mean(), abs=1e-12)
    assert got == bp.bayes_root_accuracy(rhm, sample.tokens, mask, labels=sample.labels)
    assert 1 / 3 < got < 1


def test_validation():
    rhm = RHM(4, 2, 2, 2, seed=0)
    tokens = rhm.sample(5, seed=0).tokens
    mask = np.zeros(tokens.shape, dtype=bool)
    with pytest.raises(TypeError, match="rhm"):
        bp.posteriors("grammar", tokens)
    with pytest.raises(TypeError, match="tokens"):
        bp.posteriors(rhm, tokens.astype(float))
    with pytest.raises(ValueError, match="tokens"):
        bp.posteriors(rhm, tokens[:, :3])
    with pytest.raises(ValueError, match="tokens"):
        bp.posteriors(rhm, tokens[0])
    with pytest.raises(ValueError, match="tokens"):
        bp.log_likelihood(rhm, np.where(mask, 0, 4))
    with pytest.raises(TypeError, match="mask"):
        bp.posteriors(rhm, tokens, mask.astype(int))
    with pytest.raises(ValueError, match="mask"):
        bp.posteriors(rhm, tokens, mask[:, :2])
    with pytest.raises(ValueError, match="hide at least one"):
        bp.bayes_masked_token_loss(rhm, tokens, mask)
    for function in (bp.posteriors, bp.log_likelihood, bp.root_posterior, bp.bayes_root_accuracy):
        with pytest.raises(ValueError, match=r"tokens must hold at least one string, got shape \(0, 4\)"):
            function(rhm, np.empty((0, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="mask"):
        bp.bayes_masked_token_loss(rhm, tokens, None)
    hidden = mask.copy()
    hidden[0, 0] = True
    with pytest.raises(ValueError, match="tokens"):
        bp.masked_token_nll(rhm, np.where(hidden, -1, tokens.astype(np.int64)), hidden)  # the true value is needed
    with pytest.raises(ValueError, match="labels"):
        bp.bayes_root_accuracy(rhm, tokens, labels=np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        bp.bayes_root_accuracy(rhm, tokens, labels=np.full(5, 4))


def test_root_posterior_is_the_root_of_posteriors():
    rhm = RHM(4, 3, 3, 2, n_classes=3, seed=1, rule_probs="zipf", zipf_a=1.0)
    sample = rhm.sample(80, seed=0)
    mask = np.random.default_rng(3).random(sample.tokens.shape) < 0.5
    np.testing.assert_allclose(bp.root_posterior(rhm, sample.tokens, mask),
                               bp.posteriors(rhm, sample.tokens, mask)[rhm.L][:, 0], rtol=0, atol=1e-14)


def test_nested_masks():
    masks = bp.nested_masks(50, 16, [0, 0.1, 0.5, 1], seed=3)
    assert masks.shape == (4, 50, 16) and masks.dtype == bool
    assert np.array_equal(masks.sum(axis=2), np.broadcast_to(np.array([0, 2, 8, 16])[:, None], (4, 50)))
    assert np.all(masks[1] <= masks[2]) and np.all(masks[2] <= masks[3])
    assert np.array_equal(masks, bp.nested_masks(50, 16, [0, 0.1, 0.5, 1], seed=3))
    # every position is hidden equally often: a binomial count per position
    counts = bp.nested_masks(4000, 16, [0.25], seed=1)[0].sum(axis=0)
    assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(4000 * 0.25 * 0.75))
    for bad in ([1.5], [[0.1]], [-0.1]):
        with pytest.raises(ValueError, match="fractions"):
            bp.nested_masks(5, 4, bad, seed=0)


def test_root_accuracy_curve_runs_from_exact_to_chance():
    rhm = RHM(4, 2, 2, 3, n_classes=4, seed=0)
    curve = bp.root_accuracy_curve(rhm, [0, 0.5, 1], P=300, seed=2)
    assert curve[0] == 1.0 and curve[2] == pytest.approx(0.25, abs=1e-12)
    assert 0.25 < curve[1] < 1.0
    sample = rhm.sample(300, 2)
    mask = bp.nested_masks(300, 8, [0.5], seed=3)[0]
    assert curve[1] == bp.bayes_root_accuracy(rhm, sample.tokens, mask)


def test_halfway_fraction():
    fractions = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    assert bp.halfway_fraction(fractions, [1, 0.9, 0.5, 0.3, 0.0], chance=0.2) == pytest.approx(0.25 + 0.25 * 0.3 / 0.4)
    assert np.isnan(bp.halfway_fraction(fractions, [1, 1, 1, 0.9, 0.8], chance=0.2))


@pytest.mark.parametrize("params", [(4, 3, 2, 6, 4, 0, None), (3, 2, 3, 3, 3, 1, 1.0)], ids=["s2L6", "s3L3zipf"])
def test_float32_posteriors_are_the_float64_ones_rounded_once_per_level(params):
    """float32 stores each level rounded (unit roundoff u = 2**-24) and the downward pass reads it back:
    level l >= 1 carries at most (L + 1 - l) roundings; level 0 is a linear image of level 1 normalised
    (a ratio of two such images: twice level 1's error) and rounded once more."""
    rhm = make(*params)
    L, u = rhm.L, 2.0**-24
    sample = rhm.sample(300, seed=2)
    mask = np.random.default_rng(3).random(sample.tokens.shape) < np.random.default_rng(4).random((300, 1))
    exact64 = bp.posteriors(rhm, sample.tokens, mask)
    single = bp.posteriors(rhm, sample.tokens, mask, dtype=np.float32)
    for level in range(L + 1):
        assert single[level].dtype == np.float32
        bound = (2 * L + 1) * u if level == 0 else (L + 1 - level) * u
        np.testing.assert_allclose(single[level], exact64[level], rtol=1.01 * bound, atol=0, err_msg=f"level {level}")
    assert np.array_equal(single[0][~mask], np.eye(rhm.v, dtype=np.float32)[sample.tokens[~mask]])


def test_dtype_is_checked():
    rhm = RHM(4, 2, 2, 2, seed=0)
    tokens = rhm.sample(5, seed=0).tokens
    with pytest.raises(ValueError, match="dtype must be numpy.float32 or numpy.float64"):
        bp.posteriors(rhm, tokens, dtype=np.int64)
    with pytest.raises(TypeError, match="dtype must be"):
        bp.posteriors(rhm, tokens, dtype="no such type")


def test_progress_bar_on_request_over_the_rows(monkeypatch, capsys):
    rhm = RHM(4, 2, 2, 3, seed=0)
    tokens = rhm.sample(100, seed=1).tokens
    mask = np.random.default_rng(0).random(tokens.shape) < 0.3
    monkeypatch.setattr(bp, "_CHUNK_ENTRIES", 8 * 4 * 7)  # 7 rows per chunk: 15 chunks
    quiet = {name: function(rhm, tokens, mask) for name, function in
             (("posteriors", bp.posteriors), ("log_likelihood", bp.log_likelihood), ("root_posterior", bp.root_posterior))}
    assert capsys.readouterr().err == "", "no bar by default"
    for name, function in (("posteriors", bp.posteriors), ("log_likelihood", bp.log_likelihood),
                           ("root_posterior", bp.root_posterior)):
        shown = function(rhm, tokens, mask, progress=True)
        err = capsys.readouterr().err
        assert "100/100" in err and ends_at_total(err), (name, err)
        same = shown.values() if isinstance(shown, dict) else [shown]
        expected = quiet[name].values() if isinstance(quiet[name], dict) else [quiet[name]]
        assert all(np.array_equal(a, b) for a, b in zip(same, expected)), name
    with pytest.raises(TypeError, match="progress must be True or False, got 'maybe'"):
        bp.posteriors(rhm, tokens, mask, progress="maybe")
