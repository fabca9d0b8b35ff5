"""The book's readout of latents from a network: show a node alone, read what the network predicts at a hidden neighbour.

The encoder learners (:class:`~lpbook.neural.masked.MaskedTokenModel`,
:class:`~lpbook.neural.data2vec.Data2Vec`, and any subclass of
:class:`~lpbook.neural.base.EncoderLearner`) are read by
:class:`NeighbourReadout`, so the chapters compare their networks with one
ruler. :class:`~lpbook.neural.cnn.SupervisedCNN` predicts the root itself, and
:class:`~lpbook.neural.slc.SLC` returns the hard codes of its own lookup
tables: neither is read by it.

The contract
------------
A network is readable when it is a ``torch.nn.Module`` with a method

``states(tokens, mask) -> list of float tensors of shape (B, s**L, d_k)``
    its hidden states, one tensor per layer (layer 0 first), for int64
    ``tokens`` of shape ``(B, s**L)`` with values in ``[0, v)`` and a bool
    ``mask`` of the same shape, ``True`` where the token is hidden (the
    network decides how it hides it, e.g. a ``[MASK]`` id); the values of
    hidden tokens must not matter;

and, optionally, a method

``output(states) -> float tensor of shape (B, s**L, d_out)``
    what the network predicts at every position from those states: for a
    masked-token network the predicted token distribution, for data2vec the
    regression head's prediction.

:class:`NeighbourReadout` calls only these two, in ``eval`` mode and without
gradients, and never trains the network.

How a level is read (our design)
--------------------------------
For a level-``l`` node ``i`` (``1 <= l <= L - 1``), at slot ``j = i % s`` of
its parent:

1. *Show the node alone.* Every token is hidden except the ``s**l`` tokens of
   the node's span.
2. *Read at a hidden neighbour.* The features are what a *candidate* (a layer
   ``k >= 1`` of ``states``, or ``output``) holds at the positions of the
   node's siblings' spans (``(s - 1) * s**l`` positions), concatenated in
   order, not averaged. This is the neural form of ILC's context statistic
   ``P(neighbour | node)``; by synonymic invariance a Bayes-optimal network
   gives synonyms identical features there. (Layer 0, the input embedding, is
   no candidate: at a hidden position it does not depend on the node.)
3. *Centre per position.* Each node position's features are centred on their
   mean over the training nodes (weighted by counts), which removes the
   part that only says where the node sits.
4. *Cluster per slot.* One weighted k-means with ``v`` clusters per slot
   ``j``, over the distinct ``(position, span)`` values of the training set
   (weighted by their counts), because ``P(neighbour | a)`` differs between
   the left and the right slot. (A slot in which fewer than ``v`` symbols
   occur still gets ``v`` clusters, so one of its symbols is split, unless
   its features take fewer than ``v`` distinct values.)
5. *Align the slots without labels.* A symbol's subtree does not depend on
   where it sits, so the same span value belongs to the same symbol in every
   slot: slot ``j``'s cluster labels are permuted onto slot 0's by the
   Hungarian matching that maximises the training nodes whose span values
   the two slots share.
6. *Choose the candidate without labels.* For each level, the candidate
   kept is the one whose codes best predict the hidden neighbour on a
   validation split: the cross-entropy of the siblings' level-1 token
   tuples (each ``s``-tuple as one symbol, ``v**s`` values) given the node's
   slot and code, estimated from the training nodes with add-1/2 smoothing.
   Merging non-synonyms loses information about the neighbour and merging
   synonyms loses none, so the true partition minimises this loss. The
   held-out truth is never used.

Work is done once per distinct ``(position, span)`` value, not per sample:
forward passes, clustering and coding scale with the number of distinct
spans, which is small at low levels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from .._validate import check_int
from ..grammar import smallest_uint
from .training import INFERENCE_BATCH

OUTPUT = "output"


def candidate_names(n_layers: int, has_output: bool) -> list[str]:
    """The readout's candidates: ``"layer 1" .. "layer n_layers"``, then ``"output"`` if the network has one."""
    return [f"layer {k}" for k in range(1, n_layers + 1)] + ([OUTPUT] if has_output else [])


@dataclass
class _Keys:
    """The distinct ``(position, span)`` values of one level in a set of samples.

    ``position`` (U,), ``span`` (U, s**l) and ``count`` (U,) describe the
    distinct values; ``inverse`` (P, n_nodes) maps each node to its row.
    """

    position: np.ndarray
    span: np.ndarray
    count: np.ndarray
    inverse: np.ndarray


def _keys(tokens: np.ndarray, s: int, level: int) -> _Keys:
    P, n = tokens.shape
    n_nodes = n // s**level
    spans = tokens.reshape(P, n_nodes, s**level)
    rows = np.concatenate([np.repeat(np.arange(n_nodes)[None, :, None], P, axis=0), spans], axis=2)
    unique, inverse, count = np.unique(rows.reshape(P * n_nodes, -1), axis=0, return_inverse=True, return_counts=True)
    return _Keys(unique[:, 0], unique[:, 1:], count, inverse.reshape(P, n_nodes))


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The index of the nearest of ``centroids`` ``(k, d)`` to each of ``points`` ``(n, d)``, shape ``(n,)``.

    As k-means assigns a point: the smallest ``||c||^2 - 2 x.c`` (the squared
    distance less ``||x||^2``), the first centroid on a tie.
    """
    return np.argmin(np.einsum("kd,kd->k", centroids, centroids)[None, :] - 2.0 * (points @ centroids.T), axis=1)


def _read_positions(s: int, L: int, level: int, node: np.ndarray) -> np.ndarray:
    """Token positions of the siblings' spans of level-``level`` nodes ``node`` (U,): shape ``(U, (s-1) * s**level)``."""
    width = s**level
    parent, slot = node // s, node % s
    others = np.array([[j for j in range(s) if j != k] for k in range(s)])[slot]  # (U, s-1)
    siblings = parent[:, None] * s + others
    return (siblings[:, :, None] * width + np.arange(width)).reshape(len(node), -1)


class NeighbourReadout:
    """Codes of levels ``1..L-1`` read from a network by the recipe of the module docstring.

    Parameters
    ----------
    v, s, L : int
        The grammar's shape (``L >= 2``).
    seed : int
        ``random_state`` of every k-means.
    n_init : int
        k-means restarts, the best inertia kept (default 4).
    candidates : sequence of str, optional
        The candidates to consider (default: every one the network offers,
        :func:`candidate_names`). A single candidate fixes the choice.

    Attributes (after ``fit``)
    --------------------------
    choice_ : dict[int, str]
        The candidate kept for each level.
    val_loss_ : dict[int, dict[str, float]]
        The validation neighbour-prediction loss of every candidate, per
        level (nats per sibling tuple).
    """

    def __init__(self, v, s, L, seed=0, n_init=4, candidates=None):
        self.v = check_int("v", v, minimum=2)
        self.s = check_int("s", s, minimum=2)
        self.L = check_int("L", L, minimum=2)
        self.seed = check_int("seed", seed, minimum=0)
        self.n_init = check_int("n_init", n_init, minimum=1)
        if candidates is not None:
            candidates = list(candidates)
            if not candidates or not all(isinstance(c, str) for c in candidates):
                raise TypeError(f"candidates must be a non-empty sequence of names, got {candidates!r}")
        self.candidates = candidates

    @property
    def levels(self) -> range:
        """The levels read, ``1..L-1``."""
        return range(1, self.L)

    # ----------------------------------------------------------- features
    def _check(self, network, tokens) -> tuple[np.ndarray, list[str]]:
        if not callable(getattr(network, "states", None)):
            raise TypeError(f"network must have a states(tokens, mask) method, got {type(network).__name__}")
        tokens = np.asarray(tokens)
        n = self.s**self.L
        if tokens.ndim != 2 or tokens.shape[1] != n or tokens.shape[0] == 0:
            raise ValueError(f"tokens must have shape (P >= 1, s**L = {n}), got {tokens.shape}")
        if not np.issubdtype(tokens.dtype, np.integer) or tokens.min() < 0 or tokens.max() >= self.v:
            raise ValueError(f"tokens must hold integers in [0, {self.v})")
        device = next(network.parameters()).device
        with torch.no_grad():
            probe = network.states(torch.zeros(1, n, dtype=torch.int64, device=device),
                                   torch.ones(1, n, dtype=torch.bool, device=device))
        offered = candidate_names(len(probe) - 1, callable(getattr(network, "output", None)))
        wanted = offered if self.candidates is None else self.candidates
        unknown = [c for c in wanted if c not in offered]
        if unknown:
            raise ValueError(f"candidates {unknown} are not offered by this network, which offers {offered}")
        return tokens.astype(np.int64), wanted

    @torch.no_grad()
    def _features(self, network, keys: _Keys, level: int, names: list[str]) -> dict[str, np.ndarray]:
        """Each candidate's features of the distinct keys, ``(U, (s-1) * s**level * d)`` float32 arrays."""
        n, width = self.s**self.L, self.s**level
        U = len(keys.position)
        tokens = np.zeros((U, n), dtype=np.int64)
        visible = keys.position[:, None] * width + np.arange(width)
        np.put_along_axis(tokens, visible, keys.span, axis=1)
        mask = np.ones((U, n), dtype=bool)
        np.put_along_axis(mask, visible, False, axis=1)
        read = _read_positions(self.s, self.L, level, keys.position)
        device = next(network.parameters()).device
        was_training = network.training
        network.eval()
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for start in range(0, U, INFERENCE_BATCH):
            rows = slice(start, start + INFERENCE_BATCH)
            states = network.states(torch.as_tensor(tokens[rows], device=device), torch.as_tensor(mask[rows], device=device))
            index = torch.as_tensor(read[rows], device=device)
            for name in names:
                x = network.output(states) if name == OUTPUT else states[int(name.split()[1])]
                gathered = torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))
                parts[name].append(gathered.reshape(len(index), -1).float().cpu().numpy())
        network.train(was_training)
        return {name: np.concatenate(chunks) for name, chunks in parts.items()}

    # ------------------------------------------------------------- fitting
    def fit(self, network, tokens, val_tokens) -> NeighbourReadout:
        """Fit the clusterings on ``tokens`` and choose each level's candidate on ``val_tokens``.

        ``network`` follows the module's contract; ``tokens`` and
        ``val_tokens`` are int arrays of shape ``(P, s**L)`` and
        ``(P_val, s**L)`` with values in ``[0, v)``. Labels are never used.
        """
        tokens, names = self._check(network, tokens)
        val_tokens, _ = self._check(network, val_tokens)
        self.names_ = names
        self.fitted_ = {}  # level -> name -> (centres per position, centroids per slot, permutation per slot)
        self.val_loss_, self.choice_ = {}, {}
        for level in self.levels:
            keys = _keys(tokens, self.s, level)
            features = self._features(network, keys, level, names)
            val_keys = _keys(val_tokens, self.s, level)
            val_features = self._features(network, val_keys, level, names)
            self.fitted_[level], self.val_loss_[level] = {}, {}
            for name in names:
                self.fitted_[level][name] = self._cluster(keys, features[name])
                codes = self._code(level, name, keys, features[name])
                val_codes = self._code(level, name, val_keys, val_features[name])
                self.val_loss_[level][name] = self._neighbour_loss(tokens, codes, val_tokens, val_codes, level)
            self.choice_[level] = min(names, key=lambda name: self.val_loss_[level][name])
        return self

    def _cluster(self, keys: _Keys, features: np.ndarray):
        """Centres per node position, the k-means centroids of each slot, and each slot's permutation onto slot 0."""
        n_positions = keys.inverse.shape[1]  # the level's nodes
        weight = keys.count.astype(float)
        sums = np.zeros((n_positions, features.shape[1]))
        np.add.at(sums, keys.position, weight[:, None] * features)
        centres = sums / np.maximum(np.bincount(keys.position, weight, n_positions), 1e-300)[:, None]
        centred = features - centres[keys.position]
        slot = keys.position % self.s
        centroids, labels = [], np.zeros(len(slot), dtype=np.int64)
        for j in range(self.s):
            rows = np.flatnonzero(slot == j)
            if rows.size == 0:
                centroids.append(None)
                continue
            k = min(self.v, len(np.unique(centred[rows], axis=0)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted = KMeans(n_clusters=k, random_state=self.seed, n_init=self.n_init)
                labels[rows] = fitted.fit_predict(centred[rows], sample_weight=weight[rows])
            centroids.append(fitted.cluster_centers_)
        return centres, centroids, self._align(keys, labels, slot)

    def _align(self, keys: _Keys, labels: np.ndarray, slot: np.ndarray) -> list[np.ndarray]:
        """For each slot, the permutation of its labels that matches slot 0's on shared span values."""
        spans, span_id = np.unique(keys.span, axis=0, return_inverse=True)
        span_id = span_id.ravel()
        # counts[j, span, label]: how many training nodes of slot j with that span got that label
        counts = np.zeros((self.s, len(spans), self.v))
        np.add.at(counts, (slot, span_id, labels), keys.count)
        permutations = [np.arange(self.v)]
        for j in range(1, self.s):
            shared = np.minimum(counts[0].sum(1), counts[j].sum(1))  # weight of each span value
            p0 = counts[0] / np.maximum(counts[0].sum(1, keepdims=True), 1)
            pj = counts[j] / np.maximum(counts[j].sum(1, keepdims=True), 1)
            overlap = np.einsum("u,ua,ub->ba", shared, p0, pj)  # (label in slot j, label in slot 0)
            rows, cols = linear_sum_assignment(-overlap)
            permutation = np.arange(self.v)
            permutation[rows] = cols
            permutations.append(permutation)
        return permutations

    def _code(self, level: int, name: str, keys: _Keys, features: np.ndarray) -> np.ndarray:
        """Codes of every node, ``(P, n_nodes)`` of dtype ``smallest_uint(v)``, from distinct keys' features."""
        centres, centroids, permutations = self.fitted_[level][name]
        centred = features - centres[keys.position]
        slot = keys.position % self.s
        labels = np.zeros(len(slot), dtype=np.int64)
        for j in range(self.s):
            rows = np.flatnonzero(slot == j)
            if rows.size:
                labels[rows] = permutations[j][_nearest(centred[rows], centroids[j])]
        return labels[keys.inverse].astype(smallest_uint(self.v))

    def _neighbour_loss(self, tokens, codes, val_tokens, val_codes, level: int) -> float:
        """Validation cross-entropy of the siblings' token tuples given (slot, code), in nats per tuple."""
        symbols = self.v**self.s

        def observations(x: np.ndarray, code: np.ndarray):
            P, n_nodes = code.shape
            node = np.broadcast_to(np.arange(n_nodes), (P, n_nodes))
            read = _read_positions(self.s, self.L, level, np.arange(n_nodes))  # (n_nodes, R)
            tuples = x[:, read].reshape(P, n_nodes, -1, self.s) @ (self.v ** np.arange(self.s - 1, -1, -1))
            R = tuples.shape[2]
            cell = ((node % self.s) * self.v + code)[:, :, None] * R + np.arange(R)
            return cell.ravel(), tuples.ravel(), self.s * self.v * R

        cell, target, n_cells = observations(tokens, codes)
        counts = np.bincount(cell * symbols + target, minlength=n_cells * symbols).reshape(n_cells, symbols)
        val_cell, val_target, _ = observations(val_tokens, val_codes)
        alpha = 0.5
        probability = (counts[val_cell, val_target] + alpha) / (counts[val_cell].sum(1) + alpha * symbols)
        return float(-np.log(probability).mean())

    # ------------------------------------------------------------- coding
    def _check_fitted(self) -> None:
        if not hasattr(self, "fitted_"):
            raise RuntimeError("NeighbourReadout is not fitted: call fit(network, tokens, val_tokens) first")

    # ------------------------------------------------------- saving
    def get_state(self) -> dict:
        """The fitted readout as arrays and plain values, for :meth:`from_state` (used by ``Learner.save``)."""
        self._check_fitted()
        fitted = {
            level: {
                name: {"centres": centres, "kmeans": list(centroids), "permutations": list(permutations)}
                for name, (centres, centroids, permutations) in by_name.items()
            }
            for level, by_name in self.fitted_.items()
        }
        return {
            "params": {"v": self.v, "s": self.s, "L": self.L, "seed": self.seed, "n_init": self.n_init, "candidates": self.candidates},
            "names": list(self.names_),
            "choice": self.choice_,
            "val_loss": self.val_loss_,
            "fitted": fitted,
        }

    @classmethod
    def from_state(cls, state: dict) -> NeighbourReadout:
        """The readout that :meth:`get_state` described, giving the same codes: its centroids, as they were fitted."""
        params = dict(state["params"])
        if params["candidates"] is not None:
            params["candidates"] = tuple(params["candidates"])
        readout = cls(**params)
        readout.names_ = list(state["names"])
        readout.choice_ = {int(level): name for level, name in state["choice"].items()}
        readout.val_loss_ = {int(level): dict(by_name) for level, by_name in state["val_loss"].items()}
        readout.fitted_ = {
            int(level): {
                name: (f["centres"], [None if c is None else np.asarray(c) for c in f["kmeans"]],
                       [np.asarray(p) for p in f["permutations"]])
                for name, f in by_name.items()
            }
            for level, by_name in state["fitted"].items()
        }
        return readout

    def transform(self, network, tokens) -> dict[int, np.ndarray]:
        """``{level: codes}`` from each level's chosen candidate; codes ``(P, s**(L - level))`` in ``[0, v)``, dtype ``smallest_uint(v)``."""
        self._check_fitted()
        return {level: by_name[self.choice_[level]] for level, by_name in self.transform_candidates(network, tokens).items()}

    def transform_candidates(self, network, tokens) -> dict[int, dict[str, np.ndarray]]:
        """``{level: {candidate: codes}}`` for every level and every fitted candidate, codes as in :meth:`transform`."""
        self._check_fitted()
        tokens, _ = self._check(network, tokens)
        out = {}
        for level in self.levels:
            keys = _keys(tokens, self.s, level)
            features = self._features(network, keys, level, self.names_)
            out[level] = {name: self._code(level, name, keys, features[name]) for name in self.names_}
        return out
