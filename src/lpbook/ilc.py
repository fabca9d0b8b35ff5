"""Iterative latent clustering (ILC): learn each level from the learner's own latents (Chapter 3).

ILC is the clustering engine of :mod:`lpbook.clustering` with a target made of
the learner's own codes: at level ``l`` it clusters the s-tuples of its
level-``(l-1)`` codes by the codes it sees in the neighbouring (cousin) tuples
under the same grandparent. Once level ``l - 1`` is recovered, those codes are
as good as fresh tokens of a grammar one level shallower, so every level costs
the same number of samples, about ``v * m**3``.
"""

from __future__ import annotations

from .clustering import ContextClustering, LabelledClustering
from .learners import register


@register("ilc")
class ILC(ContextClustering):
    """Iterative latent clustering: cluster tuples by the learner's own codes in the cousin tuples.

    Contexts (option ``context``): ``"cousin_tuples"`` (the default: each
    cousin tuple taken jointly), ``"cousin_symbols"`` (the cousin tuples'
    codes one by one) and ``"great_grandparent_tuples"`` (every other tuple
    under the great-grandparent, each jointly). See :class:`ContextClustering`
    for the other options. Recovers levels ``1 .. L-1``; the root needs
    labels (:class:`lpbook.root.RootProbe`).
    """

    default_context = "cousin_tuples"


@register("ilc-probe")
class ILCWithProbe(LabelledClustering):
    """The full latent pipeline: :class:`ILC` without labels, then a root probe with labels.

    Levels ``1 .. L-1`` are learned exactly as by :class:`ILC`, from the
    tokens alone; the root is then read off the top codes by a
    :class:`lpbook.root.RootProbe` trained on the first ``n_labelled``
    samples' labels (all by default). Options as :class:`ILC`, plus
    ``n_classes`` and ``n_labelled``.
    """

    default_context = "cousin_tuples"
