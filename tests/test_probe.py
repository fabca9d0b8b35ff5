"""Tests of lpbook.neural.probe: the clean-state latent probe, kept as the comparison for the readout."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpbook import RHM  # noqa: E402
from lpbook.neural import LatentProbe, pool, score_layers  # noqa: E402


def test_pool_averages_each_span():
    states = np.arange(2 * 8 * 3, dtype=float).reshape(2, 8, 3)
    pooled = pool(states, 2, 2)
    assert pooled.shape == (2, 2, 3)
    np.testing.assert_allclose(pooled[1, 1], states[1, 4:8].mean(axis=0))


def test_probe_recovers_latents_encoded_exactly():
    # Layer 0 holds each token's level-1 ancestor as a one-hot vector, layer 1
    # its level-2 ancestor: pooling over a level-l span keeps layer l-1 exact.
    v, s, L = 4, 2, 3
    rhm = RHM(v, 2, s, L, seed=3)
    train, test = rhm.sample(300, seed=0), rhm.sample(100, seed=1)

    def states(sample):
        ancestors = [np.repeat(sample.levels[level], s**level, axis=1) for level in (1, 2)]
        return [np.eye(v, dtype=np.float32)[a] for a in ancestors]  # each (P, s**L, v)

    probe = LatentProbe(v, s, L, seed=0).fit(states(train))
    codes = probe.transform(states(test))
    assert codes[1][0].shape == (100, 4) and codes[2][1].shape == (100, 2)
    scores = score_layers(codes, test.levels)
    assert scores.accuracy[1][0] == 1.0 and scores.accuracy[2][1] == 1.0
    assert scores.best_layer == {1: 0, 2: 1}


def test_score_layers_breaks_ties_towards_the_lowest_layer():
    truth = [None, np.array([[0, 1], [1, 0]])]
    scores = score_layers({1: {0: truth[1], 1: 1 - truth[1], 2: np.zeros((2, 2), int)}}, truth)
    assert scores.accuracy[1] == {0: 1.0, 1: 1.0, 2: 0.5} and scores.best_layer == {1: 0}


@pytest.mark.parametrize(
    "states, error, match",
    [
        (np.zeros((3, 8, 2)), TypeError, "sequence of arrays"),
        ([], TypeError, "sequence of arrays"),
        ([np.zeros((3, 8, 2), dtype=int)], TypeError, r"states\[0\] must hold floats"),
        ([np.zeros((3, 4, 2))], ValueError, r"s\*\*L = 8"),
        ([np.zeros((3, 8, 2)), np.zeros((4, 8, 2))], ValueError, "has 4 rows"),
        ([np.full((3, 8, 2), np.nan)], ValueError, "finite"),
        ([np.zeros((1, 8, 2))], ValueError, "P >= v / s"),
    ],
)
def test_probe_rejects_bad_states(states, error, match):
    with pytest.raises(error, match=match):
        LatentProbe(4, 2, 3).fit(states)


def test_probe_checks_widths_and_fitting():
    states = [np.random.default_rng(0).normal(size=(20, 8, 3))]
    with pytest.raises(RuntimeError, match="not fitted"):
        LatentProbe(4, 2, 3).transform(states)
    probe = LatentProbe(4, 2, 3).fit(states)
    with pytest.raises(ValueError, match="layer widths"):
        probe.transform([np.zeros((5, 8, 4))])
    with pytest.raises(ValueError, match="L must be >= 2"):
        LatentProbe(4, 2, 1)
    with pytest.raises(ValueError, match="n_init must be >= 1"):
        LatentProbe(4, 2, 3, n_init=0)
