"""Tests of lpbook.tree: node arithmetic and the count of random steps."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from lpbook.tree import (
    Node, ancestor, children, cousin_symbol_targets, cousin_targets, descendants, distance,
    great_grandparent_targets, is_ancestor, lca, random_steps, siblings, token_targets,
)


def test_basic_geometry():
    assert ancestor(Node(0, 5), 2, 2) == Node(2, 1)
    assert children(Node(2, 1), 3) == [Node(1, 3), Node(1, 4), Node(1, 5)]
    assert siblings(Node(1, 4), 3) == [Node(1, 3), Node(1, 5)]
    assert descendants(Node(2, 1), 0, 2) == [Node(0, 4), Node(0, 5), Node(0, 6), Node(0, 7)]
    assert lca(Node(0, 0), Node(0, 7), 2) == Node(3, 0)
    assert is_ancestor(Node(2, 0), Node(0, 3), 2) and not is_ancestor(Node(2, 0), Node(0, 4), 2)


def test_random_steps_of_the_learners():
    s, L = 2, 5
    h = Node(2, 0)  # the parent of a level-1 tuple
    # latent prediction: the uncle's tuple, jointly, is k = 2 (random_steps + 1)
    assert random_steps(h, cousin_targets(h, s)[0], s) + 1 == 2
    # token SSL at level l = 2: a leaf tuple of the cousin subtree, jointly: k = l + 1
    assert all(random_steps(h, t, s) + 1 == 3 for t in token_targets(h, s))
    # supervision: the root, k = L - l
    assert random_steps(h, Node(L, 0), s) == L - 2
    # two sibling tokens: one production, k = 1
    assert random_steps(Node(0, 0), Node(0, 1), s) == 1


@given(st.integers(2, 4), st.integers(1, 4), st.data())
def test_distance_and_steps_are_symmetric(s, L, data):
    def node():
        level = data.draw(st.integers(0, L))
        return Node(level, data.draw(st.integers(0, s ** (L - level) - 1)))

    a, b = node(), node()
    assert distance(a, b, s) == distance(b, a, s)
    assert random_steps(a, b, s) == random_steps(b, a, s)
    c = lca(a, b, s)
    assert is_ancestor(c, a, s) and is_ancestor(c, b, s)
    assert 0 <= random_steps(a, b, s) <= distance(a, b, s)


def test_errors():
    with pytest.raises(ValueError, match="level must be >= node.level"):
        ancestor(Node(2, 0), 1, 2)
    with pytest.raises(ValueError, match="no children"):
        children(Node(0, 0), 2)
    with pytest.raises(ValueError, match="level must be <= node.level"):
        descendants(Node(1, 0), 2, 2)


def test_context_targets_of_the_ilc_variants():
    # One by one: the two symbols of the sibling's tuple.
    assert cousin_symbol_targets(Node(2, 1), 2) == [Node(1, 0), Node(1, 1)]
    # Wider: the other level-1 nodes under the great-grandparent (level 3) ...
    assert great_grandparent_targets(4)(Node(1, 5), 2) == [Node(1, 4), Node(1, 6), Node(1, 7)]
    # ... except right below the root's children, where the root takes its place.
    assert great_grandparent_targets(3)(Node(2, 0), 2) == [Node(2, 1)]
