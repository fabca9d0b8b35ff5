"""Learning from tokens, in algorithmic form (Chapter 2).

Both learners are the clustering engine of :mod:`lpbook.clustering` with a
target made of *observed* quantities:

- :class:`TokenClustering` clusters tuples of its own codes by the visible
  tokens of the cousin subtrees (token-level self-supervision);
- :class:`SupervisedClustering` clusters them by the root label
  (supervision), the mechanism that Petrini et al. identified in deep networks.
"""

from __future__ import annotations

from .clustering import ContextClustering, LabelledClustering
from .learners import register


@register("token-clustering")
class TokenClustering(ContextClustering):
    """Token-level SSL: cluster tuples by the tokens of the cousin subtrees.

    Level by level, the s-tuples of the learner's own codes are clustered by
    their co-occurrence with the visible tokens below their parent's siblings.
    The default context, ``"leaf_tuples"``, reads those tokens in s-tuples,
    each taken jointly; ``"leaf_symbols"`` reads them one by one. Recovering
    level ``l`` this way should take about ``v * m**(l + 2)`` samples.
    """

    default_context = "leaf_tuples"


@register("supervised-clustering")
class SupervisedClustering(LabelledClustering):
    """Supervision: cluster tuples by their class-conditional frequencies, then read the root.

    Levels ``1 .. L-1`` are learned by clustering tuples of the learner's own
    codes by the distribution of the root label given the tuple; the root is
    then the majority label of each top tuple (:class:`lpbook.root.RootProbe`).
    Level ``l`` alone needs about ``v * m**(L - l + 1)`` samples: the bottom
    level is the hardest.
    """

    default_context = "labels"
