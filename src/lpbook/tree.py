"""Geometry of the regular tree that carries the RHM.

A node is a pair ``(level, pos)``: level 0 holds the ``s**L`` visible tokens,
level ``L`` the root, and level ``l`` has ``s**(L - l)`` positions numbered left
to right. The children of ``(l, p)`` are ``(l - 1, s*p + i)`` for ``i < s``.
In the book, "the tuple under node ``(l, p)``" is the s-tuple of its children.

These functions involve no grammar and no randomness: they are shared by the
exact statistics (:mod:`lpbook.exact`) and by the learners, which must agree on
what "the cousin tuple" or "the tokens of the cousin subtree" mean.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Node(NamedTuple):
    """A node of the tree: ``level`` in ``0..L`` (0 = tokens), ``pos`` left to right."""

    level: int
    pos: int


def ancestor(node: Node, level: int, s: int) -> Node:
    """The ancestor of ``node`` at ``level`` (``node`` itself if the levels agree)."""
    if level < node.level:
        raise ValueError(f"level must be >= node.level = {node.level}, got {level}")
    return Node(level, node.pos // s ** (level - node.level))


def is_ancestor(a: Node, b: Node, s: int) -> bool:
    """True when ``a`` is ``b`` or one of its ancestors."""
    return a.level >= b.level and ancestor(b, a.level, s) == a


def lca(a: Node, b: Node, s: int) -> Node:
    """The lowest common ancestor of ``a`` and ``b``."""
    level = max(a.level, b.level)
    while ancestor(a, level, s) != ancestor(b, level, s):
        level += 1
    return ancestor(a, level, s)


def distance(a: Node, b: Node, s: int) -> int:
    """The number of edges on the path between ``a`` and ``b``."""
    top = lca(a, b, s).level
    return (top - a.level) + (top - b.level)


def random_steps(a: Node, b: Node, s: int) -> int:
    """The number of random production rules that the path from ``a`` to ``b`` crosses.

    Each node above the bottom of the path chooses one of its ``m`` productions
    independently; the path crosses the production of every node on it except
    its lower end points. Going up and then down through the lowest common
    ancestor crosses that ancestor's production once, so the count is the number
    of edges, minus one when the path turns (neither node is an ancestor of the
    other). This is the ``k`` of the signal-against-noise picture.
    """
    k = distance(a, b, s)
    if is_ancestor(a, b, s) or is_ancestor(b, a, s):
        return k
    return k - 1


def children(node: Node, s: int) -> list[Node]:
    """The ``s`` children of ``node`` (which must have ``level >= 1``)."""
    if node.level < 1:
        raise ValueError(f"a level-0 node has no children, got {node}")
    return [Node(node.level - 1, s * node.pos + i) for i in range(s)]


def siblings(node: Node, s: int) -> list[Node]:
    """The other children of ``node``'s parent, left to right."""
    first = node.pos - node.pos % s
    return [Node(node.level, p) for p in range(first, first + s) if p != node.pos]


def descendants(node: Node, level: int, s: int) -> list[Node]:
    """The descendants of ``node`` at ``level`` (``<= node.level``), left to right."""
    if level > node.level:
        raise ValueError(f"level must be <= node.level = {node.level}, got {level}")
    width = s ** (node.level - level)
    return [Node(level, p) for p in range(node.pos * width, (node.pos + 1) * width)]


def cousin_targets(node: Node, s: int) -> list[Node]:
    """The nodes whose tuples are the cousin tuples of the tuple under ``node``.

    The tuple under ``node`` (level ``l``) sits at level ``l - 1``; its cousins
    are the tuples under ``node``'s siblings, below the same grandparent.
    """
    return siblings(node, s)


def cousin_symbol_targets(node: Node, s: int) -> list[Node]:
    """The symbols of the cousin tuples of the tuple under ``node``, one node per symbol (read one by one)."""
    return [child for sib in siblings(node, s) for child in descendants(sib, node.level - 1, s)]


def great_grandparent_targets(L: int):
    """The context of ``great_grandparent_tuples``, for a tree of depth ``L``: a ``targets(node, s)`` function.

    It lists every other node of ``node``'s level under ``node``'s
    great-grandparent (below the top; for nodes right below the root's
    children, which have none, under the root), each to be read as a tuple.
    """

    def others(node: Node, s: int) -> list[Node]:
        top = min(node.level + 2, L)
        return [d for d in descendants(Node(top, node.pos // s ** (top - node.level)), node.level, s) if d != node]

    return others


def token_targets(node: Node, s: int) -> list[Node]:
    """The level-1 nodes whose tuples are the leaf s-tuples of the cousin subtrees.

    These are the visible token tuples nearest to the tuple under ``node`` that
    lie outside ``node``'s own subtree.
    """
    return [d for sib in siblings(node, s) for d in descendants(sib, 1, s)]


def target_positions(L: int, level: int, s: int, targets) -> tuple[int, np.ndarray]:
    """Positions of the context nodes of every tuple under ``level``, as one array.

    ``targets(node, s)`` lists the context nodes of the tuple under ``node``
    (e.g. :func:`cousin_targets`); they must all lie on one level and be equally
    many for every node. Returns ``(target_level, positions)`` with
    ``positions[p, r]`` the position of the ``r``-th context node of the tuple
    under ``(level, p)``: an int64 array of shape ``(s**(L - level), n_slots)``.
    """
    lists = [targets(Node(level, p), s) for p in range(s ** (L - level))]
    levels = {t.level for nodes in lists for t in nodes}
    sizes = {len(nodes) for nodes in lists}
    if len(levels) != 1 or len(sizes) != 1 or 0 in sizes:
        raise ValueError("targets must give every node the same positive number of context nodes, all on one level")
    return levels.pop(), np.array([[t.pos for t in nodes] for nodes in lists], dtype=np.int64)


def take_positions(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values[:, positions]`` as a C-contiguous array.

    ``values`` has shape ``(P, n_nodes)`` (one column per node of a level) and
    ``positions`` shape ``(n, n_slots)`` (e.g. from :func:`target_positions`);
    the result has shape ``(P, n, n_slots)``. ``np.take`` along the columns keeps
    the rows contiguous, which plain fancy indexing does not, and that layout is
    several times faster to count.
    """
    return np.take(values, positions.ravel(), axis=1).reshape(values.shape[0], *positions.shape)
