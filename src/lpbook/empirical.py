"""The statistics of :mod:`lpbook.exact`, estimated by counting in samples.

Counting is vectorised: a pair of symbols ``(x, y)`` becomes the single index
``x * n_y + y`` and ``np.bincount`` counts all pairs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_int, check_node
from .exact import conditional, pooled_context, squared_gaps
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


@dataclass(frozen=True)
class SynonymDistances:
    """How far apart the empirical context rows of tuples are, for nested training sets (:func:`synonym_distances`).

    Attributes
    ----------
    P : np.ndarray
        The training-set sizes, shape ``(n,)``, increasing.
    synonyms, others : np.ndarray
        Shape ``(n,)``: the median squared distance between the empirical
        pooled context rows of two seen tuples with the same parent
        (``synonyms``) and with different parents (``others``).
    noise : np.ndarray
        Shape ``(n,)``: the median over pairs of seen synonyms of the expected
        squared distance of two independent empirical rows,
        ``(1 - ||p||^2) (1/n_t + 1/n_t')``, with ``n_t`` the occurrences of
        tuple ``t`` and ``p`` its exact row.
    gap : float
        The median squared distance between the exact rows of tuples with
        different parents.
    """

    P: np.ndarray
    synonyms: np.ndarray
    others: np.ndarray
    noise: np.ndarray
    gap: float

    def crossing(self) -> float:
        """The ``P`` at which the synonyms' distance falls to the gap, interpolated in ``log P``.

        ``ValueError`` when the grid does not start above the gap and end below it.
        """
        below = self.synonyms < self.gap
        if below.all() or not below.any():
            raise ValueError("the grid of P must start above the crossing and end below it")
        i = int(np.argmax(below))
        log_syn = np.log(self.synonyms[[i, i - 1]])
        return float(np.exp(np.interp(np.log(self.gap), log_syn, np.log(self.P[[i, i - 1]]))))


def synonym_distances(rhm: RHM, sample: Sample, level: int, targets, P_grid) -> SynonymDistances:
    """Distances between the empirical context rows of synonyms and of non-synonyms, on the first ``P`` samples.

    The rows are the pooled counts of :func:`pooled_counts` (tuples under
    level-``level`` nodes, context ``targets(node, s)`` read jointly),
    normalised, for each ``P`` of ``P_grid`` (increasing, at most
    ``sample.P``) on the training set ``sample``'s first ``P`` rows.
    Pairs involving a tuple not yet seen are left out. Returns a
    :class:`SynonymDistances`.
    """
    P_grid = np.array([check_int("P_grid", P, minimum=1) for P in P_grid])
    if P_grid.size == 0 or np.any(np.diff(P_grid) <= 0) or P_grid[-1] > sample.P:
        raise ValueError(f"P_grid must increase, within the sample's {sample.P} rows, got {P_grid.tolist()}")
    truth = pooled_context(rhm, level, targets)
    parents = np.repeat(np.arange(rhm.alphabet_size(level)), rhm.m)  # the parent of tuple a*m + j
    same = (parents[:, None] == parents[None, :]) & ~np.eye(parents.size, dtype=bool)
    different = parents[:, None] != parents[None, :]
    purity = (truth**2).sum(axis=1)  # ||p||^2 of each tuple's exact row (NaN for a tuple that never occurs)
    synonyms, others, noise = [], [], []
    for P in P_grid:
        prefix = Sample(tuple(level_[:P] for level_ in sample.levels))
        counts = pooled_counts(rhm, prefix, level, targets)
        n = counts.sum(axis=1)
        seen = n > 0
        both = seen[:, None] & seen[None, :]
        dist = squared_gaps(counts / np.maximum(n, 1)[:, None])
        synonyms.append(np.median(dist[same & both]))
        others.append(np.median(dist[different & both]))
        inv_n = np.where(seen, 1 / np.maximum(n, 1), np.nan)
        expected = (1 - purity)[:, None] * (inv_n[:, None] + inv_n[None, :])
        noise.append(np.nanmedian(expected[same]))
    gap = float(np.nanmedian(squared_gaps(truth)[different]))
    return SynonymDistances(P_grid, np.array(synonyms), np.array(others), np.array(noise), gap)
