"""The statistics of :mod:`lpbook.exact`, estimated by counting in samples.

Counting is vectorised: a pair of symbols ``(x, y)`` becomes the single index
``x * n_y + y`` and ``np.bincount`` counts all pairs at once.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_int, check_node
from .exact import conditional
from .grammar import RHM, Sample
from .tree import take_positions, target_positions


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


def cooccurrence(rows: np.ndarray, values: np.ndarray, n_rows: int, n_values: int) -> np.ndarray:
    """Counts of (row, slot, value) triples, pooled over samples and positions.

    ``rows`` has shape ``(P, n)``: the row index (in ``[0, n_rows)``) of the
    item at each of ``n`` positions. ``values`` has shape ``(P, n, n_slots)``:
    the context value (in ``[0, n_values)``) seen in each slot by that item.
    Returns int64 counts of shape ``(n_rows, n_slots * n_values)``, column
    ``r * n_values + z`` for value ``z`` in slot ``r``. One ``np.bincount``
    counts every sample, position and slot at once.
    """
    n_slots = values.shape[-1]
    width = n_slots * n_values
    # np.bincount converts its input to intp anyway: build the index in intp directly.
    index = np.array(values, dtype=np.intp, order="C")  # a copy: the caller's values stay intact
    index += np.arange(0, width, n_values, dtype=np.intp)  # value z in slot r -> r * n_values + z
    index += (rows.astype(np.intp) * width)[:, :, None]
    return np.bincount(index.ravel(), minlength=n_rows * width).reshape(n_rows, width)


def pooled_counts(rhm: RHM, sample: Sample, level: int, targets, *, joint: bool = True) -> np.ndarray:
    """Co-occurrence counts of each tuple with its context, pooled over all positions of ``level``.

    The empirical counterpart of :func:`lpbook.exact.pooled_context`, counted
    on the true latents in ``sample``: rows are the tuples under level-``level``
    nodes (index ``a*m + j``), columns the (slot, value) pairs of the context
    nodes listed by ``targets(node, s)``, which must all lie on one level.
    Returns an int64 array of shape ``(n_level*m, n_slots*n_values)``.
    """
    level = check_int("level", level, minimum=1)
    if level >= rhm.L:
        raise ValueError(f"level must be < L = {rhm.L}: the tuple under the root has no context, got {level}")
    target_level, slots = target_positions(rhm.L, level, rhm.s, targets)
    s, P = rhm.s, sample.P
    tuples = rhm.tuple_index(level, sample.levels[level - 1].reshape(P, -1, s))  # (P, n_positions)
    if joint:
        values = rhm.tuple_index(target_level, sample.levels[target_level - 1].reshape(P, -1, s))
        n_z = rhm.alphabet_size(target_level) * rhm.m
    else:
        values = sample.levels[target_level].astype(np.int64)
        n_z = rhm.alphabet_size(target_level)
    return cooccurrence(tuples, take_positions(values, slots), rhm.alphabet_size(level) * rhm.m, n_z)
