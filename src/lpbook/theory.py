"""Closed-form predictions of the signal-against-noise theory (Chapters 2 and 3).

These are formulas, not simulations: the chapters compare them with the exact
statistics of sampled grammars (:mod:`lpbook.exact`) and with learners.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ._validate import check_int


def inverse_occupancy(v: int, m: int, s: int, n_above: int | None = None) -> float:
    """``E[1/N_a | N_a >= 1, N_b >= 1]`` for two symbols ``a != b`` of a node.

    ``N_a`` counts the productions of the level above (``n_above * m`` of
    them, ``n_above`` defaulting to ``v``) that hold ``a`` at the node's
    position. They are distinct s-tuples drawn uniformly without replacement
    among ``v**s``, of which ``v**(s-1)`` hold ``a`` there and as many hold
    ``b``: ``(N_a, N_b)`` is multivariate hypergeometric. Conditioning on both
    counts being positive is conditioning on both symbols being possible, which
    the gap between them needs.
    """
    v, m, s = check_int("v", v, minimum=2), check_int("m", m, minimum=1), check_int("s", s, minimum=2)
    n_above = v if n_above is None else check_int("n_above", n_above, minimum=1)
    draws, each = n_above * m, v ** (s - 1)
    counts = np.arange(1, min(draws, each) + 1)
    i, j = np.meshgrid(counts, counts, indexing="ij")
    rest = draws - i - j
    ok = (rest >= 0) & (rest <= v**s - 2 * each)
    log_pmf = np.where(
        ok,
        _log_comb(each, i) + _log_comb(each, j) + _log_comb(v**s - 2 * each, np.where(ok, rest, 0))
        - _log_comb(v**s, draws),
        -np.inf,
    )
    weights = np.exp(log_pmf - log_pmf.max())
    return float(np.sum(weights / i) / np.sum(weights))


def _log_comb(n, k):
    """``log C(n, k)`` for arrays, through the log-gamma function."""
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def pair_gap(v: int, m: int, s: int, k: int, *, joint: bool = False, n_above: int | None = None) -> float:
    """The expected squared gap ``E ||P(Z | a) - P(Z | a')||^2`` between two symbols ``a != a'`` of a node.

    The context ``Z`` lies below a sibling of that node: the path goes up to
    the parent node ``g`` (whose symbol is uniform), through ``g``'s production
    to the sibling, then down ``k - 1`` more productions (``k >= 1``); with
    ``joint=True``, ``Z`` is the tuple under the last node, read jointly. By the
    lemma of Chapter 2 (exact for the RHM when ``g`` is uniform, e.g. the root),

        E Delta^2 = 2 (E[1/N] + (1 - E[1/N]) rho_0 - rho_1) ((1 - rho) / m)**(k - 1)  [/ m if joint],

    with ``rho = (v**(s-1) - 1) / (v**s - 1)`` (two distinct tuples agree at a
    position), ``rho_0 = (v**(s-2) - 1) / (v**(s-1) - 1)`` (two distinct tuples
    that agree at one position agree at another), ``rho_1 = 1 / v`` and ``N``
    as in :func:`inverse_occupancy`. It is ``2 m**(-k) (1 + O(1/m) + O(m/v))``.
    """
    v, m, s = check_int("v", v, minimum=2), check_int("m", m, minimum=1), check_int("s", s, minimum=2)
    k = check_int("k", k, minimum=1)
    inverse = inverse_occupancy(v, m, s, n_above)
    rho = (v ** (s - 1) - 1) / (v**s - 1)
    rho_0 = (v ** (s - 2) - 1) / (v ** (s - 1) - 1)
    first = inverse + (1 - inverse) * rho_0 - 1 / v
    gap = 2 * first * ((1 - rho) / m) ** (k - 1)
    return gap / m if joint else gap
