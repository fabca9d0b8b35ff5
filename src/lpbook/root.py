"""Reading the root label off the top latent level.

No amount of self-supervision names the root classes: they are a labelling
convention. Once the level-``(L-1)`` latents are known, though, the root is a
deterministic function of the top tuple (the grammar is unambiguous), and
learning it is a lookup table: each of the ``n_c * m`` grammatical top tuples
needs one labelled example. :class:`RootProbe` is that table.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_int, check_int_array, check_range
from .empirical import cooccurrence
from .grammar import encode_tuples, smallest_uint


class RootProbe:
    """Majority label of each value of the top tuple (the ``s`` codes of level ``L - 1``).

    Parameters
    ----------
    n_codes : int
        Alphabet size of the level-``(L-1)`` codes.
    s : int
        Branching factor: a top tuple has ``s`` codes.
    n_classes : int
        Number of root classes.

    A top tuple never seen with a label is given the most frequent label.
    """

    def __init__(self, n_codes, s, n_classes):
        self.n_codes = check_int("n_codes", n_codes, minimum=1)
        self.s = check_int("s", s, minimum=2)
        self.n_classes = check_int("n_classes", n_classes, minimum=1)

    def _tuples(self, top_codes) -> np.ndarray:
        top_codes = check_int_array("top_codes", top_codes, ndim=2)
        if top_codes.shape[1] != self.s:
            raise ValueError(f"top_codes must have shape (P, s = {self.s}), got {top_codes.shape}")
        check_range("top_codes", top_codes, 0, self.n_codes)
        return encode_tuples(top_codes, self.n_codes)

    def fit(self, top_codes, labels) -> RootProbe:
        """Learn from ``top_codes`` of shape ``(P, s)`` and ``labels`` of shape ``(P,)``."""
        tuples = self._tuples(top_codes)
        labels = check_int_array("labels", labels, ndim=1)
        if labels.shape[0] != tuples.shape[0]:
            raise ValueError(f"labels must have shape (P,) = ({tuples.shape[0]},), got {labels.shape}")
        check_range("labels", labels, 0, self.n_classes)
        counts = cooccurrence(tuples[:, None], labels[:, None, None], self.n_codes**self.s, self.n_classes)
        self.table_ = np.argmax(counts, axis=1).astype(smallest_uint(self.n_classes))
        self.seen_ = counts.sum(axis=1) > 0
        self.table_[~self.seen_] = int(np.argmax(counts.sum(axis=0)))
        return self

    def predict(self, top_codes) -> np.ndarray:
        """Predicted labels, shape ``(P,)``, in ``smallest_uint(n_classes)``."""
        if not hasattr(self, "table_"):
            raise RuntimeError("RootProbe is not fitted: call fit(top_codes, labels) first")
        return self.table_[self._tuples(top_codes)]
