"""Tests of lpbook.perturb and lpbook.oracle: code corruption, error propagation, the known-centre step."""

from __future__ import annotations

import numpy as np
import pytest

from lpbook import RHM
from lpbook.perturb import corrupt_codes, propagation_accuracy


def test_corrupt_codes_rate_and_determinism():
    codes = np.random.default_rng(0).integers(0, 5, size=(400, 50)).astype(np.uint8)
    noisy = corrupt_codes(codes, 0.1, 5, seed=3)
    changed = noisy != codes
    n = codes.size
    assert abs(changed.mean() - 0.1) < 5 * np.sqrt(0.1 * 0.9 / n)
    assert noisy.dtype == codes.dtype and noisy.max() < 5
    assert np.array_equal(noisy, corrupt_codes(codes, 0.1, 5, seed=3))
    assert np.array_equal(corrupt_codes(codes, 0.0, 5, seed=3), codes)
    assert np.all(corrupt_codes(codes, 1.0, 5, seed=3) != codes)
    with pytest.raises(ValueError, match="eta"):
        corrupt_codes(codes, 1.5, 5, seed=0)


def test_propagation_accuracy_degrades_with_errors():
    rhm = RHM(8, 2, 2, 3, seed=0)
    clean, noisy = propagation_accuracy(rhm, 3000, [0.0, 0.3])
    assert clean > 0.95 and noisy < clean - 0.2
    with pytest.raises(ValueError, match="L must be >= 3"):
        propagation_accuracy(RHM(8, 2, 2, 2, seed=0), 100, [0.0])


def test_true_centres_need_fewer_samples_than_kmeans_search():
    from lpbook.oracle import top_step_accuracy

    rhm = RHM(16, 4, 2, 2, seed=0)
    P = 16 * 4 * 4  # 4 v m: far below v m^3 = 1024
    known = top_step_accuracy(rhm, P, "true centres")
    searched = top_step_accuracy(rhm, P, "k-means++")
    assert known > 0.9 and searched < known - 0.1
    with pytest.raises(ValueError, match="init"):
        top_step_accuracy(rhm, P, "random")
