"""Closed-form predictions of the signal-against-noise theory (Chapters 1 to 3).

These are formulas, not simulations: the chapters compare them with the exact
statistics of sampled grammars (:mod:`lpbook.exact`) and with learners.

- :func:`pair_gap`: the expected single-position gap after ``k`` random steps
  (the signal lemma of Chapter 2);
- :func:`level_statistics`: the exact per-parent quantities of one level's
  pooled contexts (occurrences, ``||q_a||^2``, pooled gaps);
- :func:`seeding_misses` and :func:`search_loss`: how many classes k-means++
  leaves without a seed, and what they cost (the search term of the prediction);
- :func:`predicted_pstar`: the sample complexity of clustering that level by
  k-means, predicted from those quantities (Chapter 3, "The exponent in m"):
  a floor plus k-means++'s greedy choice (``model="choice"``, the default),
  or the row-noise rule plus the plain chain (``model="rows"``);
- :func:`tuple_pstar`: the same prediction tuple by tuple, for skewed
  production laws (Chapter 6, "Robustness");
- :func:`choice_pstars` and :func:`fit_choice`: the greedy-choice model's
  ``P*`` over a grid of its two fitted constants, and their least-squares
  fit to measured ``P*`` (:mod:`lpbook.modelcheck` applies it to sweeps);
- :data:`CONSTANTS`: every constant of the prediction, with its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import comb, gammaln
from scipy.stats import norm

from . import exact
from ._validate import check_float, check_int
from .clustering import N_INIT
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
      weighted ``1/R`` in ``q_a``;
    - ``alphabet``: the level's alphabet size ``v``, the number of clusters
      that ILC asks k-means for (``None``: the number ``n`` of parents in use).
    """

    m: int
    slots: int
    occurrences: np.ndarray
    purity: np.ndarray
    gaps: np.ndarray
    alphabet: int | None = None

    @property
    def noise(self) -> np.ndarray:
        """``(1 - R ||q_a||^2) / R``, shape ``(n,)``: ``n_t`` times the mean squared noise of a row seen ``n_t`` times.

        Each occurrence adds ``1/R`` to one value in each of ``R`` disjoint
        slots; for ``R = 1`` it is the multinomial ``1 - ||q_a||^2``.
        """
        return (1 - self.slots * self.purity) / self.slots

    @property
    def nearest_gap(self) -> np.ndarray:
        """``min_{b != a} ||q_a - q_b||^2`` for each parent ``a``, shape ``(n,)``."""
        off = self.gaps + np.diag(np.full(len(self.purity), np.inf))
        return off.min(axis=1)

    @property
    def separable(self) -> np.ndarray:
        """Boolean, shape ``(n,)``: whether parent ``a``'s pooled context differs from every other's.

        ``False`` for a *twin*, a parent whose nearest gap is zero (below
        :data:`ZERO_GAP`): no amount of data separates it from its twin.
        """
        return self.nearest_gap > ZERO_GAP

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
    return LevelStatistics(rhm.m, slots, per_parent[used] / rhm.m, (q**2).sum(axis=1), exact.squared_gaps(q), rhm.v)


#: A nearest gap at or below this is zero: the parent is a twin (:attr:`LevelStatistics.separable`).
#: Pooled gaps of distinct contexts are of order ``m**-2``, far above it; identical ones come out exactly 0.
ZERO_GAP = 1e-12
#: The floor of the row-noise model (``model="rows"``): occurrences per tuple
#: that k-means needs even when noise is far below the gaps (its v*m term).
#: Set by hand once, from ILC sweeps at v = 64 (L = 3, m = 2 to 12, 10 seeds),
#: and kept fixed.
FLOOR_OCCURRENCES = 8.0
#: Accuracy lost per class that fails. A failing class merges with its nearest
#: neighbour (which fails with it), and k-means spends the freed centre on
#: splitting another class: one class and a half lost per pair of failing classes.
LOSS_PER_FAILING_CLASS = 0.75


def required_occurrences(stats: LevelStatistics, floor: float = FLOOR_OCCURRENCES) -> np.ndarray:
    """Occurrences per tuple at which each parent's class is found by k-means, shape ``(n,)``.

    ``floor + noise_a / min_b ||q_a - q_b||^2``: a tuple seen ``n`` times has
    an empirical context whose squared noise has mean ``noise_a / n``
    (:attr:`LevelStatistics.noise`). k-means starts from single rows (its seeds and first
    assignments), which point to their class only once that noise is below
    the gap to the nearest other class. ``inf`` for a twin, a parent of zero
    gap (:attr:`LevelStatistics.separable`): no amount of data separates it.
    """
    with np.errstate(divide="ignore"):
        return np.where(stats.separable, floor + stats.noise / stats.nearest_gap, np.inf)


def seed_trials(n_clusters: int) -> int:
    """Candidates that scikit-learn's greedy k-means++ draws per seed, keeping the one that lowers the objective most.

    ``2 + floor(log n_clusters)``, scikit-learn's default ``n_local_trials``.
    """
    return 2 + int(np.log(check_int("n_clusters", n_clusters, minimum=1)))


#: The spread ``c`` of the greedy choice (:func:`seeding_misses` with ``spread``), in
#: units of a seeded candidate's noise fluctuation: fitted, with :data:`CHOICE_FLOOR`,
#: by :func:`fit_choice` on ILC's measured P* of ``results/ilc-exponents`` (v = 16, 32
#: and 64, m = 2 to 12, L = 3, accuracy 0.9 and 0.99), a point of its grid.
CHOICE_SPREAD = 4.5
#: The floor ``n_0`` of the choice model (occurrences per tuple), the only other cost
#: it charges: fitted with :data:`CHOICE_SPREAD` (above), ``2**(31/8)`` on the grid
#: :data:`FIT_FLOORS`.
CHOICE_FLOOR = 2.0 ** (31 / 8)
#: The models of :func:`predicted_accuracy`.
MODELS = ("choice", "rows")

#: The grid of standardised gains on which :func:`_choice_table` is tabulated, and its quadrature.
_GAIN_GRID = np.linspace(0.0, 12.0, 481)
_QUAD = np.linspace(-8.0, 8.0, 641)


@lru_cache(maxsize=None)
def _choice_table(trials: int) -> np.ndarray:
    """``Pr(max of trials - k N(0,1) > a + max of k N(0,1))`` on ``_GAIN_GRID``, shape ``(trials + 1, len(_GAIN_GRID))``.

    Row ``k`` is the chance that the best of ``trials - k`` candidates of
    seeded classes beats the best of ``k`` candidates of unseeded classes,
    whose gains are larger by ``a`` standard deviations. Row 0 is 1 and row
    ``trials`` is 0.
    """
    y = _GAIN_GRID[:, None] + _QUAD  # (grid, quad): the best unseeded gain
    table = np.zeros((trials + 1, _GAIN_GRID.size))
    table[0] = 1.0
    step = _QUAD[1] - _QUAD[0]
    for k in range(1, trials):
        density = k * norm.pdf(_QUAD) * norm.cdf(_QUAD) ** (k - 1)  # of the max of k standard normals
        table[k] = ((1 - norm.cdf(y) ** (trials - k)) * density).sum(axis=1) * step
    return table


def _double_seed(p: np.ndarray, standardised_gain: np.ndarray, trials: int) -> np.ndarray:
    """The chance that a step seeds a class twice (shape of ``p``).

    ``p``: the chance that one candidate falls in a seeded class;
    ``standardised_gain``: what a candidate of an unseeded class gains over
    one of a seeded class, in standard deviations of their gains (``inf``: the
    greedy choice never errs). Of the ``trials`` candidates, ``k`` fall in
    unseeded classes with binomial probability, and the best seeded one is
    kept with the chance of :func:`_choice_table`.
    """
    table = _choice_table(trials)
    a = np.minimum(standardised_gain, _GAIN_GRID[-1])
    out = np.zeros_like(p)
    for k in range(trials):  # k = trials: an unseeded candidate is always kept
        beaten = np.interp(a, _GAIN_GRID, table[k])
        out += comb(trials, k) * p ** (trials - k) * (1 - p) ** k * beaten
    return out


def _seeding(stats: LevelStatistics, P, n_init: int, spread: float = 0.0):
    """The seeding chain of :func:`seeding_misses` at each ``P`` (shape ``S``).

    Returns ``Pr(D_best >= d)`` for ``d = 0..n'``, shape ``S + (n' + 1,)``,
    and the separable classes in the order they are missed (increasing
    uncovered mass, as indices into the ``n`` classes), shape ``S + (n',)``,
    for the ``n'`` separable classes (:attr:`LevelStatistics.separable`).
    The twins are left out of the chain: each takes a seed (the pair's one,
    and the one k-means spends on splitting another class) and offers its
    covered mass to the draw from the first step.
    """
    m, twins = stats.m, ~stats.separable
    index = np.flatnonzero(~twins)
    n, k = index.size, (stats.alphabet or len(twins)) - int(twins.sum())
    P = np.asarray(P, dtype=float)[..., None]
    gain = P * m * stats.occurrences[index] * stats.nearest_gap[index]  # S + (n,)
    uncovered = gain + 2 * m * stats.noise[index]
    order = np.argsort(uncovered, axis=-1, kind="stable")
    covered = 2 * (m - 1) * stats.noise  # (n_all,): the mass that a seeded class offers to the draw
    # A seeded candidate's gain fluctuates with its row's noise: its relative fluctuation (multinomial and
    # count) and the m - 2 other rows of its class. Shape S + (n_all,).
    candidate_sd = stats.noise * np.sqrt(2 * stats.purity + 1 / (P * stats.occurrences)) * np.sqrt((m - 2) ** 2 + 2)

    def seeded_sum(x):
        """The sum of x (shape S + (n_all,)) over the seeded classes, with the i separable classes of least
        uncovered mass still unseeded (i = 1..n), shape S + (n,)."""
        x = np.broadcast_to(x, P.shape[:-1] + covered.shape)
        sep = np.take_along_axis(x[..., index], order, axis=-1)
        return np.maximum(x.sum(axis=-1, keepdims=True) - np.cumsum(sep, axis=-1), 0)

    # With the i separable classes of least uncovered mass still unseeded: the mass of the seeded ones...
    M = seeded_sum(covered)
    # ...and the chance that a step's candidate falls in it.
    total = M + np.cumsum(np.take_along_axis(uncovered, order, axis=-1), axis=-1)
    p = np.divide(M, total, out=np.zeros_like(total), where=total > 0)
    # The choice errs when the waiting classes' mean gain is within the spread of the seeded candidates' gains,
    # averaged over the seeded classes in proportion to the mass by which they are drawn.
    # With spread 0 it never errs: a class is seeded twice only when no candidate is unseeded (p ** t).
    waiting_gain = np.cumsum(np.take_along_axis(gain, order, axis=-1), axis=-1) / np.arange(1, n + 1)
    sd = spread * np.divide(seeded_sum(covered * candidate_sd), M, out=np.zeros_like(M), where=M > 0)
    standardised = np.divide(waiting_gain, sd, out=np.full_like(sd, np.inf), where=sd > 0)
    double = _double_seed(p, standardised, seed_trials(k))
    dist = np.zeros(double.shape[:-1] + (n + 1,))
    dist[..., n] = 1  # before the first seed, every class is unseeded
    for _ in range(k):
        step = dist.copy()
        step[..., 1:] *= double
        step[..., :-1] += dist[..., 1:] * (1 - double)
        dist = step
    at_least = np.cumsum(dist[..., ::-1], axis=-1)[..., ::-1]  # Pr(D >= d) for one run
    return np.clip(at_least, 0, 1) ** n_init, index[order]


def seeding_misses(stats: LevelStatistics, P, *, n_init: int = N_INIT, spread: float = 0.0) -> np.ndarray:
    """``Pr(D = d)``, ``d = 0..n``, for the classes ``D`` that the best of ``n_init`` k-means++ runs leaves unseeded.

    ``P`` is a scalar or an array of shape ``S``; the result has shape
    ``S + (n + 1,)``. A model of scikit-learn's greedy k-means++ on the rows
    of the level, one per tuple, weighted by their counts (our derivation,
    Chapter 3, "A model of k-means' search"):

    - a row of a seeded class lies at squared distance about ``2 sigma^2``
      from the seed (two rows' noise), so the ``m - 1`` other rows of class
      ``a`` weigh ``2 (m - 1) noise_a`` in the draw, whatever ``P``;
    - a row of an unseeded class lies about its nearest gap away, so the
      class weighs ``P W_a Delta_a^2 + 2 m noise_a`` (``W_a``: occurrences per
      sample of all its tuples);
    - each seed draws :func:`seed_trials` candidates in proportion to those
      weights and keeps the one that lowers the objective most. With
      ``spread = 0`` (the plain chain) that is one of an unseeded class
      whenever it drew one (it lowers the objective by ``P W_a Delta_a^2``,
      more than a second seed in a class), so a step seeds a class twice when
      every candidate falls in seeded classes. With ``spread > 0`` (the
      greedy choice; :data:`CHOICE_SPREAD` is ours) each candidate's gain
      also has a Gaussian spread, ``spread * noise_a * sqrt(2 ||q_a||^2 + 1/n_t)
      * sqrt((m - 2)**2 + 2)`` for a candidate of class ``a``, averaged over
      the seeded classes in proportion to the mass ``2 (m - 1) noise_a`` by
      which they are drawn, and a seeded candidate is kept when its gain
      beats that of every unseeded one drawn, whose mean is that of the
      classes still waiting;
    - classes are seeded in the order of their weight, so the unseeded ones
      are those of least ``P W_a Delta_a^2``: a Markov chain over their
      number, through the ``k`` seeds (``k`` = :attr:`LevelStatistics.alphabet`);
    - a twin (a class of zero gap, :attr:`LevelStatistics.separable`) is
      lost whatever the seeding, a cost that :func:`predicted_accuracy`
      charges: the chain runs over the other classes with one seed fewer per
      twin, and ``D`` counts only those classes (``Pr(D = d) = 0`` for
      ``d`` above their number);
    - Lloyd's iterations keep a class without a seed merged with its nearest
      neighbour (a local optimum), and of ``n_init`` runs the one of lowest
      objective, the one with fewest misses, is kept:
      ``Pr(D_best >= d) = Pr(D >= d)**n_init``.
    """
    n_init, spread = check_int("n_init", n_init, minimum=1), _check_spread(spread)
    at_least, _ = _seeding(stats, P, n_init, spread)
    n_twins = len(stats.purity) + 1 - at_least.shape[-1]
    at_least = np.concatenate([at_least, np.zeros(at_least.shape[:-1] + (n_twins + 1,))], axis=-1)
    return at_least[..., :-1] - at_least[..., 1:]


def search_loss(stats: LevelStatistics, P, *, n_init: int = N_INIT, spread: float = 0.0) -> np.ndarray:
    """The accuracy lost to k-means' search at ``P`` (scalar or array, shape ``S``): the search term of the prediction.

    At the median number of classes that the best of ``n_init`` runs leaves
    unseeded (:func:`seeding_misses`, with its ``spread``): each such class (those of least
    ``P W_a Delta_a^2`` first) loses its share :attr:`LevelStatistics.weights`
    of the nodes, and the class seeded twice in its place half of one class,
    since its two clusters compete for one label. The shares are those of
    whole classes, so this term is the same under any production law.
    """
    n_init, spread = check_int("n_init", n_init, minimum=1), _check_spread(spread)
    at_least, order = _seeding(stats, P, n_init, spread)
    median = (at_least[..., 1:] >= 0.5).sum(axis=-1)  # the largest d with Pr(D_best >= d) >= 1/2
    share = stats.weights
    lost = np.concatenate([np.zeros(order.shape[:-1] + (1,)), np.cumsum(share[order], axis=-1)], axis=-1)
    return np.take_along_axis(lost, median[..., None], axis=-1)[..., 0] + 0.5 * median / len(share)


def _check_spread(spread) -> float:
    """``spread`` as a finite float >= 0, or an error naming it."""
    return check_float("spread", spread, low=0.0, closed=True)


def _accuracy(stats, P, needed, weights, n_init, search=True, spread=0.0) -> np.ndarray:
    """The predicted median accuracy at ``P`` (shape ``S``): the per-row failures, then the search's misses.

    ``needed`` and ``weights`` (shape ``(g,)``): the ``P`` at which each of
    ``g`` groups of nodes is past its required occurrences, and its share.
    """
    P = np.asarray(P, dtype=float)
    loss = LOSS_PER_FAILING_CLASS * ((P[..., None] < needed) @ weights)
    if search:
        loss = loss + search_loss(stats, P, n_init=n_init, spread=spread)
    return np.clip(1 - loss, 0, 1)


def predicted_accuracy(
    stats: LevelStatistics, P, floor: float | None = None, *, n_init: int = N_INIT, search: bool = True,
    model: str = "choice", spread: float | None = None,
) -> np.ndarray:
    """Predicted median k-means accuracy of the level at ``P`` training samples (scalar or array).

    Two terms, added; ``model`` (one of :data:`MODELS`) chooses them:

    - ``"choice"`` (the default, Chapter 3's prediction), the *greedy-choice*
      model: parent ``a`` fails only while ``P * occurrences[a]`` is below
      ``floor`` (default :data:`CHOICE_FLOOR`), and the search term models
      k-means++'s greedy choice (``spread =`` :data:`CHOICE_SPREAD`);
      a twin (a parent of zero gap) fails at every ``P``;
    - ``"rows"``, the *row-noise* model: parent ``a`` fails while
      ``P * occurrences[a]`` is below its :func:`required_occurrences`
      (``floor`` defaulting to :data:`FLOOR_OCCURRENCES`), a rule that stands
      in for the greedy choice, and the search term is the plain chain
      (:func:`search_loss` with ``spread = 0``).

    Each failing parent costs :data:`LOSS_PER_FAILING_CLASS` times its
    weight. The search term (left out with ``search=False``) counts the
    classes that k-means++ leaves without a seed in the best of ``n_init``
    runs, at the median of their number; each costs its weight and half of
    another class. ``spread`` replaces the model's spread of the greedy
    choice (``0``: the plain chain, a choice that never errs).
    """
    n_init = check_int("n_init", n_init, minimum=1)
    required, spread = _model(stats, floor, model, spread)
    return _accuracy(stats, P, required / stats.occurrences, stats.weights, n_init, search, spread)


def _model(
    stats: LevelStatistics, floor: float | None, model: str, spread: float | None = None
) -> tuple[np.ndarray, float]:
    """The occurrences per tuple that each parent needs under ``model`` (shape ``(n,)``), and the search's spread."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, got {model!r}")
    if model == "rows":
        needed, default = required_occurrences(stats, FLOOR_OCCURRENCES if floor is None else floor), 0.0
    else:
        floor = float(CHOICE_FLOOR if floor is None else floor)
        needed, default = np.where(stats.separable, floor, np.inf), CHOICE_SPREAD
    return needed, default if spread is None else _check_spread(spread)


def predicted_pstar(
    stats: LevelStatistics, threshold: float = 0.9, floor: float | None = None, *, n_init: int = N_INIT,
    search: bool = True, model: str = "choice", spread: float | None = None,
) -> float:
    """The smallest ``P`` at which :func:`predicted_accuracy` (same arguments) reaches ``threshold`` (``inf`` if never)."""
    n_init = check_int("n_init", n_init, minimum=1)
    required, spread = _model(stats, floor, model, spread)
    return _pstar(stats, required / stats.occurrences, stats.weights, threshold, n_init, search, spread)


def _pstar(stats, needed, weights, threshold, n_init, search=True, spread=0.0) -> float:
    """The smallest ``P`` at which :func:`_accuracy` reaches ``threshold``: the per-row ``P*``, then the search's."""
    lower = _noise_pstar(needed, weights, threshold)
    if not search:
        return lower
    return _smallest_P(lambda P: _accuracy(stats, P, needed, weights, n_init, True, spread), lower, threshold)


def _noise_pstar(needed: np.ndarray, weights: np.ndarray, threshold) -> float:
    """The smallest ``P`` at which the row-noise failures alone cost at most ``1 - threshold``.

    ``needed`` and ``weights`` (same shape ``(g,)``, weights summing to 1): the
    ``P`` at which each of ``g`` groups of nodes succeeds, and its share of the nodes.
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


#: The search for P*: doublings above the row-noise P*, and the steps per doubling.
_DOUBLINGS, _STEPS = 24, 8


def _smallest_P(accuracy: Callable[[np.ndarray], np.ndarray], lower: float, threshold: float) -> float:
    """The smallest ``P >= lower`` from which ``accuracy(P)`` (vectorised over ``P``) stays at ``threshold`` or above.

    The search term only removes accuracy, so the row-noise ``P*`` is a lower
    bound. A grid of ``_STEPS`` points per doubling up to ``2**_DOUBLINGS``
    times that bound (``inf`` if ``threshold`` is not reached there), then two
    refinements of the last crossing, 64 steps each: a relative precision below 1e-4.
    """
    if not np.isfinite(lower):
        return float("inf")
    grid = lower * 2.0 ** (np.arange(_DOUBLINGS * _STEPS + 1) / _STEPS)
    for _ in range(3):
        failing = np.flatnonzero(accuracy(grid) < threshold - 1e-12)
        if failing.size == 0:
            return float(grid[0])
        if failing[-1] == grid.size - 1:
            return float("inf")
        grid = np.geomspace(grid[failing[-1]], grid[failing[-1] + 1], 65)
    return float(grid[-1])


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


def tuple_pstar(
    rhm: RHM, level: int | None = None, threshold: float = 0.9, floor: float | None = None, *, n_init: int = N_INIT,
    model: str = "choice",
) -> float:
    """:func:`predicted_pstar` (of ``model``) of ILC's context at ``level`` (default ``L - 1``), tuple by tuple.

    For any production law: tuple ``t`` of parent ``a`` is past its floor
    (and, for ``model="rows"``, the row noise) once ``P * w_t``
    (:func:`tuple_occurrences`) reaches the occurrences that ``a`` needs, and
    each failing tuple costs :data:`LOSS_PER_FAILING_CLASS` times its share
    ``w_t / sum w`` of the level's nodes; the search term
    (:func:`search_loss`) is that of whole classes, the same under any law.
    Under uniform rules this equals :func:`predicted_pstar`; under skewed
    rules the rare productions need larger ``P``, but they also weigh less.
    ``inf`` if ``threshold`` is never reached.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    level = rhm.L - 1 if level is None else level
    level = check_int("level", level, minimum=1)
    if level >= rhm.L:
        raise ValueError(f"level must be below the root, 1 <= level <= L - 1 = {rhm.L - 1}, got {level}")
    n_init = check_int("n_init", n_init, minimum=1)
    occurrences = tuple_occurrences(rhm, level)
    stats = level_statistics(rhm, level)
    required, spread = _model(stats, floor, model)
    needed = (required[:, None] / occurrences).ravel()
    return _pstar(stats, needed, (occurrences / occurrences.sum()).ravel(), threshold, n_init, True, spread)


def predict_pstars(
    v: int, m: int, s: int, L: int, thresholds=(0.9,), seeds=range(10), level: int | None = None, *, model: str = "choice",
    floor: float | None = None, spread: float | None = None,
) -> np.ndarray:
    """:func:`predicted_pstar` (of ``model``) of ILC's context at ``level`` (default ``L - 1``) for the grammars ``RHM(v, m, s, L, seed)``.

    Returns an array of shape ``(len(thresholds), len(seeds))``: one predicted
    ``P*`` per threshold and grammar (``inf`` where a class is never separated).
    ``floor`` and ``spread`` replace the model's constants.
    """
    L = check_int("L", L, minimum=2)
    level = L - 1 if level is None else check_int("level", level, minimum=1)
    out = np.empty((len(thresholds), len(seeds)))
    for j, seed in enumerate(seeds):
        stats = level_statistics(RHM(v, m, s, L, seed=seed), level)
        out[:, j] = [predicted_pstar(stats, t, floor, model=model, spread=spread) for t in thresholds]
    return out


# ------------------------------------------------------------------ fitting the greedy-choice model's constants

#: Points per doubling of the lattice of :func:`choice_pstars`: its ``P*`` lie within ``2**(1/32)``, 2.2%, of
#: :func:`predicted_pstar`'s.
LATTICE = 32


def _as_grid(name: str, values, check) -> np.ndarray:
    """``values`` (a number or a sequence) as a 1-d float array, each entry passed through ``check``."""
    values = np.atleast_1d(np.asarray(values, dtype=object))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty sequence of numbers")
    return np.array([check(x) for x in values], dtype=float)


def _check_floor(floor) -> float:
    """``floor`` as a finite float > 0, or an error naming it."""
    return check_float("floor", floor, low=0.0)


def _check_threshold(threshold) -> float:
    """``threshold`` as a float in ``(0, 1]``, or an error naming it."""
    return check_float("threshold", threshold, low=0.0, high=1.0, closed_high=True)


def choice_pstars(
    stats: LevelStatistics, thresholds=(0.9,), floors=(CHOICE_FLOOR,), spreads=(CHOICE_SPREAD,), *,
    n_init: int = N_INIT,
) -> np.ndarray:
    """:func:`predicted_pstar` of the greedy-choice model for every threshold, floor and spread at once.

    Returns shape ``(len(thresholds), len(floors), len(spreads))`` (scalars
    count as length 1): the smallest point of the lattice ``2**(j / LATTICE)``
    (integer ``j``) from which :func:`predicted_accuracy` stays at the
    threshold or above, so within a factor ``2**(1/LATTICE)`` above
    :func:`predicted_pstar` (``inf`` where it is ``inf``). The search term
    does not depend on the floor, so it is computed once per spread on the
    lattice; it is taken as 0 from the first power of two at which it is 0,
    as it is at every larger ``P``. This is what makes a fit over a grid of
    constants (:func:`fit_choice`) cheap.
    """
    thresholds = _as_grid("thresholds", thresholds, _check_threshold)
    floors = _as_grid("floors", floors, _check_floor)
    spreads = _as_grid("spreads", spreads, _check_spread)
    n_init = check_int("n_init", n_init, minimum=1)
    out = np.full((thresholds.size, floors.size, spreads.size), np.inf)
    separable = stats.separable
    if not separable.any():
        return out
    needed = np.where(separable, floors[:, None] / stats.occurrences, np.inf)  # (f, n): P at which each class passes
    low, high = np.log2(needed.min()), np.log2(needed[:, separable].max()) + _DOUBLINGS
    P = 2.0 ** (np.arange(np.floor(low * LATTICE), np.ceil(high * LATTICE) + 1) / LATTICE)  # (S,)
    floor_loss = LOSS_PER_FAILING_CLASS * ((P[:, None, None] < needed) @ stats.weights)  # (S, f)
    coarse = np.arange(0, P.size, LATTICE)
    for k, spread in enumerate(spreads):
        searching = np.flatnonzero(search_loss(stats, P[coarse], n_init=n_init, spread=spread) > 0)
        end = P.size if searching.size == 0 or searching[-1] == coarse.size - 1 else coarse[searching[-1] + 1]
        search = np.zeros(P.size)
        if searching.size:
            search[:end] = search_loss(stats, P[:end], n_init=n_init, spread=spread)
        accuracy = 1 - floor_loss - search[:, None]  # (S, f)
        for i, threshold in enumerate(thresholds):
            failing = accuracy < threshold - 1e-12
            last = P.size - 1 - np.argmax(failing[::-1], axis=0)  # the last failing lattice point, per floor
            first_ok = np.where(failing.any(axis=0), last + 1, 0)
            out[i, :, k] = np.where(first_ok < P.size, P[np.minimum(first_ok, P.size - 1)], np.inf)
    return out


@dataclass(frozen=True)
class ChoiceFit:
    """The floor and spread of the greedy-choice model fitted by :func:`fit_choice`.

    ``floor`` and ``spread`` minimise ``objective``, shape
    ``(len(floors), len(spreads))``: the mean over the ``n_points`` fitted
    points of ``(log measured - log predicted)**2`` (``inf`` where a point is
    predicted never to reach its threshold). ``rms`` is its square root at
    the minimum, the typical factor ``exp(rms)`` between measured and
    predicted ``P*``.
    """

    floor: float
    spread: float
    rms: float
    n_points: int
    floors: tuple
    spreads: tuple
    objective: np.ndarray


#: The grids of :func:`fit_choice`: floors from 4 to 64 occurrences per tuple in steps of 2**(1/8), spreads
#: from 0 (the plain chain) to 8 in steps of 0.5.
FIT_FLOORS = 2.0 ** np.arange(2, 6 + 1e-9, 1 / 8)
FIT_SPREADS = np.arange(0, 8 + 1e-9, 0.5)


def fit_choice(predicted, measured, floors=FIT_FLOORS, spreads=FIT_SPREADS) -> ChoiceFit:
    """Least squares in ``log P*``: the floor and spread whose predictions best match measured ``P*``.

    ``predicted``, shape ``(k, len(floors), len(spreads))``: the predicted
    ``P*`` of each of ``k`` measured points for every constant pair, from
    :func:`choice_pstars` (the median over a point's grammars, if it has
    several); ``measured``, shape ``(k,)``: the measured ``P*``, finite and
    positive. The objective, the mean of ``(log measured - log
    predicted)**2`` over the ``k`` points, is minimised over the grid; a
    pair that predicts some point never to reach its threshold is excluded.
    """
    floors = _as_grid("floors", floors, _check_floor)
    spreads = _as_grid("spreads", spreads, _check_spread)
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if measured.ndim != 1 or measured.size == 0 or not (np.isfinite(measured).all() and (measured > 0).all()):
        raise ValueError("measured must be a non-empty 1-d array of finite P* > 0")
    if predicted.shape != (measured.size, floors.size, spreads.size):
        raise ValueError(f"predicted must have shape (len(measured), len(floors), len(spreads)) = "
                         f"{(measured.size, floors.size, spreads.size)}, got {predicted.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        errors = np.log(measured)[:, None, None] - np.log(predicted)
    objective = np.where(np.isfinite(errors).all(axis=0), np.mean(errors**2, axis=0), np.inf)
    if not np.isfinite(objective).any():
        raise ValueError("every floor and spread of the grid predicts some point never to reach its threshold")
    i, k = np.unravel_index(np.argmin(objective), objective.shape)
    return ChoiceFit(float(floors[i]), float(spreads[k]), float(np.sqrt(objective[i, k])), int(measured.size),
                     tuple(floors.tolist()), tuple(spreads.tolist()), objective)


# ------------------------------------------------------------------ the model's constants, in one table


@dataclass(frozen=True)
class Constant:
    """One constant or rule of the predicted ``P*`` (:data:`CONSTANTS`).

    ``source`` is ``"fitted"`` (on measured ``P*``), ``"by hand"`` (a choice
    argued in the model, not fitted) or ``"derived"`` (fixed by k-means,
    scikit-learn or ILC, or by a calculation); ``basis`` says on what it was
    fitted, or the argument behind it.
    """

    name: str
    value: str
    role: str
    source: str
    basis: str


#: Every constant and rule that shapes :func:`predicted_pstar` of the greedy-choice model (and the row-noise
#: model's own floor), with its source.
CONSTANTS = (
    Constant("floor n_0 (CHOICE_FLOOR)", f"{CHOICE_FLOOR:.2f}", "occurrences per tuple below which a class is lost",
             "fitted", "fit_choice: least squares in log P* on results/ilc-exponents (ILC, L = 3, v = 16, 32, 64, "
             "m = 2 to 12, accuracy 0.9 and 0.99), jointly with the spread"),
    Constant("spread c (CHOICE_SPREAD)", f"{CHOICE_SPREAD:g}",
             "the greedy choice's spread, in units of a seeded candidate's noise fluctuation", "fitted",
             "jointly with the floor, on the same measurements"),
    Constant("LOSS_PER_FAILING_CLASS", f"{LOSS_PER_FAILING_CLASS:g}",
             "accuracy lost per class below its floor (or a twin), in units of its weight", "by hand",
             "a lost class merges with its nearest neighbour and k-means spends the freed centre on splitting "
             "another class: one class and a half per pair"),
    Constant("cost of a class without a seed", "its weight + 0.5 / n", "accuracy lost per class that k-means++ "
             "leaves without a seed", "by hand", "the class seeded twice in its place splits into two clusters that "
             "compete for one label: half of a class"),
    Constant("median of n_miss (best run)", "median", "which number of classes without a seed the search term charges",
             "by hand", "the prediction is of the median accuracy over k-means' starts, as measured P* is read off "
             "the median over seeds"),
    Constant("best of n_init runs", "Pr(n_miss ≥ d)^n_init", "the restart that ILC keeps", "by hand",
             "the run of lowest objective is taken to be the one with fewest classes without a seed"),
    Constant("candidates per seed n_try", "2 + ⌊ln v⌋", "how many rows each seed draws (v clusters)", "derived",
             "scikit-learn's n_local_trials (a test reads its source)"),
    Constant("n_init", f"{N_INIT}", "k-means restarts", "derived", "ILC's default (lpbook.clustering.N_INIT)"),
    Constant("masses in the draw", "2 (m − 1) noise_a; P W_a Δ_a² + 2 m noise_a",
             "what a seeded and a waiting class offer to k-means++'s draw", "derived",
             "mean squared distances of a class's rows to the nearest seed"),
    Constant("shape of the spread", "noise_a √(2 ‖q_a‖² + 1/n_t) √((m − 2)² + 2)",
             "a seeded candidate's gain fluctuation, before c", "derived",
             "the multinomial and count fluctuation of a row's noise over its own row, its seed's and m − 2 "
             "class-mates'; the terms are neither Gaussian nor independent, hence the fitted c"),
    Constant("twins (zero gap)", "lost at every P", "a class whose context equals another's", "derived",
             "no data separates identical contexts"),
    Constant("FLOOR_OCCURRENCES (row-noise model)", f"{FLOOR_OCCURRENCES:g}",
             "the row-noise model's floor (model='rows' only)", "by hand",
             "set once on ILC sweeps at v = 64 (L = 3, m = 2 to 12, 10 seeds)"),
)
