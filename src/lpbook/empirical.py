"""The statistics of :mod:`lpbook.exact`, estimated by counting in samples.

Counting is vectorised: a pair of symbols ``(x, y)`` becomes the single index
``x * n_y + y`` and ``np.bincount`` counts all pairs at once.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_int, check_node
from .exact import conditional
from .grammar import RHM, Sample
from .tree import Node


def pair_counts(x: np.ndarray, y: np.ndarray, n_x: int, n_y: int) -> np.ndarray:
    """Co-occurrence counts of shape ``(n_x, n_y)`` of two equal-length int arrays.

    ``x`` holds values in ``[0, n_x)`` and ``y`` in ``[0, n_y)``.
    """
    x = np.asarray(x, dtype=np.int64).ravel()
    y = np.asarray(y, dtype=np.int64).ravel()
    return np.bincount(x * n_y + y, minlength=n_x * n_y).reshape(n_x, n_y)


def node_values(rhm: RHM, sample: Sample, node, *, joint: bool = False) -> tuple[np.ndarray, int]:
    """The value of ``node`` in every row of ``sample``, and the number of possible values.

    With ``joint=False`` the value is the node's symbol; with ``joint=True`` it
    is the tuple under the node, as its production index ``b*m + j``.
    """
    node = check_node(rhm, "node", node)
    if not joint:
        return sample.levels[node.level][:, node.pos], rhm.alphabet_size(node.level)
    if node.level < 1:
        raise ValueError("a level-0 node has no tuple under it; use joint=False")
    s = rhm.s
    tuples = sample.levels[node.level - 1][:, node.pos * s : (node.pos + 1) * s]
    return rhm.tuple_index(node.level, tuples), rhm.alphabet_size(node.level) * rhm.m


def parent_context(rhm: RHM, sample: Sample, node, target, *, joint: bool = True) -> np.ndarray:
    """Empirical ``P(target | X_node = a)``, shape ``(n_node, n_values)``; NaN rows for unseen ``a``.

    The counterpart of :func:`lpbook.exact.parent_context`, read off the true
    latents stored in ``sample``.
    """
    x, n_x = node_values(rhm, sample, node)
    y, n_y = node_values(rhm, sample, target, joint=joint)
    return conditional(pair_counts(x, y, n_x, n_y).astype(float))


def correlation(rhm: RHM, sample: Sample, a, b) -> float:
    """Empirical ``||P(x, y) - P(x) P(y)||_F`` of two nodes (biased upwards by sampling noise)."""
    x, n_x = node_values(rhm, sample, a)
    y, n_y = node_values(rhm, sample, b)
    J = pair_counts(x, y, n_x, n_y) / sample.P
    return float(np.linalg.norm(J - np.outer(J.sum(axis=1), J.sum(axis=0))))


def pooled_counts(rhm: RHM, sample: Sample, level: int, targets, *, joint: bool = True) -> np.ndarray:
    """Co-occurrence counts of each tuple with its context, pooled over all positions of ``level``.

    The empirical counterpart of :func:`lpbook.exact.pooled_context`, counted
    on the true latents in ``sample``: rows are the tuples under level-``level``
    nodes (index ``a*m + j``), columns the (slot, value) pairs of the context
    nodes listed by ``targets(node, s)``, which must all lie on one level.
    Returns an int64 array of shape ``(n_level*m, n_slots*n_values)``. One
    ``np.bincount`` counts every sample, position and slot at once.
    """
    level = check_int("level", level, minimum=1)
    if level >= rhm.L:
        raise ValueError(f"level must be < L = {rhm.L}: the tuple under the root has no context, got {level}")
    nodes = [Node(level, pos) for pos in range(rhm.n_positions(level))]
    slots = np.array([[t.pos for t in targets(node, rhm.s)] for node in nodes])
    target_levels = {t.level for node in nodes for t in targets(node, rhm.s)}
    if slots.ndim != 2 or slots.shape[1] == 0 or len(target_levels) != 1:
        raise ValueError("targets must give every node the same positive number of context nodes, all on one level")
    target_level = target_levels.pop()
    s, P = rhm.s, sample.P
    tuples = rhm.tuple_index(level, sample.levels[level - 1].reshape(P, -1, s))  # (P, n_positions)
    n_t = rhm.alphabet_size(level) * rhm.m
    if joint:
        values = rhm.tuple_index(target_level, sample.levels[target_level - 1].reshape(P, -1, s))
        n_z = rhm.alphabet_size(target_level) * rhm.m
    else:
        values = sample.levels[target_level].astype(np.int64)
        n_z = rhm.alphabet_size(target_level)
    n_slots = slots.shape[1]
    index = (tuples[:, :, None] * n_slots + np.arange(n_slots)) * n_z + values[:, slots]
    return np.bincount(index.ravel(), minlength=n_t * n_slots * n_z).reshape(n_t, n_slots * n_z)
