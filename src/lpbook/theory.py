"""Closed-form predictions of the signal-against-noise theory (Chapters 2 and 3).

These are formulas, not simulations: the chapters compare them with the exact
statistics of sampled grammars (:mod:`lpbook.exact`) and with learners.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom

from ._validate import check_int


def inverse_occupancy(v: int, m: int, s: int, n_above: int | None = None) -> float:
    """``E[1/N | N >= 1]``, where ``N`` counts the productions of a level holding a given symbol at a given position.

    The ``n_above * m`` productions of a level are distinct s-tuples drawn
    uniformly without replacement among ``v**s``, of which ``v**(s-1)`` hold
    the symbol at the position: ``N`` is hypergeometric. ``n_above`` (the
    alphabet of the level, ``v`` below the root) defaults to ``v``.
    """
    v, m, s = check_int("v", v, minimum=2), check_int("m", m, minimum=1), check_int("s", s, minimum=2)
    n_above = v if n_above is None else check_int("n_above", n_above, minimum=1)
    draws = n_above * m
    N = np.arange(1, min(draws, v ** (s - 1)) + 1)
    weights = hypergeom.pmf(N, v**s, v ** (s - 1), draws)
    return float(np.sum(weights / N) / np.sum(weights))


def pair_gap(v: int, m: int, s: int, k: int, *, joint: bool = False, n_above: int | None = None) -> float:
    """The expected squared gap ``E ||P(Z | a) - P(Z | a')||^2`` between two symbols ``a != a'`` of a node.

    The context ``Z`` lies below a sibling of that node: the path goes up to
    the parent node ``g`` (whose symbol is uniform), through ``g``'s production
    to the sibling, then down ``k - 1`` more productions (``k >= 1``); with
    ``joint=True``, ``Z`` is the tuple under the last node, read jointly. In the
    pairwise approximation of the lemma of Chapter 2 (any two productions of a
    level are uniformly random distinct tuples),

        E Delta^2 = 2 (E[1/N] + (1 - E[1/N]) rho_0 - rho_1) ((1 - rho) / m)**(k - 1)  [/ m if joint],

    with ``rho = (v**(s-1) - 1) / (v**s - 1)`` (two distinct tuples agree at a
    position), ``rho_0 = (v**(s-2) - 1) / (v**(s-1) - 1)`` (two distinct tuples
    that agree at one position agree at another), ``rho_1 = 1 / v`` and ``N``
    as in :func:`inverse_occupancy`. For large ``v`` it is ``~ 2 m**(-k)``.
    """
    v, m, s = check_int("v", v, minimum=2), check_int("m", m, minimum=1), check_int("s", s, minimum=2)
    k = check_int("k", k, minimum=1)
    inverse = inverse_occupancy(v, m, s, n_above)
    rho = (v ** (s - 1) - 1) / (v**s - 1)
    rho_0 = (v ** (s - 2) - 1) / (v ** (s - 1) - 1)
    first = inverse + (1 - inverse) * rho_0 - 1 / v
    gap = 2 * first * ((1 - rho) / m) ** (k - 1)
    return gap / m if joint else gap
