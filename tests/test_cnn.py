"""Tests of lpbook.neural.cnn: the supervised hierarchical CNN, trained on root labels."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpbook import RHM, level_accuracy  # noqa: E402
from lpbook.neural import SupervisedCNN  # noqa: E402

FAST_CNN = dict(width=16, epochs=3, progress=False)


def chance_tolerance(p: float, n: int, z: float = 5.0) -> float:
    """``z`` binomial standard deviations of an accuracy of mean ``p`` over ``n`` independent items."""
    return z * np.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def small():
    """A v=4, m=2, s=2, L=3 grammar with a train and a test sample."""
    rhm = RHM(4, 2, 2, 3, seed=0)
    return rhm, rhm.sample(200, seed=1), rhm.sample(50, seed=2)


def test_supervised_cnn_protocol(small):
    rhm, train, test = small
    cnn = SupervisedCNN(4, 2, 3, **FAST_CNN)
    assert cnn.fit(train.tokens, train.labels) is cnn
    out = cnn.transform(test.tokens)
    assert list(out) == [3]
    assert out[3].shape == (test.P, 1) and out[3].dtype == np.uint8
    assert out[3].min() >= 0 and out[3].max() < rhm.n_classes
    assert len(cnn.losses_) <= FAST_CNN["epochs"]


def test_supervised_cnn_n_classes():
    rhm = RHM(4, 2, 2, 2, n_classes=2, seed=0)
    train = rhm.sample(100, seed=1)
    out = SupervisedCNN(4, 2, 2, n_classes=2, **FAST_CNN).fit(train.tokens, train.labels).transform(train.tokens)
    assert out[2].max() < 2 and out[2].shape == (100, 1)


@pytest.mark.slow
def test_supervised_cnn_learns_an_easy_grammar():
    # v=8, m=2, s=2, L=4 generates 8 * 2**15 ~ 2.6e5 strings, so the 1000
    # training strings cover < 0.4% of them and test accuracy measures
    # generalisation, not recall. The supervised scale is n_c * m**L = 128;
    # at P = 1000 ~ 8x that scale our CNN reaches test accuracy 1.00 (0.96
    # already at P = 300), so 0.95 leaves a margin yet fails for a CNN that
    # does not learn the rules (chance is 1/8).
    rhm = RHM(8, 2, 2, 4, seed=0)
    train, test = rhm.sample(1000, seed=1), rhm.sample(2000, seed=2)
    cnn = SupervisedCNN(8, 2, 4, progress=False).fit(train.tokens, train.labels)
    assert cnn.losses_[-1] < cnn.stop_loss  # trained to (near) zero training loss
    assert level_accuracy(test.levels[4], cnn.transform(test.tokens)[4]) >= 0.95


def test_supervised_cnn_is_near_chance_with_a_handful_of_samples():
    # 8 training strings for a grammar whose supervised scale is
    # n_c * m**L = 8 * 4**3 = 512: the CNN memorises them but cannot
    # generalise. Plain (unmatched) accuracy is then chance, 1/8, up to the
    # binomial noise of the test set (5 sigma) and a small excess (over
    # seeds 0..5 we measured 0.120..0.136, sigma = 0.005).
    v, n_test = 8, 4000
    rhm = RHM(v, 4, 2, 3, seed=0)
    train, test = rhm.sample(8, seed=1), rhm.sample(n_test, seed=2)
    cnn = SupervisedCNN(v, 2, 3, progress=False).fit(train.tokens, train.labels)
    accuracy = np.mean(cnn.transform(test.tokens)[3][:, 0] == test.labels)
    assert abs(accuracy - 1 / v) < chance_tolerance(1 / v, n_test)
