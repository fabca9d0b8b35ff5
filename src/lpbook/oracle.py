"""What k-means' search costs: the top clustering step started from the true centres (Chapter 3).

ILC's k-means starts from k-means++ seeds, single rows of the context matrix.
:func:`top_step_accuracy` runs the clustering step of the top non-root level
on the true level-``(L-2)`` symbols twice: as ILC does, and as a single run of
Lloyd's algorithm started at the centres of the true synonym classes, which
only this diagnostic knows. The difference between the two is the price of
finding the classes, as opposed to assigning rows to known classes.
:func:`top_step_outcome` also returns each solution's k-means objective and
the number of classes it loses: when the true partition has the lower
objective but k-means++ does not find it, the failure is one of search (a
local optimum), not of information. :func:`unseeded_classes` counts the
classes that k-means++ leaves without a seed, which
:func:`lpbook.theory.seeding_misses` predicts, and :func:`seeding_trace`
says, for each class seeded twice, whether the draw offered no unseeded
class or the greedy choice passed one over.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning

from ._validate import check_int
from .clustering import N_INIT, cluster_rows, row_distributions
from .empirical import pooled_counts
from .grammar import RHM, sample_seeds
from .metrics import class_recall, level_accuracy
from .theory import seed_trials
from .tree import cousin_targets

INITS = ("k-means++", "true centres")


def _true_centre_clusters(counts: np.ndarray, m: int) -> np.ndarray:
    """Lloyd's algorithm on the seen rows of ``counts`` (shape ``(n*m, D)``), started at the true class centres.

    Row ``a*m + j`` belongs to class ``a``. Returns the cluster of each row, ``-1`` for unseen rows.
    """
    totals = counts.sum(axis=1)
    seen = totals > 0
    X = counts[seen] / totals[seen, None]
    classes = np.flatnonzero(seen) // m
    used = np.unique(classes)
    centres = np.stack([np.average(X[classes == a], axis=0, weights=totals[seen][classes == a]) for a in used])
    out = np.full(counts.shape[0], -1, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out[seen] = KMeans(len(used), init=centres, n_init=1).fit(X, sample_weight=totals[seen]).labels_
    return out


@dataclass(frozen=True)
class StepOutcome:
    """One clustering step of :func:`top_step_outcome`.

    - ``accuracy``: :func:`lpbook.level_accuracy` on held-out samples;
    - ``inertia``: the weighted k-means objective of the solution on the
      training rows, ``sum_t n_t ||x_t - c_{k(t)}||^2`` (``x_t`` a row's
      empirical context, ``n_t`` its count, ``c_k`` the weighted mean of
      cluster ``k``), whatever the start;
    - ``lost_classes``: the true classes with less than half of their
      held-out nodes coded right (:func:`lpbook.metrics.class_recall`).
    """

    accuracy: float
    inertia: float
    lost_classes: int


def _inertia(X: np.ndarray, weights: np.ndarray, labels: np.ndarray) -> float:
    """The weighted k-means objective of ``labels`` (shape ``(n,)``) on the rows of ``X`` (``(n, D)``), weights ``(n,)``."""
    k = int(labels.max()) + 1
    mass = np.bincount(labels, weights, minlength=k)
    members = sparse.csr_matrix((weights, (labels, np.arange(labels.size))), shape=(k, labels.size))
    centres = members @ X  # (k, D): the weighted sum of each cluster's rows
    centres /= np.maximum(mass, np.finfo(float).tiny)[:, None]
    return float(np.sum(weights * ((X - centres[labels]) ** 2).sum(axis=1)))


def top_step_outcome(rhm: RHM, P: int, init: str, *, seed: int = 0, n_init: int = N_INIT, n_test: int = 2000,
                     targets=cousin_targets) -> StepOutcome:
    """The :class:`StepOutcome` of one clustering step at level ``L - 1`` on the true level-``(L - 2)`` symbols of ``P`` samples.

    ``init`` is ``"k-means++"`` (ILC's clustering, :func:`lpbook.clustering.cluster_rows`
    with ``n_init`` restarts) or ``"true centres"`` (``n_init`` is then unused).
    ``targets`` chooses the context (ILC's cousin tuples by default;
    :func:`lpbook.tree.token_targets` for TokenClustering's).
    Training samples are ``rhm.sample(P, seed=2*seed)``; the scores are taken on
    ``n_test`` held-out samples (``seed=2*seed + 1``), where a tuple never seen
    in training counts as wrong.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if rhm.L < 2:
        raise ValueError(f"rhm.L must be >= 2, got {rhm.L}")
    P, seed = check_int("P", P, minimum=1), check_int("seed", seed, minimum=0)
    n_init = check_int("n_init", n_init, minimum=1)
    level = rhm.L - 1
    train, test = rhm.train_test(P, n_test, seed)
    counts = pooled_counts(rhm, train, level, targets)
    if init == "true centres":
        clusters = _true_centre_clusters(counts, rhm.m)
    else:
        clusters = cluster_rows(counts, rhm.v, seed, n_init=n_init)
    totals = counts.sum(axis=1)
    seen = totals > 0
    inertia = _inertia(counts[seen] / totals[seen, None], totals[seen].astype(float), clusters[seen])
    tuples = rhm.tuple_index(level, test.levels[level - 1].reshape(test.P, -1, rhm.s))
    true, learned = test.levels[level], clusters[tuples]
    recall = class_recall(true, learned)
    return StepOutcome(level_accuracy(true, learned), inertia, int(np.sum(recall[np.isfinite(recall)] < 0.5)))


def top_step_accuracy(rhm: RHM, P: int, init: str, *, seed: int = 0, n_test: int = 2000, targets=cousin_targets) -> float:
    """The accuracy of :func:`top_step_outcome` (ILC's ten restarts for ``"k-means++"``)."""
    return top_step_outcome(rhm, P, init, seed=seed, n_test=n_test, targets=targets).accuracy


def top_step_rows(v: int, m: int, s: int, L: int, P_grid, seeds, init: str, targets=cousin_targets) -> list[dict]:
    """:func:`top_step_accuracy` over ``P_grid`` and ``seeds`` (grammar ``RHM(v, m, s, L, seed)``), as sweep rows.

    Each row is ``{"P", "seed", "accuracy": {L - 1: accuracy}}``, the form
    that :func:`lpbook.pstar.estimate_pstar` reads.
    """
    rows = []
    for seed in seeds:
        rhm = RHM(v, m, s, L, seed=seed)
        rows += [{"P": int(P), "seed": seed,
                  "accuracy": {L - 1: top_step_accuracy(rhm, int(P), init, seed=seed, targets=targets)}}
                 for P in P_grid]
    return rows


def _top_rows(rhm: RHM, P: int, seed: int, targets=cousin_targets):
    """The seen rows of the top step on ``rhm.sample(P, seed=2*seed)``: ``(X, weights, classes)``, shapes ``(n, D), (n,), (n,)``.

    ``X`` holds the rows' empirical contexts, ``weights`` their counts and
    ``classes`` their parents; checks the arguments of the seeding diagnostics.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    if rhm.L < 2:
        raise ValueError(f"rhm.L must be >= 2, got {rhm.L}")
    P, seed = check_int("P", P, minimum=1), check_int("seed", seed, minimum=0)
    counts = pooled_counts(rhm, rhm.sample(P, seed=sample_seeds(seed)[0]), rhm.L - 1, targets)
    seen, totals, X = row_distributions(counts)
    if seen.size <= rhm.v:
        raise ValueError(f"P = {P} shows {seen.size} tuples, not more than the {rhm.v} seeds: take a larger P")
    return X, totals.astype(float), seen // rhm.m


def unseeded_classes(rhm: RHM, P: int, n_runs: int, *, seed: int = 0, targets=cousin_targets) -> np.ndarray:
    """Classes without a seed after each of ``n_runs`` k-means++ seedings of the top step's rows, shape ``(n_runs,)``.

    The rows are those of :func:`top_step_outcome` (the true level-``(L-2)``
    symbols of ``rhm.sample(P, seed=2*seed)``), weighted by their counts as
    ILC weights them, with ``rhm.v`` seeds (scikit-learn's ``kmeans_plusplus``);
    run ``i`` uses ``random_state=seed + i``. A class counts when none of its
    seen tuples is a seed. ``targets`` chooses the context, as in :func:`top_step_outcome`.
    """
    n_runs = check_int("n_runs", n_runs, minimum=1)
    X, weights, classes = _top_rows(rhm, P, seed, targets)
    present = np.unique(classes).size
    return np.array([present - np.unique(classes[kmeans_plusplus(X, rhm.v, sample_weight=weights,
                                                                  random_state=seed + i)[1]]).size
                     for i in range(n_runs)])


@dataclass(frozen=True)
class SeedingTrace:
    """One greedy k-means++ seeding of the top step's rows (:func:`seeding_trace`).

    - ``unseeded``: the classes without a seed at the end;
    - ``drawn_none``: steps that seeded a class twice because every candidate
      drawn lay in a seeded class;
    - ``passed_over``: steps that seeded a class twice although a candidate of
      an unseeded class was drawn: the greedy choice kept another.

    With ``k`` seeds and ``n`` classes present,
    ``unseeded = drawn_none + passed_over - (k - n)``.
    """

    unseeded: int
    drawn_none: int
    passed_over: int


def seeding_trace(rhm: RHM, P: int, n_runs: int, *, seed: int = 0) -> list[SeedingTrace]:
    """Greedy k-means++ on the rows of :func:`unseeded_classes`, traced step by step: one :class:`SeedingTrace` per run.

    Our implementation of the seeding that scikit-learn runs (Arthur and
    Vassilvitskii's k-means++ with greedy candidates): the first seed is
    drawn in proportion to the rows' counts, and each of the other
    ``rhm.v - 1`` draws :func:`lpbook.theory.seed_trials` candidates in
    proportion to count times squared distance to the nearest seed, and keeps
    the one that leaves the lowest weighted objective. scikit-learn does not
    expose its candidates, hence this copy of the algorithm. Run ``i`` draws
    from ``numpy.random.default_rng(seed + i)``, not scikit-learn's
    generator, so runs agree with :func:`unseeded_classes` in distribution,
    not one by one.
    """
    n_runs = check_int("n_runs", n_runs, minimum=1)
    X, weights, classes = _top_rows(rhm, P, seed)
    norms = (X**2).sum(axis=1)

    def distances(rows):  # squared distances of every row to each of `rows`, shape (n, len(rows))
        return np.maximum(norms[:, None] + norms[rows][None, :] - 2 * X @ X[rows].T, 0)

    def run(rng) -> SeedingTrace:
        first = rng.choice(weights.size, p=weights / weights.sum())
        closest = distances([first])[:, 0]
        seeded = np.zeros(rhm.v, dtype=bool)
        seeded[classes[first]] = True
        drawn_none = passed_over = 0
        for _ in range(rhm.v - 1):
            mass = np.cumsum(weights * closest)
            candidates = np.minimum(np.searchsorted(mass, rng.random(seed_trials(rhm.v)) * mass[-1]), weights.size - 1)
            after = np.minimum(closest[:, None], distances(candidates))
            best = int(np.argmin(weights @ after))
            if seeded[classes[candidates[best]]]:
                if seeded[classes[candidates]].all():
                    drawn_none += 1
                else:
                    passed_over += 1
            seeded[classes[candidates[best]]] = True
            closest = after[:, best]
        return SeedingTrace(int(np.unique(classes).size - seeded.sum()), drawn_none, passed_over)

    return [run(np.random.default_rng(seed + i)) for i in range(n_runs)]
