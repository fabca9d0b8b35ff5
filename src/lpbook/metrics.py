"""Accuracy of learned codes up to a relabelling of the alphabet.

A learner that recovers a latent level can only do so up to a permutation of
that level's symbols. We score it after the best one-to-one relabelling
(Hungarian matching on the confusion matrix, ``scipy.optimize.linear_sum_assignment``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._validate import check_int, check_int_array, check_memory, check_range
from .grammar import RHM, encode_tuples


def _matching(true: np.ndarray, learned: np.ndarray):
    """The best one-to-one matching of learned codes to true codes.

    ``true`` and ``learned`` are 1-D integer arrays of equal length; ``true >= 0``,
    and ``learned < 0`` marks an item without a code, which always counts as wrong.
    Returns ``(true_values, confusion, rows, cols)``: the true values present
    among coded items, the confusion matrix ``(n_true, n_learned)`` and the
    matched pairs of its rows and columns.
    """
    coded = learned >= 0
    # Codes are renumbered by rank among the values present, so that the
    # confusion matrix has one row and column per value present, whatever the values.
    true_values, true_index = np.unique(true[coded], return_inverse=True)
    learned_values, learned_index = np.unique(learned[coded], return_inverse=True)
    n_true, n_learned = max(true_values.size, 1), max(learned_values.size, 1)
    check_memory(
        "learned_codes", f"<{learned_values.size} distinct codes>", 8 * n_true * n_learned,
        f"the confusion matrix ({n_true} true x {n_learned} learned codes, int64)",
    )
    confusion = np.bincount(
        true_index.astype(np.int64) * n_learned + learned_index, minlength=n_true * n_learned
    ).reshape(n_true, n_learned)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    return true_values, confusion, rows, cols


def _matched_fraction(true: np.ndarray, learned: np.ndarray) -> float:
    """Fraction of items whose learned code maps to their true code under the best matching (see :func:`_matching`)."""
    _, confusion, rows, cols = _matching(true, learned)
    return float(confusion[rows, cols].sum() / true.size)


def class_recall(true_codes, learned_codes) -> np.ndarray:
    """For each true symbol, the fraction of its nodes coded right under the best relabelling of :func:`level_accuracy`.

    ``true_codes`` and ``learned_codes`` as in :func:`level_accuracy`. Returns
    a float array of shape ``(true_codes.max() + 1,)``; a symbol that never
    occurs gets ``nan``.
    """
    true = check_int_array("true_codes", true_codes).ravel()
    learned = check_int_array("learned_codes", learned_codes).ravel()
    if true.shape != learned.shape:
        raise ValueError(f"true_codes and learned_codes must have the same size, got {true.size} and {learned.size}")
    if true.size == 0 or true.min() < 0:
        raise ValueError("true_codes must be non-empty and >= 0")
    true_values, confusion, rows, cols = _matching(true, learned)
    right = np.zeros(true.max() + 1)
    right[true_values[rows[rows < true_values.size]]] = confusion[rows, cols][rows < true_values.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        return right / np.bincount(true, minlength=true.max() + 1)


def level_accuracy(true_codes, learned_codes) -> float:
    """Per-node accuracy of ``learned_codes`` against ``true_codes`` after the best relabelling.

    Parameters
    ----------
    true_codes : int array, any shape, values ``>= 0``
        The true symbols of one level, e.g. ``sample.levels[l]`` of shape
        ``(P, s**(L - l))``.
    learned_codes : int array, same shape
        A learner's codes for the same nodes. The learned alphabet may be larger
        or smaller than the true one (unmatched codes count as wrong); a
        negative code marks a node the learner could not code, and counts as
        wrong.

    Returns
    -------
    float in ``[0, 1]``: the largest fraction of nodes that a one-to-one map from
    learned codes to true codes gets right.
    """
    true = check_int_array("true_codes", true_codes)
    learned = check_int_array("learned_codes", learned_codes)
    if true.shape != learned.shape:
        raise ValueError(
            f"true_codes and learned_codes must have the same shape, got {true.shape} and {learned.shape}"
        )
    if true.size == 0:
        raise ValueError("true_codes must not be empty")
    if true.min() < 0:
        raise ValueError(f"true_codes must be >= 0, got {true.min()}")
    return _matched_fraction(true.ravel(), learned.ravel())


def synonym_partition_score(rhm: RHM, level: int, assignment) -> float:
    """How well a map from tuples to clusters groups the synonyms of ``level``.

    Parameters
    ----------
    rhm : RHM
        The grammar that holds the true parents.
    level : int in ``1..L``
        The level whose symbols are the parents; the tuples are s-tuples of
        level-``(level - 1)`` symbols.
    assignment : int array of shape ``(v**s,)``
        ``assignment[c]`` is the cluster of the tuple with code ``c`` in the
        true level-``(level - 1)`` alphabet (see :func:`lpbook.grammar.encode_tuples`),
        or ``-1`` if the tuple has no cluster.

    Returns
    -------
    float in ``[0, 1]``: over the ``n_level * m`` grammatical tuples, each
    counted once, the largest fraction whose cluster maps to their true parent
    under a one-to-one relabelling. It is 1 exactly when the clusters of the
    grammatical tuples are the synonym classes.
    """
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    level = check_int("level", level, minimum=1)
    if level > rhm.L:
        raise ValueError(f"level must be <= L = {rhm.L}, got {level}")
    assignment = check_int_array("assignment", assignment, ndim=1)
    if assignment.shape[0] != rhm.v**rhm.s:
        raise ValueError(f"assignment must have shape (v**s = {rhm.v**rhm.s},), got {assignment.shape}")
    check_range("assignment", assignment, -1, np.iinfo(np.int64).max)
    rules = rhm.rules[level]
    parents = np.repeat(np.arange(rules.shape[0]), rhm.m)
    clusters = assignment[encode_tuples(rules.reshape(-1, rhm.s), rhm.v)]
    return _matched_fraction(parents, clusters.astype(np.int64))


def synonym_share(features, keys, classes) -> float:
    """How much of what ``features`` say about ``keys`` is *not* carried by their ``classes``: 0 for synonym-invariant features.

    Each observation ``n`` has a feature vector ``features[n]`` (shape
    ``(N, D)``), a key ``keys[n]`` (shape ``(N,)``, e.g. the value of the
    tuple a network was shown) and the class of that key ``classes[n]``
    (shape ``(N,)``, e.g. the tuple's parent; a function of the key). With
    ``mu_k`` the mean feature of key ``k`` and ``mu_c`` the mean of class
    ``c``, both weighted by counts, the result is ``W / (W + B)``: ``W`` is the
    weighted spread of the key means around their class means and ``B`` the
    spread of the class means, each ``sum_k w_k ||.||^2``. Both are corrected
    for the sampling noise of the key means (each key's unbiased variance over
    its ``n_k`` observations, divided by ``n_k``), so that features that depend on
    the key only through its class give 0 up to noise of order
    ``1 / sqrt(N)`` (the estimate can be slightly negative). Keys seen once
    carry no noise estimate and are left out.
    """
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must have shape (N, D) with N >= 1, got {x.shape}")
    key = check_int_array("keys", keys).ravel()
    cls = check_int_array("classes", classes).ravel()
    if key.size != x.shape[0] or cls.size != x.shape[0]:
        raise ValueError(f"keys and classes must have one entry per row of features ({x.shape[0]}), "
                         f"got {key.size} and {cls.size}")
    values, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    key_class = np.empty(values.size, dtype=np.int64)
    key_class[inverse] = cls
    if np.any(key_class[inverse] != cls):
        raise ValueError("classes must be a function of keys: a key was given two classes")
    sums = np.zeros((values.size, x.shape[1]))
    np.add.at(sums, inverse, x)
    squares = np.bincount(inverse, weights=(x**2).sum(axis=1), minlength=values.size)
    kept = counts > 1
    if not kept.any():
        raise ValueError("every key is seen once: the noise of the key means cannot be estimated")
    counts, means, squares, key_class = counts[kept], sums[kept] / counts[kept, None], squares[kept], key_class[kept]
    noise = (squares - counts * (means**2).sum(axis=1)) / (counts - 1) / counts  # variance of each key mean
    weights = counts / counts.sum()
    class_values, class_index = np.unique(key_class, return_inverse=True)
    class_weight = np.bincount(class_index, weights=weights)
    class_means = np.zeros((class_values.size, x.shape[1]))
    np.add.at(class_means, class_index, weights[:, None] * means)
    class_means /= class_weight[:, None]
    share = weights / class_weight[class_index]  # each key's weight within its class
    # E||mean_k - class mean||^2 exceeds its population value by noise_k (1 - share_k), and the class means'
    # spread around the grand mean exceeds its own by the sum of w_k noise_k (share_k - w_k)
    within = float((weights * (((means - class_means[class_index]) ** 2).sum(axis=1) - noise * (1 - share))).sum())
    between = float((class_weight * ((class_means - weights @ means) ** 2).sum(axis=1)).sum()
                    - (weights * noise * (share - weights)).sum())
    return within / (within + between)
