"""Tests of lpbook.theory: the signal lemma against exact gaps averaged over random grammars."""

from __future__ import annotations

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
