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
local optimum), not of information.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from ._validate import check_int
from .clustering import cluster_rows
from .empirical import pooled_counts
from .grammar import RHM
from .metrics import class_recall, level_accuracy
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


def top_step_outcome(rhm: RHM, P: int, init: str, *, seed: int = 0, n_init: int = 10, n_test: int = 2000) -> StepOutcome:
    """The :class:`StepOutcome` of one clustering step at level ``L - 1`` on the true level-``(L - 2)`` symbols of ``P`` samples.

    ``init`` is ``"k-means++"`` (ILC's clustering, :func:`lpbook.clustering.cluster_rows`
    with ``n_init`` restarts) or ``"true centres"`` (``n_init`` is then unused).
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
    counts = pooled_counts(rhm, rhm.sample(P, seed=2 * seed), level, cousin_targets)
    if init == "true centres":
        clusters = _true_centre_clusters(counts, rhm.m)
    else:
        clusters = cluster_rows(counts, rhm.v, seed, n_init=n_init)
    totals = counts.sum(axis=1)
    seen = totals > 0
    inertia = _inertia(counts[seen] / totals[seen, None], totals[seen].astype(float), clusters[seen])
    test = rhm.sample(check_int("n_test", n_test, minimum=1), seed=2 * seed + 1)
    tuples = rhm.tuple_index(level, test.levels[level - 1].reshape(test.P, -1, rhm.s))
    true, learned = test.levels[level], clusters[tuples]
    recall = class_recall(true, learned)
    return StepOutcome(level_accuracy(true, learned), inertia, int(np.sum(recall[np.isfinite(recall)] < 0.5)))


def top_step_accuracy(rhm: RHM, P: int, init: str, *, seed: int = 0, n_test: int = 2000) -> float:
    """The accuracy of :func:`top_step_outcome` (ILC's ten restarts for ``"k-means++"``)."""
    return top_step_outcome(rhm, P, init, seed=seed, n_test=n_test).accuracy


def top_step_rows(v: int, m: int, s: int, L: int, P_grid, seeds, init: str) -> list[dict]:
    """:func:`top_step_accuracy` over ``P_grid`` and ``seeds`` (grammar ``RHM(v, m, s, L, seed)``), as sweep rows.

    Each row is ``{"P", "seed", "accuracy": {L - 1: accuracy}}``, the form
    that :func:`lpbook.sweep.estimate_pstar` reads.
    """
    rows = []
    for seed in seeds:
        rhm = RHM(v, m, s, L, seed=seed)
        rows += [{"P": int(P), "seed": seed, "accuracy": {L - 1: top_step_accuracy(rhm, int(P), init, seed=seed)}}
                 for P in P_grid]
    return rows
