"""The latent probe: k-means on hidden states pooled over each latent node's span.

A level-``l`` node spans ``s**l`` consecutive tokens. The probe averages a
layer's hidden states over those tokens (a reshape and a mean), clusters the
pooled vectors of the training set into ``v`` groups with scikit-learn's
``KMeans(n_clusters=v, random_state=seed)``, and codes new nodes by their
nearest centroid. One k-means is fitted per (level, layer), for levels
``1..L-1`` (the root needs labels, see the book) and every layer the network
exposes. The codes are then scored against true latents up to a relabelling
(:func:`lpbook.metrics.level_accuracy`) by :func:`score_layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from .._validate import check_int
from ..grammar import smallest_uint
from ..metrics import level_accuracy


def pool(states: np.ndarray, s: int, level: int) -> np.ndarray:
    """Average ``states`` of shape ``(P, s**L, d)`` over the span of each level-``level`` node.

    Returns shape ``(P, s**(L - level), d)``: entry ``[p, i]`` is the mean over
    tokens ``i * s**level .. (i + 1) * s**level - 1`` of row ``p``.
    """
    P, n, d = states.shape
    return states.reshape(P, n // s**level, s**level, d).mean(axis=2)


class LatentProbe:
    """k-means codes for levels ``1..L-1`` read from every layer's hidden states.

    Parameters
    ----------
    v, s, L : int
        The grammar's shape (``L >= 2``, so that there is a level to probe).
    seed : int
        ``random_state`` of every k-means.
    n_init : int
        k-means restarts, the best inertia kept (default 4: k-means++ with a
        few restarts is reliable for ``v`` well-separated clusters, and cheap).

    ``fit(states)`` and ``transform(states)`` take one array per layer, each
    of shape ``(P, s**L, d_layer)`` (numpy or anything ``np.asarray`` reads,
    e.g. CPU torch tensors); ``transform`` needs the same layers and widths as
    ``fit``.
    """

    def __init__(self, v, s, L, seed=0, n_init=4):
        self.v = check_int("v", v, minimum=2)
        self.s = check_int("s", s, minimum=2)
        self.L = check_int("L", L, minimum=2)
        self.seed = check_int("seed", seed, minimum=0)
        self.n_init = check_int("n_init", n_init, minimum=1)

    @property
    def levels(self) -> range:
        """The probed levels, ``1..L-1``."""
        return range(1, self.L)

    def _check_states(self, states) -> list[np.ndarray]:
        if isinstance(states, np.ndarray) or not hasattr(states, "__len__") or len(states) == 0:
            raise TypeError("states must be a non-empty sequence of arrays, one per layer")
        arrays = [np.asarray(layer) for layer in states]
        for i, arr in enumerate(arrays):
            if not np.issubdtype(arr.dtype, np.floating):
                raise TypeError(f"states[{i}] must hold floats, got dtype {arr.dtype}")
            if arr.ndim != 3 or arr.shape[1] != self.s**self.L or arr.shape[0] == 0:
                raise ValueError(
                    f"states[{i}] must have shape (P >= 1, s**L = {self.s**self.L}, d), got {arr.shape}"
                )
            if arr.shape[0] != arrays[0].shape[0]:
                raise ValueError(f"states[{i}] has {arr.shape[0]} rows, states[0] has {arrays[0].shape[0]}")
            if not np.isfinite(arr).all():
                raise ValueError(f"states[{i}] must be finite")
        return arrays

    def fit(self, states) -> LatentProbe:
        """Fit one k-means per (level, layer) on the training set's pooled states."""
        arrays = self._check_states(states)
        if arrays[0].shape[0] * self.s < self.v:
            raise ValueError(
                f"states must hold P >= v / s rows, so that every level has at least v = {self.v} "
                f"nodes to cluster, got P = {arrays[0].shape[0]}"
            )
        self.kmeans_ = {
            level: [
                KMeans(n_clusters=self.v, random_state=self.seed, n_init=self.n_init).fit(
                    self._points(arr, level)
                )
                for arr in arrays
            ]
            for level in self.levels
        }
        self.widths_ = [arr.shape[2] for arr in arrays]
        return self

    def transform(self, states) -> dict[int, dict[int, np.ndarray]]:
        """``{level: {layer: codes}}``, codes of shape ``(P, s**(L - level))`` in ``[0, v)``, dtype ``smallest_uint(v)``."""
        if not hasattr(self, "kmeans_"):
            raise RuntimeError("LatentProbe is not fitted: call fit(states) first")
        arrays = self._check_states(states)
        widths = [arr.shape[2] for arr in arrays]
        if widths != self.widths_:
            raise ValueError(f"states must have the layer widths seen in fit, {self.widths_}, got {widths}")
        P = arrays[0].shape[0]
        return {
            level: {
                layer: kmeans.predict(self._points(arr, level)).astype(smallest_uint(self.v)).reshape(P, -1)
                for layer, (kmeans, arr) in enumerate(zip(self.kmeans_[level], arrays))
            }
            for level in self.levels
        }

    def _points(self, states: np.ndarray, level: int) -> np.ndarray:
        """The pooled states of every level-``level`` node as rows, shape ``(P * s**(L - level), d)``."""
        return pool(states, self.s, level).reshape(-1, states.shape[2])


@dataclass(frozen=True)
class ProbeScores:
    """Held-out accuracy of a probe: ``accuracy[level][layer]``, and ``best_layer[level]``."""

    accuracy: dict[int, dict[int, float]]
    best_layer: dict[int, int]


def score_layers(layer_codes: dict[int, dict[int, np.ndarray]], levels) -> ProbeScores:
    """Score ``{level: {layer: codes}}`` against the true latents ``levels[level]``.

    ``levels`` is indexable by level, e.g. ``Sample.levels`` of held-out
    samples, with ``levels[level]`` of the codes' shape. The best layer of a
    level is the one of highest accuracy (the lowest such layer on ties);
    choosing it this way uses held-out truth, so it is an upper bound on what
    a fixed, label-free choice of layer achieves.
    """
    accuracy = {
        level: {layer: level_accuracy(levels[level], codes) for layer, codes in by_layer.items()}
        for level, by_layer in layer_codes.items()
    }
    best_layer = {level: max(scores, key=lambda layer: (scores[layer], -layer)) for level, scores in accuracy.items()}
    return ProbeScores(accuracy, best_layer)
