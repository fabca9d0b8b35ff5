"""Closed-form predictions of the signal-against-noise theory (Chapters 1 to 3).

These are formulas, not simulations: the chapters compare them with the exact
statistics of sampled grammars (:mod:`lpbook.exact`) and with learners.

- :func:`pair_gap`: the expected single-position gap after ``k`` random steps
  (the signal lemma of Chapter 2);
- :func:`level_statistics`: the exact per-parent quantities of one level's
  pooled contexts (occurrences, ``||q_a||^2``, pooled gaps);
- :func:`predicted_pstar`: the sample complexity of clustering that level by
  k-means, predicted from those quantities (Chapter 3, "The exponent in m");
- :func:`tuple_pstar`: the same prediction tuple by tuple, for skewed
  production laws (Chapter 6, "Robustness").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from . import exact
from ._validate import check_int
from .grammar import RHM
from .tree import Node, cousin_targets


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


@dataclass(frozen=True)
class LevelStatistics:
    """Exact statistics of the pooled contexts of one level, one entry per parent in use.

    For the ``n`` parents ``a`` of the level that occur (``n <= n_level``),
    with ``m`` synonymous tuples each:

    - ``occurrences``, shape ``(n,)``: the expected number of times *one*
      tuple of parent ``a`` occurs per sample, summed over the level's
      ``N_l`` positions (``w_t`` in Chapter 3);
    - ``purity``, shape ``(n,)``: ``||q_a||^2``, the collision probability of
      the pooled context distribution;
    - ``gaps``, shape ``(n, n)``: the pooled gaps ``||q_a - q_b||^2`` (zero on
      the diagonal);
    - ``slots``: the number ``R`` of context slots read per tuple, each
      weighted ``1/R`` in ``q_a``.
    """

    m: int
    slots: int
    occurrences: np.ndarray
    purity: np.ndarray
    gaps: np.ndarray

    @property
    def nearest_gap(self) -> np.ndarray:
        """``min_{b != a} ||q_a - q_b||^2`` for each parent ``a``, shape ``(n,)``."""
        off = self.gaps + np.diag(np.full(len(self.purity), np.inf))
        return off.min(axis=1)

    @property
    def weights(self) -> np.ndarray:
        """The share of the level's nodes held by each parent, shape ``(n,)``, summing to 1."""
        return self.occurrences / self.occurrences.sum()


def level_statistics(
    rhm: RHM, level: int, targets: Callable[[Node, int], list[Node]] = cousin_targets, *, joint: bool = True
) -> LevelStatistics:
    """The :class:`LevelStatistics` of the tuples under the level-``level`` nodes of ``rhm``.

    ``targets`` and ``joint`` choose the context, as in
    :func:`lpbook.exact.pooled_context` (default: the cousin tuples, read
    jointly, which is ILC's context). Parents that never occur are left out.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    q = exact.pooled_context(rhm, level, targets, joint=joint)[:: rhm.m]
    per_parent = exact.marginals(rhm)[level].sum(axis=0)  # occurrences of each parent per sample
    used = per_parent > 0
    q = q[used]
    slots = len(targets(Node(level, 0), rhm.s))
    return LevelStatistics(rhm.m, slots, per_parent[used] / rhm.m, (q**2).sum(axis=1), exact.squared_gaps(q))


#: Occurrences per tuple that k-means needs even when noise is far below the
#: gaps (the v*m term of the prediction). Set by hand once, from ILC sweeps
#: at v = 64 (L = 3, m = 2 to 12, 10 seeds), and kept fixed.
FLOOR_OCCURRENCES = 8.0
#: Accuracy lost per class that fails. A failing class merges with its nearest
#: neighbour (which fails with it), and k-means spends the freed centre on
#: splitting another class: one class and a half lost per pair of failing classes.
LOSS_PER_FAILING_CLASS = 0.75


def required_occurrences(stats: LevelStatistics, floor: float = FLOOR_OCCURRENCES) -> np.ndarray:
    """Occurrences per tuple at which each parent's class is found by k-means, shape ``(n,)``.

    ``floor + noise_a / min_b ||q_a - q_b||^2``: a tuple seen ``n`` times has
    an empirical context whose squared noise has mean ``noise_a / n``, with
    ``noise_a = (1 - R ||q_a||^2) / R`` (each occurrence adds ``1/R`` to one
    value in each of ``R`` disjoint slots; for ``R = 1`` it is the multinomial
    ``1 - ||q_a||^2``). k-means starts from single rows (its seeds and first
    assignments), which point to their class only once that noise is below
    the gap to the nearest other class. ``inf`` for a parent with a zero gap:
    no amount of data separates it.
    """
    R = stats.slots
    with np.errstate(divide="ignore"):
        return floor + (1 - R * stats.purity) / R / stats.nearest_gap


def _needed_samples(stats: LevelStatistics, floor: float) -> np.ndarray:
    """The ``P`` at which each parent's class is found: its required occurrences over its occurrences per sample."""
    return required_occurrences(stats, floor) / stats.occurrences


def predicted_accuracy(stats: LevelStatistics, P, floor: float = FLOOR_OCCURRENCES) -> np.ndarray:
    """Predicted k-means accuracy of the level at ``P`` training samples (scalar or array).

    Parent ``a`` fails while ``P * occurrences[a]`` is below its
    :func:`required_occurrences`; each failing parent costs
    :data:`LOSS_PER_FAILING_CLASS` times its weight.
    """
    P = np.asarray(P, dtype=float)
    failing = P[..., None] < _needed_samples(stats, floor)
    return np.clip(1 - LOSS_PER_FAILING_CLASS * (failing * stats.weights).sum(axis=-1), 0, 1)


def predicted_pstar(stats: LevelStatistics, threshold: float = 0.9, floor: float = FLOOR_OCCURRENCES) -> float:
    """The smallest ``P`` at which :func:`predicted_accuracy` reaches ``threshold`` (``inf`` if never)."""
    return _smallest_P(_needed_samples(stats, floor), stats.weights, threshold)


def _smallest_P(needed: np.ndarray, weights: np.ndarray, threshold) -> float:
    """The smallest ``P`` at which the failing share of ``weights`` costs at most ``1 - threshold``.

    ``needed`` and ``weights`` (same shape ``(k,)``, weights summing to 1): the
    ``P`` at which each of ``k`` groups of nodes succeeds, and its share of the nodes.
    """
    threshold = float(threshold)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    order = np.argsort(needed)
    failing_after = 1 - np.cumsum(weights[order])  # weight still failing once P reaches needed[order[i]]
    ok = LOSS_PER_FAILING_CLASS * failing_after <= 1 - threshold + 1e-12
    if not ok.any():
        return float("inf")
    return float(needed[order][np.argmax(ok)])


def tuple_occurrences(rhm: RHM, level: int) -> np.ndarray:
    """Expected occurrences per sample of each tuple under the level-``level`` nodes, shape ``(n, m)``.

    Row ``a`` (one per parent in use, in the order of :func:`level_statistics`)
    holds ``w_t = Pr(parent a, summed over positions) * pi_a(t)`` for the
    tuples ``rules[level][a, j]``, with ``pi_a`` the production law
    (:attr:`RHM.production_probs`): under uniform rules every entry of a row
    is the row's :attr:`LevelStatistics.occurrences`; under Zipf rules the
    rarest production of ``a`` is seen least.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    level = check_int("level", level, minimum=1)
    if level > rhm.L:
        raise ValueError(f"level must be at most L = {rhm.L}, got {level}")
    per_parent = exact.marginals(rhm)[level].sum(axis=0)
    used = per_parent > 0
    return per_parent[used, None] * rhm.production_probs[level][used]


def tuple_pstar(rhm: RHM, level: int | None = None, threshold: float = 0.9, floor: float = FLOOR_OCCURRENCES) -> float:
    """:func:`predicted_pstar` of ILC's context at ``level`` (default ``L - 1``), tuple by tuple.

    For any production law: tuple ``t`` of parent ``a`` is clustered right once
    ``P * w_t`` (:func:`tuple_occurrences`) reaches ``a``'s
    :func:`required_occurrences`, and each failing tuple costs
    :data:`LOSS_PER_FAILING_CLASS` times its share ``w_t / sum w`` of the
    level's nodes. Under uniform rules this equals :func:`predicted_pstar`;
    under skewed rules the rare productions need larger ``P``, but they also
    weigh less. ``inf`` if ``threshold`` is never reached.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    level = rhm.L - 1 if level is None else level
    level = check_int("level", level, minimum=1)
    if level >= rhm.L:
        raise ValueError(f"level must be below the root, 1 <= level <= L - 1 = {rhm.L - 1}, got {level}")
    occurrences = tuple_occurrences(rhm, level)
    needed = required_occurrences(level_statistics(rhm, level), floor)[:, None] / occurrences
    return _smallest_P(needed.ravel(), (occurrences / occurrences.sum()).ravel(), threshold)


def predict_pstars(v: int, m: int, s: int, L: int, thresholds=(0.9,), seeds=range(10), level: int | None = None) -> np.ndarray:
    """:func:`predicted_pstar` of ILC's context at ``level`` (default ``L - 1``) for the grammars ``RHM(v, m, s, L, seed)``.

    Returns an array of shape ``(len(thresholds), len(seeds))``: one predicted
    ``P*`` per threshold and grammar (``inf`` where a class is never separated).
    """
    L = check_int("L", L, minimum=2)
    level = L - 1 if level is None else check_int("level", level, minimum=1)
    out = np.empty((len(thresholds), len(seeds)))
    for j, seed in enumerate(seeds):
        stats = level_statistics(RHM(v, m, s, L, seed=seed), level)
        out[:, j] = [predicted_pstar(stats, t) for t in thresholds]
    return out
