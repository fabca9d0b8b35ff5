"""What a clustering learner predicts: the context of a tuple.

A context is a function ``context(view, level, L, s) -> (values, n_values)``.
For the tuples under the level-``level`` nodes (s-tuples of the learner's own
level-``(level - 1)`` codes) it returns ``values`` of shape ``(P, n, n_slots)``,
``n = s**(L - level)``: the context value, in ``[0, n_values)``, that the tuple
at each position sees in each slot. Slot ``r`` of position ``p`` is the
``r``-th context node of that tuple, in the order given by :mod:`lpbook.tree`.

``view`` carries what a context may read, for a block of samples:

- ``view.codes``: the learner's own level-``(level - 1)`` codes, ``(P, s**(L - level + 1))``;
- ``view.tuples``: their s-tuples encoded as ints in ``[0, V**s)``, ``(P, n)``;
- ``view.tokens``: the visible tokens, ``(P, s**L)``;
- ``view.token_tuples``: the token s-tuples encoded in ``[0, v**s)``, ``(P, s**(L - 1))``;
- ``view.labels``: root labels, ``(P,)``, or ``None``;
- ``view.V``, ``view.v``, ``view.n_classes``: the alphabet sizes of codes, tokens and labels.

The iterative latent clustering learner and the token-level learner differ
only in the context they pass: :func:`cousin_tuples` against :func:`leaf_tuples`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tree import (
    cousin_symbol_targets,
    cousin_targets,
    descendants,
    great_grandparent_targets,
    siblings,
    take_positions,
    target_positions,
    token_targets,
)


@dataclass(frozen=True)
class View:
    """What a context may read for one block of samples (see the module docstring)."""

    codes: np.ndarray
    tuples: np.ndarray
    tokens: np.ndarray
    token_tuples: np.ndarray
    labels: np.ndarray | None
    V: int
    v: int
    n_classes: int | None


def cousin_tuples(view: View, level: int, L: int, s: int):
    """The learner's own codes in each cousin tuple, each tuple taken jointly.

    The cousin tuples are the tuples under the siblings of the tuple's parent
    (below the same grandparent). Values in ``[0, V**s)``.
    """
    _, slots = target_positions(L, level, s, cousin_targets)
    return take_positions(view.tuples, slots), view.V**s


def cousin_symbols(view: View, level: int, L: int, s: int):
    """The learner's own codes in the cousin tuples, one symbol per slot. Values in ``[0, V)``."""

    _, slots = target_positions(L, level, s, cousin_symbol_targets)
    return take_positions(view.codes, slots), view.V


def great_grandparent_tuples(view: View, level: int, L: int, s: int):
    """The learner's own codes in every other tuple under the great-grandparent, each jointly.

    Below the top, these are the ``s**2 - 1`` tuples under the same
    great-grandparent; for the tuples right below the root's children, which
    have no great-grandparent, they are the cousin tuples.
    """
    _, slots = target_positions(L, level, s, great_grandparent_targets(L))
    return take_positions(view.tuples, slots), view.V**s


def leaf_tuples(view: View, level: int, L: int, s: int):
    """The visible tokens of the cousin subtrees, in s-tuples, each tuple taken jointly.

    These are the token tuples nearest to the tuple that lie outside its own
    subtree: the token-level target. Values in ``[0, v**s)``.
    """
    _, slots = target_positions(L, level, s, token_targets)
    return take_positions(view.token_tuples, slots), view.v**s


def leaf_symbols(view: View, level: int, L: int, s: int):
    """The visible tokens of the cousin subtrees, one token per slot. Values in ``[0, v)``."""

    def tokens(node, s):
        return [d for sib in siblings(node, s) for d in descendants(sib, 0, s)]

    _, slots = target_positions(L, level, s, tokens)
    return take_positions(view.tokens, slots), view.v


def labels(view: View, level: int, L: int, s: int):
    """The root label, one slot: supervision. Values in ``[0, n_classes)``."""
    if view.labels is None:
        raise ValueError("this context needs labels: pass labels to fit")
    n = s ** (L - level)
    return np.broadcast_to(view.labels[:, None, None], (view.labels.shape[0], n, 1)), view.n_classes


#: Contexts by name, for learner options.
CONTEXTS = {
    "cousin_tuples": cousin_tuples,
    "cousin_symbols": cousin_symbols,
    "great_grandparent_tuples": great_grandparent_tuples,
    "leaf_tuples": leaf_tuples,
    "leaf_symbols": leaf_symbols,
    "labels": labels,
}
