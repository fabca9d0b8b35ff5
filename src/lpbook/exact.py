"""Population statistics of an RHM, computed exactly from its rules.

Nothing here samples. The tree is a Markov structure: given a node, its subtree
is independent of everything else. So every joint distribution of two nodes is
a product of per-position transition matrices along the path between them,
through their lowest common ancestor (message passing on the tree).

Conventions: a node is :class:`lpbook.tree.Node` ``(level, pos)``; "the tuple
under node ``(l, p)``" is the s-tuple of its children, and it takes
``n_l * m`` values, indexed ``a*m + j`` for the production ``rules[l][a, j]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validate import check_int, check_node
from .grammar import RHM
from .tree import Node, ancestor, is_ancestor, lca, random_steps, siblings


def transitions(rhm: RHM, level: int) -> np.ndarray:
    """Child-given-parent matrices of ``level``, of shape ``(s, n_level, v)``.

    ``T[i, a, b]`` is the probability that child ``i`` of a level-``level``
    symbol ``a`` is ``b``: the total probability of ``a``'s productions with
    ``b`` in position ``i`` (their fraction, for uniform rules).
    """
    rules = rhm.rules[level]
    n = rules.shape[0]
    T = np.zeros((rhm.s, n, rhm.v))
    weights = rhm.production_probs[level].ravel()
    for i in range(rhm.s):
        np.add.at(T[i], (np.repeat(np.arange(n), rhm.m), rules[:, :, i].ravel()), weights)
    return T


def marginals(rhm: RHM) -> dict[int, np.ndarray]:
    """Marginal distributions of every node: ``{l: array (s**(L - l), n_l)}``.

    The root is uniform; each level below follows by one transition per child
    position. Marginals depend on the position, because the rules do.
    """
    out = {rhm.L: np.full((1, rhm.n_classes), 1.0 / rhm.n_classes)}
    for level in range(rhm.L, 0, -1):
        T = transitions(rhm, level)
        out[level - 1] = np.einsum("pa,iab->pib", out[level], T).reshape(-1, rhm.v)
    return out


def down(rhm: RHM, top: Node, bottom: Node) -> np.ndarray:
    """``P(X_bottom | X_top)``, of shape ``(n_top, n_bottom)``, for ``top`` an ancestor of ``bottom``.

    The product of the transition matrices along the path, each chosen by the
    child position taken at that step (the identity when ``top == bottom``).
    """
    if not is_ancestor(top, bottom, rhm.s):
        raise ValueError(f"top={tuple(top)} must be an ancestor of bottom={tuple(bottom)}")
    out = np.eye(rhm.alphabet_size(top.level))
    for level in range(top.level, bottom.level, -1):
        child = ancestor(bottom, level - 1, rhm.s)
        out = out @ transitions(rhm, level)[child.pos % rhm.s]
    return out


def sibling_joint(rhm: RHM, parent, i: int, k: int) -> np.ndarray:
    """``P(child i = u, child k = w)`` of the node ``parent``, shape ``(v, v)``, for ``i != k``.

    The children of a node are not independent given it: its production picks
    them together. Hence ``sum_a P(X_parent = a) sum_j p_aj [rules[a, j, i] = u] [rules[a, j, k] = w]``,
    with ``p_aj`` the production probabilities (``1/m`` for uniform rules).
    """
    parent = check_node(rhm, "parent", parent)
    rules = rhm.rules[parent.level]
    weight = (marginals(rhm)[parent.level][parent.pos][:, None] * rhm.production_probs[parent.level]).ravel()
    out = np.zeros((rhm.v, rhm.v))
    np.add.at(out, (rules[:, :, i].ravel(), rules[:, :, k].ravel()), weight)
    return out


def node_joint(rhm: RHM, a, b) -> np.ndarray:
    """The joint distribution ``P(X_a = x, X_b = y)``, of shape ``(n_a, n_b)``.

    ``a`` and ``b`` are any two ``(level, pos)`` nodes. If one is an ancestor
    of the other, the joint is the ancestor's marginal times the transitions
    down the path. Otherwise let ``c`` be their lowest common ancestor and
    ``c_a``, ``c_b`` its children towards ``a`` and ``b``: their joint comes
    from ``c``'s production (:func:`sibling_joint`), and below them the two
    paths are independent.
    """
    a, b = check_node(rhm, "a", a), check_node(rhm, "b", b)
    s = rhm.s
    if is_ancestor(a, b, s) or is_ancestor(b, a, s):
        top, bottom = (a, b) if is_ancestor(a, b, s) else (b, a)
        J = marginals(rhm)[top.level][top.pos][:, None] * down(rhm, top, bottom)
        return J if top == a else J.T
    c = lca(a, b, s)
    c_a, c_b = ancestor(a, c.level - 1, s), ancestor(b, c.level - 1, s)
    M = sibling_joint(rhm, c, c_a.pos % s, c_b.pos % s)
    return down(rhm, c_a, a).T @ M @ down(rhm, c_b, b)


def conditional(joint: np.ndarray) -> np.ndarray:
    """Rows of ``joint`` normalised to sum 1; a row of zero mass becomes NaN."""
    mass = joint.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mass > 0, joint / mass, np.nan)


def parent_context(rhm: RHM, node, target, *, joint: bool = True) -> np.ndarray:
    """``P(target | X_node = a)`` for every symbol ``a`` of ``node``, of shape ``(n_node, n_values)``.

    ``target`` is a node outside ``node``'s subtree. With ``joint=False`` the
    target value is its symbol (``n_values = n_target``); with ``joint=True``
    it is the tuple under ``target`` taken jointly (``n_values = n_target * m``,
    index ``b*m + j``), which then must not be an ancestor of ``node``. A symbol
    ``a`` of probability zero at ``node`` gives a row of NaN.
    """
    node, target = check_node(rhm, "node", node), check_node(rhm, "target", target)
    if is_ancestor(node, target, rhm.s):
        raise ValueError(f"target={tuple(target)} must lie outside the subtree of node={tuple(node)}")
    if joint and target.level == 0:
        raise ValueError("a level-0 target has no tuple under it; use joint=False")
    if joint and is_ancestor(target, node, rhm.s):
        raise ValueError(
            f"with joint=True the target's tuple must not contain node={tuple(node)}'s ancestors, "
            f"but target={tuple(target)} is its ancestor"
        )
    cond = conditional(node_joint(rhm, node, target))
    if not joint:
        return cond
    # Given the target's symbol b, its production j has probability p_bj.
    return (cond[:, :, None] * rhm.production_probs[target.level]).reshape(cond.shape[0], -1)


def context(rhm: RHM, node, target, *, joint: bool = True) -> np.ndarray:
    """``P(target | tuple under node = t)`` for every grammatical tuple ``t``, of shape ``(n_l*m, n_values)``.

    Rows are indexed ``a*m + j`` for the tuple ``rules[l][a, j]``, ``l = node.level >= 1``.
    A tuple determines its parent and, by the Markov property, the target is
    independent of the tuple given the parent: synonymous tuples have
    identical rows (the synonymic-invariance lemma of Chapter 1).
    """
    node = check_node(rhm, "node", node)
    if node.level < 1:
        raise ValueError("node.level must be >= 1: the tuple under a node is its children")
    return np.repeat(parent_context(rhm, node, target, joint=joint), rhm.m, axis=0)


def pooled_context(
    rhm: RHM, level: int, targets: Callable[[Node, int], list[Node]], *, joint: bool = True
) -> np.ndarray:
    """The context distribution of a tuple, pooled over all positions of ``level``.

    This is what a learner that counts co-occurrences over every position
    estimates. ``targets(node, s)`` lists the context nodes of the tuple under
    ``node`` (e.g. :func:`lpbook.tree.cousin_targets`); the ``r``-th of them
    fills feature slot ``r``. Returns an array of shape
    ``(n_level*m, n_slots*n_values)`` whose row for tuple ``t`` is the
    distribution of (slot, value) pairs, mixed over positions with weights
    ``P(tuple at that position = t)``; rows of never-seen tuples are NaN.
    """
    level = check_int("level", level, minimum=1)
    if level >= rhm.L:
        raise ValueError(
            f"level must be < L = {rhm.L}: the tuple under the root has no context outside its subtree, got {level}"
        )
    p_parent = marginals(rhm)[level]
    total = None
    for pos in range(rhm.n_positions(level)):
        node = Node(level, pos)
        slots = targets(node, rhm.s)
        if not slots:
            raise ValueError(f"targets returned no context node for {tuple(node)}")
        block = np.concatenate([context(rhm, node, t, joint=joint) for t in slots], axis=1) / len(slots)
        weight = (p_parent[pos][:, None] * rhm.production_probs[level]).ravel()
        term = weight[:, None] * np.nan_to_num(block)
        total = term if total is None else total + term
    return conditional(total)


def pooled_parent_gaps(rhm: RHM, level: int, targets: Callable[[Node, int], list[Node]], *, joint: bool = True) -> np.ndarray:
    """Squared distances between the pooled context distributions of the parents of ``level``.

    Synonymous tuples have identical pooled rows (the mixing weights of two
    synonyms are equal too), so each parent has one context distribution.
    Returns an array of shape ``(n_level, n_level)``; the theory of Chapter 3
    needs its off-diagonal minimum (the separation) to be positive.
    """
    rows = pooled_context(rhm, level, targets, joint=joint)[:: rhm.m]
    return squared_gaps(rows)


def squared_gaps(rows: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances ``||rows[a] - rows[b]||^2``, shape ``(n, n)``."""
    diff = rows[:, None, :] - rows[None, :, :]
    return np.einsum("abk,abk->ab", diff, diff)


@dataclass(frozen=True)
class Gap:
    """The separation of the parents of ``node`` through one context ``target``.

    ``k`` counts the random productions between a parent and the observed
    context (one more when the target's tuple is observed jointly); ``mean`` and
    ``minimum`` are taken over pairs of distinct parents of the squared
    distance between their context distributions.
    """

    target: Node
    joint: bool
    k: int
    mean: float
    minimum: float


def gap_profile(rhm: RHM, node) -> list[Gap]:
    """The parent gap of ``node`` through every possible context in the tree.

    For every node outside ``node``'s subtree, as a symbol and (where it has a
    tuple and is not an ancestor) as a joint tuple, the mean and minimum over
    parent pairs of ``||P(Z | a) - P(Z | a')||^2``. The signal-against-noise
    picture predicts ``mean ~ 2 m**(-k)``.
    """
    node = check_node(rhm, "node", node)
    out = []
    off_diagonal = ~np.eye(rhm.alphabet_size(node.level), dtype=bool)
    for level in range(rhm.L + 1):
        for pos in range(rhm.n_positions(level)):
            target = Node(level, pos)
            if is_ancestor(node, target, rhm.s):
                continue
            for joint in (False, True):
                if joint and (level == 0 or is_ancestor(target, node, rhm.s)):
                    continue
                gaps = squared_gaps(parent_context(rhm, node, target, joint=joint))[off_diagonal]
                k = random_steps(node, target, rhm.s) + int(joint)
                out.append(Gap(target, joint, k, float(np.nanmean(gaps)), float(np.nanmin(gaps))))
    return out


def correlation(rhm: RHM, a, b) -> float:
    """The size of the correlation of two nodes, ``||P(x, y) - P(x) P(y)||_F``."""
    J = node_joint(rhm, a, b)
    return float(np.linalg.norm(J - np.outer(J.sum(axis=1), J.sum(axis=0))))


def place_distribution(rhm: RHM, level: int) -> np.ndarray:
    """``P(place = i | X = a)`` for a node drawn uniformly among the positions of ``level``, shape ``(v, s)``.

    A node's *place* is its position ``pos % s`` under its parent, so
    ``level`` must lie below the root (``0 <= level < L``). A symbol that occurs
    nowhere on the level gives a row of NaN.
    """
    level = check_int("level", level, minimum=0)
    if level >= rhm.L:
        raise ValueError(f"level must be < L = {rhm.L}: the root has no place under a parent, got {level}")
    by_place = marginals(rhm)[level].reshape(-1, rhm.s, rhm.v).sum(axis=0)  # (s, v): mass at each place
    return conditional(by_place.T)


def disjoint_place_pairs(rhm: RHM, level: int) -> np.ndarray:
    """The pairs of symbols of ``level`` that both occur but never at the same place, shape ``(K, 2)``, ``a < b``.

    Two such symbols are never seen in the same slot (place under the parent and
    sibling), so an objective that conditions on the slot cannot tell them
    apart (Chapter 4).
    """
    support = np.nan_to_num(place_distribution(rhm, level)) > 0  # (v, s)
    occurs = support.any(axis=1)
    shared = (support[:, None, :] & support[None, :, :]).any(axis=-1)
    a, b = np.nonzero(np.triu(occurs[:, None] & occurs[None, :] & ~shared, k=1))
    return np.stack([a, b], axis=1)


def slot_context(rhm: RHM, level: int) -> np.ndarray:
    """``P(slot, T = t, Z = z)`` for the tuples under ``level`` and their cousin tuples, shape ``(s * (s - 1), v*m, v*m)``.

    Draw a node of ``level`` (``1 <= level < L``) uniformly among the
    positions, and one of its ``s - 1`` siblings uniformly. ``T`` is the tuple
    under the node (index ``a*m + j`` for ``rules[level][a, j]``), ``Z`` the tuple
    under the sibling (the same indexing), and the slot is ``i * (s - 1) + r``
    for the node's place ``i`` under its parent and the sibling's rank ``r``
    among the others, as :func:`lpbook.neural.slc.cousin_layout` numbers them.
    The whole array sums to 1.
    """
    level = check_int("level", level, minimum=1)
    if level >= rhm.L:
        raise ValueError(f"level must be < L = {rhm.L}: the nodes below the root have siblings, got {level}")
    s, n = rhm.s, rhm.n_positions(level)
    p_parent = marginals(rhm)[level]
    out = np.zeros((s * (s - 1), rhm.v * rhm.m, rhm.v * rhm.m))
    for pos in range(n):
        node = Node(level, pos)
        weight = (p_parent[pos][:, None] * rhm.production_probs[level]).ravel()  # P(T = t at this node)
        for r, sibling in enumerate(siblings(node, s)):
            cond = np.nan_to_num(context(rhm, node, sibling, joint=True))
            out[(pos % s) * (s - 1) + r] += weight[:, None] * cond
    return out / (n * (s - 1))


def production_onehots(rhm: RHM, level: int) -> np.ndarray:
    """The productions of ``level`` as concatenated one-hot vectors, shape ``(n_level * m, s * v)``.

    Row ``a*m + j`` holds, in block ``i``, the one-hot vector of child ``i`` of
    ``rules[level][a, j]``. Any target that is a sum of one term per child is a
    linear image of these rows, so its span has at most ``s * (v - 1) + 1``
    dimensions (each block's one-hots sum to the same vector), fewer than the
    ``n_level * m`` rows whenever ``m >= s`` (Chapter 5).
    """
    level = check_int("level", level, minimum=1)
    if level > rhm.L:
        raise ValueError(f"level must be <= L = {rhm.L}, got {level}")
    rules = rhm.rules[level].reshape(-1, rhm.s)  # (n_level * m, s)
    out = np.zeros((rules.shape[0], rhm.s * rhm.v))
    np.put_along_axis(out, rules + rhm.v * np.arange(rhm.s), 1.0, axis=1)
    return out
