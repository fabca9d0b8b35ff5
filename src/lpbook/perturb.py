"""Error propagation between levels: feed one clustering step imperfect codes (Chapter 3).

The induction behind the ILC theorem needs level ``l - 1`` recovered exactly,
while the sweeps score levels at 90% accuracy. :func:`propagation_accuracy`
measures what a fraction ``eta`` of wrong level-``(l - 1)`` codes does to the
level-``l`` step: it corrupts the true codes of a sample (:func:`corrupt_codes`)
and runs the step on them alone, with the learner of a grammar whose tokens
are those codes.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_float, check_int, check_int_array
from .grammar import RHM
from .ilc import ILC
from .metrics import level_accuracy


def corrupt_codes(codes, eta: float, alphabet: int, seed: int) -> np.ndarray:
    """A copy of ``codes`` where each entry, independently with probability ``eta``, becomes another symbol.

    ``codes`` is an int array of any shape with values in ``[0, alphabet)``;
    a corrupted entry is replaced by a uniformly random *different* symbol.
    The same ``seed`` gives the same bytes.
    """
    codes = check_int_array("codes", codes)
    alphabet = check_int("alphabet", alphabet, minimum=2)
    eta = check_float("eta", eta, low=0.0, high=1.0, closed=True, closed_high=True)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    hit = rng.random(codes.shape) < eta
    shift = rng.integers(1, alphabet, size=codes.shape)
    return np.where(hit, (codes.astype(np.int64) + shift) % alphabet, codes).astype(codes.dtype)


def propagation_accuracy(rhm: RHM, P: int, etas, *, seed: int = 0, n_test: int = 2000, **options) -> np.ndarray:
    """Accuracy of ILC's top step (level ``L - 1``) on true level-``(L - 2)`` codes corrupted at each rate in ``etas``.

    Draws ``P`` training and ``n_test`` test samples of ``rhm`` (``L >= 3``),
    corrupts the level-``(L - 2)`` codes of both at rate ``eta``
    (:func:`corrupt_codes`), clusters them with :class:`lpbook.ILC` as the
    tokens of a depth-2 tree (``options`` go to the learner, e.g.
    ``method="single"``), and scores the learned codes against the true
    level-``(L - 1)`` symbols of the test set. Returns an array of shape
    ``(len(etas),)``.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    if rhm.L < 3:
        raise ValueError(f"rhm.L must be >= 3 (a level below the top that is not the tokens), got {rhm.L}")
    train, test = rhm.train_test(P, n_test, seed)
    below, top = rhm.L - 2, rhm.L - 1
    out = []
    for i, eta in enumerate(etas):
        noisy_train = corrupt_codes(train.levels[below], eta, rhm.v, seed=3 * seed + 3 * i)
        noisy_test = corrupt_codes(test.levels[below], eta, rhm.v, seed=3 * seed + 3 * i + 1)
        learner = ILC(v=rhm.v, s=rhm.s, L=2, seed=seed, **options).fit(noisy_train)
        out.append(level_accuracy(test.levels[top], learner.transform(noisy_test)[1]))
    return np.array(out)
