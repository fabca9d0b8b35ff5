"""Tests of lpbook.grammar: the rules, sampling, parsing, counting, validation, seeds."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.stats import chisquare

from lpbook import RHM, UngrammaticalError
from lpbook.grammar import BLOCK, encode_tuples

from conftest import assert_frequencies_match, grammar_params


def make(params) -> RHM:
    v, m, s, L, n_classes, seed = params
    return RHM(v, m, s, L, n_classes=n_classes, seed=seed)


# ------------------------------------------------------------------ the rules
@given(grammar_params())
def test_rules_shapes_and_unambiguity(params):
    rhm = make(params)
    assert sorted(rhm.rules) == list(range(1, rhm.L + 1))
    for level, rules in rhm.rules.items():
        assert rules.shape == (rhm.alphabet_size(level), rhm.m, rhm.s)
        assert rules.min() >= 0 and rules.max() < rhm.v
        codes = encode_tuples(rules.reshape(-1, rhm.s), rhm.v)
        assert np.unique(codes).size == codes.size, "two productions of one level share a tuple"
        # every grammatical tuple maps back to exactly its own production
        assert np.array_equal(rhm.tuple_index(level, rules.reshape(-1, rhm.s)), np.arange(codes.size))


def test_rules_are_read_only():
    rhm = RHM(4, 2, 2, 2)
    with pytest.raises(ValueError):
        rhm.rules[1][0, 0, 0] = 1


def test_ungrammatical_tuples_are_marked():
    rhm = RHM(4, 2, 2, 2, seed=3)
    grammatical = set(encode_tuples(rhm.rules[1].reshape(-1, 2), 4).tolist())
    all_tuples = np.array([(a, b) for a in range(4) for b in range(4)])
    index = rhm.tuple_index(1, all_tuples)
    expected = np.array([int(encode_tuples(t, 4)) in grammatical for t in all_tuples])
    assert np.array_equal(index >= 0, expected)


# ------------------------------------------------------------------- sampling
@given(grammar_params(), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_sample_shapes_dtypes_and_parse_roundtrip(params, P, seed):
    rhm = make(params)
    sample = rhm.sample(P, seed)
    assert len(sample.levels) == rhm.L + 1
    for level, codes in enumerate(sample.levels):
        assert codes.shape == (P, rhm.s ** (rhm.L - level))
        assert codes.dtype == np.uint8  # alphabets here are below 256
        assert codes.max() < rhm.alphabet_size(level)
    assert sample.tokens is sample.levels[0]
    assert np.array_equal(sample.labels, sample.levels[rhm.L][:, 0])
    assert sample.P == len(sample) == P
    parsed = rhm.parse(sample.tokens)
    for a, b in zip(parsed.levels, sample.levels):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert rhm.is_grammatical(sample.tokens).all()


def test_dtype_widens_for_large_alphabets():
    rhm = RHM(300, 1, 2, 2, n_classes=2)
    sample = rhm.sample(5, 0)
    assert sample.tokens.dtype == np.uint16 and sample.labels.dtype == np.uint8


@given(grammar_params(max_L=2), st.integers(0, 2**32 - 1))
def test_each_latent_is_the_parent_of_its_children(params, seed):
    rhm = make(params)
    sample = rhm.sample(50, seed)
    for level in range(1, rhm.L + 1):
        tuples = sample.levels[level - 1].reshape(50, -1, rhm.s)
        index = rhm.tuple_index(level, tuples)
        assert (index >= 0).all()
        assert np.array_equal(index // rhm.m, sample.levels[level])


def test_samples_are_uniform_over_strings():
    # Uniform root and productions make every derivation, hence every string,
    # equally likely: probability 1 / n_strings. Chi-square goodness of fit.
    rhm = RHM(3, 2, 2, 2, seed=5)
    strings = rhm.enumerate()
    n = rhm.n_strings
    P = 200 * n
    sample = rhm.sample(P, seed=11)
    codes = encode_tuples(sample.tokens, rhm.v)
    table = encode_tuples(strings.tokens, rhm.v)
    order = np.argsort(table)
    which = order[np.searchsorted(table[order], codes)]
    assert np.array_equal(table[which], codes), "a sampled string is missing from the enumeration"
    counts = np.bincount(which, minlength=n)
    assert chisquare(counts).pvalue > 1e-4


def test_sample_is_deterministic_and_seed_dependent():
    rhm = RHM(8, 3, 2, 3, seed=1)
    a, b, c = rhm.sample(1000, 7), rhm.sample(1000, 7), rhm.sample(1000, 8)
    assert all(np.array_equal(x, y) for x, y in zip(a.levels, b.levels))
    assert not np.array_equal(a.tokens, c.tokens)


@given(grammar_params(max_L=2), st.integers(1, 3 * BLOCK), st.integers(1, 3 * BLOCK))
def test_training_sets_are_nested(params, P1, P2):
    rhm = make(params)
    small, large = sorted((P1, P2))
    a, b = rhm.sample(small, 3), rhm.sample(large, 3)
    assert all(np.array_equal(x, y[:small]) for x, y in zip(a.levels, b.levels))


def test_grammar_is_deterministic_and_shares_lower_levels_across_depths():
    a, b = RHM(6, 2, 2, 3, seed=4), RHM(6, 2, 2, 3, seed=4)
    deeper = RHM(6, 2, 2, 5, seed=4)
    other = RHM(6, 2, 2, 3, seed=5)
    assert all(np.array_equal(a.rules[l], b.rules[l]) for l in a.rules)
    assert all(np.array_equal(a.rules[l], deeper.rules[l]) for l in a.rules)
    assert not all(np.array_equal(a.rules[l], other.rules[l]) for l in a.rules)


def _fingerprint_code() -> str:
    return (
        "import hashlib, numpy as np\n"
        "from lpbook import RHM\n"
        "r = RHM(7, 3, 2, 4, seed=123)\n"
        "h = hashlib.sha256()\n"
        "[h.update(np.ascontiguousarray(r.rules[l]).tobytes()) for l in sorted(r.rules)]\n"
        "[h.update(np.ascontiguousarray(x).tobytes()) for x in r.sample(5000, 9).levels]\n"
        "print(h.hexdigest())\n"
    )


def test_same_seed_same_result_in_another_process():
    here = hashlib.sha256()
    r = RHM(7, 3, 2, 4, seed=123)
    for level in sorted(r.rules):
        here.update(np.ascontiguousarray(r.rules[level]).tobytes())
    for x in r.sample(5000, 9).levels:
        here.update(np.ascontiguousarray(x).tobytes())
    out = subprocess.run([sys.executable, "-c", _fingerprint_code()], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here.hexdigest()


# ------------------------------------------------- skewed production probabilities
def zipf_weights(m: int, a: float) -> np.ndarray:
    w = np.arange(1, m + 1, dtype=float) ** -a
    return w / w.sum()


@given(grammar_params(), st.floats(0, 4))
def test_production_probs(params, a):
    v, m, s, L, n_classes, seed = params
    uniform = RHM(v, m, s, L, n_classes=n_classes, seed=seed)
    zipf = RHM(v, m, s, L, n_classes=n_classes, seed=seed, rule_probs="zipf", zipf_a=a)
    for level in range(1, L + 1):
        shape = (uniform.alphabet_size(level), m)
        assert np.array_equal(uniform.production_probs[level], np.full(shape, 1 / m))
        p = zipf.production_probs[level]
        assert p.shape == shape and p.dtype == np.float64 and not p.flags.writeable
        # each row is the Zipf law over ranks, in some order
        np.testing.assert_allclose(np.sort(p, axis=1)[:, ::-1], np.broadcast_to(zipf_weights(m, a), shape), rtol=1e-12)
        # the rules themselves do not depend on the production probabilities
        assert np.array_equal(zipf.rules[level], uniform.rules[level])


def test_zipf_orders_are_drawn_per_symbol_from_the_seed():
    a, b = (RHM(8, 4, 2, 3, seed=s, rule_probs="zipf", zipf_a=1.0) for s in (3, 4))
    again = RHM(8, 4, 2, 3, seed=3, rule_probs="zipf", zipf_a=1.0)
    favourite = a.production_probs[1].argmax(axis=1)
    assert np.unique(favourite).size > 1, "every symbol ranks its productions in the same order"
    assert all(np.array_equal(a.production_probs[l], again.production_probs[l]) for l in a.rules)
    assert not all(np.array_equal(a.production_probs[l], b.production_probs[l]) for l in a.rules)
    assert np.allclose(RHM(8, 4, 2, 3, seed=3, rule_probs="zipf", zipf_a=0).production_probs[2], 0.25)
    assert "zipf_a=1" in repr(a) and "zipf" not in repr(RHM(8, 4, 2, 3))


def test_zipf_a_without_a_zipf_law_is_an_error():
    for kwargs in (dict(zipf_a=1.0), dict(rule_probs="uniform", zipf_a=2.5), dict(zipf_a=0)):
        with pytest.raises(ValueError, match=r"zipf_a is only used with rule_probs='zipf'"):
            RHM(7, 3, 2, 4, seed=123, **kwargs)
    assert RHM(7, 3, 2, 4, seed=123).zipf_a is None
    assert RHM(7, 3, 2, 4, seed=123, rule_probs="zipf").zipf_a == 1.0  # the default exponent of a Zipf law


@pytest.mark.parametrize(
    "params",
    [(6, 4, 2, 3, 6, 3, 1.2), (4, 3, 3, 2, 3, 5, 2.0), (5, 2, 2, 2, 2, 1, 0.5)],
    ids=["s2", "s3", "m2"],
)
def test_zipf_sampling_frequencies_match_the_weights(params):
    v, m, s, L, n_classes, seed, a = params
    rhm = RHM(v, m, s, L, n_classes=n_classes, seed=seed, rule_probs="zipf", zipf_a=a)
    P = 100_000
    sample = rhm.sample(P, seed=2)
    for level in range(1, L + 1):
        children = sample.levels[level - 1].astype(np.int64).reshape(P, -1, s)
        production = rhm.tuple_index(level, children).ravel()
        n = rhm.alphabet_size(level)
        counts = np.bincount(production, minlength=n * m).reshape(n, m)
        n_parent = counts.sum(axis=1)
        assert_frequencies_match(counts / np.maximum(n_parent, 1)[:, None], rhm.production_probs[level], n_parent[:, None])


def test_zipf_samples_are_deterministic_and_nested():
    rhm = RHM(6, 3, 3, 2, seed=1, rule_probs="zipf", zipf_a=1.0)
    a, b = rhm.sample(5000, 4), rhm.sample(BLOCK + 7, 4)
    assert all(np.array_equal(x[: BLOCK + 7], y) for x, y in zip(a.levels, b.levels))
    assert np.array_equal(rhm.parse(a.tokens).levels[1], a.levels[1])
    assert not np.array_equal(a.tokens, RHM(6, 3, 3, 2, seed=1).sample(5000, 4).tokens)


# ----------------------------------------------------------- counting strings
@given(grammar_params(max_L=2))
def test_enumerate_matches_n_strings(params):
    rhm = make(params)
    if rhm.n_strings > 20000:
        return
    strings = rhm.enumerate()
    assert strings.P == rhm.n_strings
    assert np.unique(encode_tuples(strings.tokens, rhm.v)).size == rhm.n_strings
    assert rhm.is_grammatical(strings.tokens).all()
    parsed = rhm.parse(strings.tokens)
    assert all(np.array_equal(x, y) for x, y in zip(parsed.levels, strings.levels))


def test_n_strings_formula():
    assert RHM(8, 2, 2, 3, n_classes=4).n_strings == 4 * 2**7
    assert RHM(5, 3, 3, 2).n_strings == 5 * 3**4
    assert isinstance(RHM(32, 8, 2, 8).n_strings, int)
    assert RHM(32, 8, 2, 8).n_strings == 32 * 8**255


def test_enumerate_refuses_large_grammars():
    with pytest.raises(ValueError, match="max_strings"):
        RHM(32, 8, 2, 6).enumerate()
    with pytest.raises(ValueError, match="max_strings"):
        RHM(4, 2, 2, 2).enumerate(max_strings=10)


# -------------------------------------------------------------------- parsing
def test_parse_names_the_first_bad_position():
    rhm = RHM(4, 1, 2, 2, seed=0)  # 4 of the 16 pairs are grammatical at each level
    tokens = np.array(rhm.sample(3, 0).tokens)
    bad_pair = next((a, b) for a in range(4) for b in range(4) if rhm.tuple_index(1, np.array([a, b])) < 0)
    tokens[1, 2:4] = bad_pair
    mask = rhm.is_grammatical(tokens)
    assert mask.tolist() == [True, False, True]
    with pytest.raises(UngrammaticalError) as err:
        rhm.parse(tokens)
    assert (err.value.sample, err.value.level, err.value.position) == (1, 1, 1)
    assert "tokens[1]" in str(err.value) and isinstance(err.value, ValueError)


def test_parse_reports_errors_above_the_tokens():
    # Swap two grammatical bottom tuples so that only the level-1 pair fails.
    rhm = RHM(3, 1, 2, 2, seed=2)
    sample = rhm.sample(200, 0)
    parents = sample.levels[1]
    bad = [i for i in range(200) if rhm.tuple_index(2, parents[i][::-1].copy()) < 0]
    assert bad, "need a row whose reversed parents are ungrammatical"
    row = bad[0]
    tokens = np.array(sample.tokens[row : row + 1])
    tokens[0] = np.concatenate([tokens[0, 2:], tokens[0, :2]])
    with pytest.raises(UngrammaticalError) as err:
        rhm.parse(tokens)
    assert (err.value.sample, err.value.level, err.value.position) == (0, 2, 0)


@pytest.mark.parametrize(
    "tokens, error, match",
    [
        (np.zeros((2, 5), dtype=int), ValueError, r"tokens must have shape \(P, s\*\*L = 4\)"),
        (np.zeros(4, dtype=int), ValueError, "tokens must be 2-dimensional"),
        (np.full((2, 4), 9), ValueError, r"tokens must hold values in \[0, 3\)"),
        (np.full((2, 4), -1), ValueError, r"tokens must hold values in \[0, 3\)"),
        (np.zeros((2, 4)), TypeError, "tokens must hold integers"),
        (np.zeros((2, 4), dtype=bool), TypeError, "tokens must hold integers"),
    ],
)
def test_parse_rejects_bad_tokens(tokens, error, match):
    rhm = RHM(3, 2, 2, 2)
    with pytest.raises(error, match=match):
        rhm.parse(tokens)
    with pytest.raises(error, match=match):
        rhm.is_grammatical(tokens)


# ----------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(v=2.0, m=1, s=2, L=1), TypeError, "v must be an integer"),
        (dict(v=True, m=1, s=2, L=1), TypeError, "v must be an integer"),
        (dict(v="4", m=1, s=2, L=1), TypeError, "v must be an integer"),
        (dict(v=0, m=1, s=2, L=1), ValueError, "v must be >= 2"),
        (dict(v=-3, m=1, s=2, L=1), ValueError, "v must be >= 2"),
        (dict(v=4, m=0, s=2, L=1), ValueError, "m must be >= 1"),
        (dict(v=4, m=1, s=1, L=1), ValueError, "s must be >= 2"),
        (dict(v=4, m=1, s=2, L=0), ValueError, "L must be >= 1"),
        (dict(v=4, m=1, s=2, L=-1), ValueError, "L must be >= 1"),
        (dict(v=4, m=1, s=2, L=1.5), TypeError, "L must be an integer"),
        (dict(v=4, m=5, s=2, L=1), ValueError, r"m must be <= v\*\*\(s-1\) = 4"),
        (dict(v=4, m=2, s=2, L=1, n_classes=9), ValueError, r"n_classes\*m must be <= v\*\*s = 16"),
        (dict(v=4, m=2, s=2, L=1, n_classes=0), ValueError, "n_classes must be >= 1"),
        (dict(v=4, m=2, s=2, L=1, seed=-1), ValueError, "seed must be >= 0"),
        (dict(v=4, m=2, s=2, L=1, seed=1.0), TypeError, "seed must be an integer"),
        (dict(v=2**31, m=1, s=2, L=1), ValueError, r"v\*\*s must be < 2\*\*62"),
        (dict(v=4, m=2, s=2, L=1, rule_probs="zipfian"), ValueError, "rule_probs must be one of"),
        (dict(v=4, m=2, s=2, L=1, rule_probs=None), TypeError, "rule_probs must be a string"),
        (dict(v=4, m=2, s=2, L=1, rule_probs="zipf", zipf_a=-0.5), ValueError, r"zipf_a must lie in \[0.0, inf\)"),
        (dict(v=4, m=2, s=2, L=1, rule_probs="zipf", zipf_a=float("nan")), ValueError, "zipf_a must be finite"),
        (dict(v=4, m=2, s=2, L=1, rule_probs="zipf", zipf_a=float("inf")), ValueError, "zipf_a must be finite"),
        (dict(v=4, m=2, s=2, L=1, rule_probs="zipf", zipf_a="1"), TypeError, "zipf_a must be a real number"),
        (dict(v=4, m=2, s=2, L=1, rule_probs="zipf", zipf_a=True), TypeError, "zipf_a must be a real number"),
        (dict(v=4, m=2, s=2, L=1, zipf_a=-1), ValueError, "zipf_a is only used with rule_probs='zipf'"),
    ],
)
def test_constructor_rejects_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        RHM(**kwargs)


def test_numpy_integers_are_accepted():
    rhm = RHM(np.int64(4), np.int32(2), np.uint8(2), np.int16(2))
    assert (rhm.v, rhm.m, rhm.s, rhm.L) == (4, 2, 2, 2) and type(rhm.v) is int


@pytest.mark.parametrize(
    "P, seed, error, match",
    [
        (0, 0, ValueError, "P must be >= 1"),
        (-5, 0, ValueError, "P must be >= 1"),
        (10.0, 0, TypeError, "P must be an integer"),
        (10, -1, ValueError, "seed must be >= 0"),
        (10, None, TypeError, "seed must be an integer"),
    ],
)
def test_sample_rejects_bad_arguments(P, seed, error, match):
    with pytest.raises(error, match=match):
        RHM(4, 2, 2, 2).sample(P, seed)


@given(st.integers(-5, 40), st.integers(1, 5), st.integers(1, 4), st.integers(-2, 4))
def test_invalid_parameters_always_raise_value_error(v, m, s, L):
    valid = v >= 2 and s >= 2 and L >= 1 and m >= 1 and m <= v ** (s - 1)
    if valid:
        RHM(v, m, s, L)
    else:
        with pytest.raises(ValueError):
            RHM(v, m, s, L)


def test_level_arguments_are_checked():
    rhm = RHM(4, 2, 2, 2)
    with pytest.raises(ValueError, match="level must be <= L = 2"):
        rhm.alphabet_size(3)
    with pytest.raises(ValueError, match="level must be >= 1"):
        rhm.tuple_index(0, np.zeros((1, 2), dtype=int))
    with pytest.raises(ValueError, match=r"tuples must have shape \(\.\.\., s=2\)"):
        rhm.tuple_index(1, np.zeros((1, 3), dtype=int))
