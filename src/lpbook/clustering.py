"""The clustering engine: learn a level by grouping tuples with similar contexts.

One level of every clustering learner in the book works the same way:

1. split the learner's current codes (level ``l - 1``) into s-tuples, and encode
   each tuple as one int in ``[0, V**s)``;
2. count, pooled over all samples and positions, how often each tuple value
   co-occurs with each context value in each slot (:mod:`lpbook.contexts`);
3. turn each observed tuple's counts into its empirical context distribution
   and cluster those distributions into ``v`` groups (weighted k-means with
   restarts by default, each tuple weighted by how often it was seen;
   spectral clustering as an option);
4. relabel every tuple by its cluster: these are the level-``l`` codes.

:class:`ContextClustering` repeats this level after level; its subclasses only
choose the context. The choice of k-means on context distributions, with
Euclidean distance, is ours: the paper does not publish its implementation.

Tuples never seen in training have no context distribution. They are mapped to
the cluster that holds the most training occurrences (a documented fallback,
never a silent one): :meth:`ContextClustering.unseen_fraction` reports how
often that happens.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from ._progress import progress_bar
from ._validate import check_bool, check_int, check_memory
from .contexts import CONTEXTS, View
from .empirical import cooccurrence
from .grammar import encode_tuples, smallest_uint
from .learners import Learner
from .root import RootProbe

#: Samples per block: counting and relabelling run block by block, so that the
#: temporary index arrays stay small whatever P is.
BLOCK = 1 << 14
#: The most (sample, position, slot) items counted at once.
MAX_ITEMS = 1 << 23

METHODS = ("kmeans", "single", "spectral")
#: The k-means restarts of every clustering step by default (scikit-learn's ``n_init``): the run
#: with the lowest objective is kept.
N_INIT = 10


def _kmeans(features: np.ndarray, weights: np.ndarray, k: int, n_init: int, seed: int) -> KMeans:
    """Weighted k-means of the rows of ``features`` (shape ``(n, D)``) into ``k`` clusters."""
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    with warnings.catch_warnings():
        # Rows seen once or twice can be identical; fewer distinct clusters is then the right answer.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(features, sample_weight=weights)


def cluster_rows(counts: np.ndarray, n_clusters: int, seed: int, method: str = "kmeans", n_init: int = N_INIT) -> np.ndarray:
    """Cluster the rows of a count matrix by their normalised distributions.

    ``counts`` has shape ``(n_rows, n_features)``. Rows with no count are left
    out and get ``-1``; the others are normalised to sum 1 and clustered into
    ``n_clusters`` groups (all-zero columns are dropped first, which changes no
    distance). Methods:

    - ``"kmeans"``: weighted k-means (each row weighted by its total count),
      ``n_init`` restarts;
    - ``"single"``: single-linkage agglomeration cut at ``n_clusters`` groups.
      It provably returns the classes whenever every row lies within ``eps``
      of its class centre and centres are more than ``4 eps`` apart (Chapter 3);
    - ``"spectral"``: normalised spectral clustering (see :func:`_spectral`).

    When at most ``n_clusters`` rows were seen, each gets its own cluster.
    Returns an int64 array of shape ``(n_rows,)``.
    """
    seen, totals, features = row_distributions(counts)
    assignment = np.full(counts.shape[0], -1, dtype=np.int64)
    if seen.size <= n_clusters:
        assignment[seen] = np.arange(seen.size)
        return assignment
    if method == "kmeans":
        assignment[seen] = _kmeans(features, totals.astype(float), n_clusters, n_init, seed).labels_
    elif method == "single":
        tree = linkage(features, method="single", metric="euclidean")
        assignment[seen] = fcluster(tree, t=n_clusters, criterion="maxclust") - 1
    else:
        assignment[seen] = _spectral(features, totals.astype(float), n_clusters, n_init, seed)
    return assignment


def _spectral(features: np.ndarray, weights: np.ndarray, k: int, n_init: int, seed: int) -> np.ndarray:
    """Normalised spectral clustering of the rows of ``features`` (shape ``(n, D)``, ``n > k``); labels ``(n,)``.

    The algorithm of Ng, Jordan and Weiss (2001): a Gaussian affinity ``A``,
    the top ``k`` eigenvectors of ``D^-1/2 A D^-1/2`` (``D`` the row sums of
    ``A``), each row of them normalised to unit length, then weighted k-means
    of those rows. The affinity's scale is our choice: twice the largest, over
    rows, squared distance to the row's ``K``-th nearest other row, with ``K``
    half the mean class size ``n / k``. When classes are balanced, those
    neighbours lie in the row's own class, so every class is connected at
    that scale, while rows across a gap much wider than the noise get an
    affinity near zero. (Scaling by the nearest row instead leaves a class
    split into weakly linked pieces, and the result then depends on the
    eigensolver.) The dense eigendecomposition (numpy's ``eigh``) gives the
    same answer with every supported scipy and scikit-learn; it costs
    ``O(n^3)``, so this method is for a few thousand rows at most.
    """
    n = features.shape[0]
    sq = ((features[:, None, :] - features[None, :, :]) ** 2).sum(axis=-1)
    K = max(1, n // (2 * k))
    scale = 2 * np.partition(sq, K, axis=1)[:, K].max() + np.finfo(float).tiny
    affinity = np.exp(-sq / scale)
    inv_sqrt = 1 / np.sqrt(affinity.sum(axis=1))  # the row sums are >= 1: the diagonal is 1
    _, vectors = np.linalg.eigh(affinity * inv_sqrt[:, None] * inv_sqrt[None, :])
    embedding = vectors[:, -k:]
    embedding /= np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), np.finfo(float).tiny)
    return _kmeans(embedding, weights, k, n_init, seed).labels_


def row_distributions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seen rows of ``counts`` (shape ``(n_rows, n_values)``), as k-means reads them.

    Returns their indices, shape ``(k,)``, their totals, shape ``(k,)``, and
    their normalised distributions over the values that any row has seen,
    shape ``(k, n_seen_values)``; ``k`` is the number of rows with a nonzero total.
    """
    totals = counts.sum(axis=1)
    seen = np.flatnonzero(totals)
    rows = counts[seen]
    return seen, totals[seen], rows[:, rows.any(axis=0)] / totals[seen, None]


def estimate_n_clusters(counts: np.ndarray, max_clusters: int, seed: int, tolerance: float = 1.5) -> int:
    """Estimate the number of synonym classes from the noise level of the context distributions.

    A tuple seen ``n`` times has an empirical context distribution whose
    expected squared error is ``(1 - ||p||^2) / n``, so ``n`` times that is
    ``1 - ||p||^2``: with the true partition, the weighted k-means inertia is
    about ``sum_t (1 - ||p_t||^2)``, the noise; with too few clusters, the gaps
    between merged classes add to it. We return the smallest ``k`` (searched by
    bisection, since the inertia falls with ``k``) whose inertia is at most
    ``tolerance`` times that noise, estimated without bias from the counts.
    This works once the noise is well below the gaps, that is beyond the
    sample complexity; below it, the estimate is too small.
    """
    _, totals, features = row_distributions(counts)
    n = totals.astype(float)
    purity = ((features**2).sum(axis=1) * n - 1) / np.maximum(n - 1, 1)  # unbiased ||p||^2
    noise = float(np.sum(1 - np.where(n > 1, purity, 1.0)))

    def explained(k: int) -> bool:
        return _kmeans(features, n, k, 3, seed).inertia_ <= tolerance * noise

    low, high = 1, min(max_clusters, len(n))
    if not explained(high):
        return high
    while low < high:
        middle = (low + high) // 2
        if explained(middle):
            high = middle
        else:
            low = middle + 1
    return high


def _blocks(P: int, size: int = BLOCK):
    for start in range(0, P, size):
        yield slice(start, min(P, start + size))


class ContextClustering(Learner):
    """Learn levels ``1 .. top`` by clustering tuples of the learner's own codes by their context.

    Parameters
    ----------
    v, s, L, seed
        The grammar's shape and the seed of the k-means restarts (scikit-learn's ``random_state``).
    context : str
        A name in :data:`lpbook.contexts.CONTEXTS`; subclasses set the default.
    n_clusters : int or ``"auto"``, optional
        The alphabet size of every learned level: by default ``v``, the true
        one; ``"auto"`` estimates it at each level with
        :func:`estimate_n_clusters`, up to ``max_clusters`` (default ``2 v``).
    method : ``"kmeans"`` (default), ``"single"`` or ``"spectral"``
        See :func:`cluster_rows`.
    n_init : int
        k-means restarts.
    progress : bool
        Show a tqdm bar over the levels that :meth:`fit` learns (default False:
        worth it at large ``P``, where a fit takes tens of seconds).

    Attributes (after :meth:`fit`)
    ------------------------------
    assignments_ : dict[int, numpy.ndarray]
        ``assignments_[l]`` maps each tuple code of level ``l - 1`` (an int in
        ``[0, V**s)``) to its level-``l`` code, fallback included; shape ``(V**s,)``.
    seen_ : dict[int, numpy.ndarray]
        Boolean masks of shape ``(V**s,)``: the tuple values seen in training.
    alphabets_ : dict[int, int]
        The alphabet size ``V`` of the codes of each level (``v`` at level 0).
    """

    default_context: ClassVar[str] = ""
    runtime_params: ClassVar[frozenset[str]] = frozenset({"progress"})
    #: The number of root classes, for learners that use labels.
    n_classes: int | None = None
    option_values: ClassVar[dict[str, str]] = {
        "context": "one of " + ", ".join(map(repr, CONTEXTS)),
        "n_clusters": "an integer >= 2, or 'auto'",
        "max_clusters": "an integer >= 2 (read with n_clusters='auto')",
        "method": "one of " + ", ".join(map(repr, METHODS)),
        "n_init": "an integer >= 1",
        "progress": "true or false",
    }

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        return {"context": repr(cls.default_context), "n_clusters": "v", "max_clusters": "2*v"}

    def __init__(
        self, v, s, L, seed=0, *, context=None, n_clusters=None, max_clusters=None, method="kmeans", n_init=N_INIT,
        progress=False,
    ):
        super().__init__(v, s, L, seed)
        context = self.default_context if context is None else context
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.context = context
        if isinstance(n_clusters, str):
            if n_clusters != "auto":
                raise ValueError(f"n_clusters must be an integer >= 2 or 'auto', got {n_clusters!r}")
            self.n_clusters = "auto"
        else:
            self.n_clusters = self.v if n_clusters is None else check_int("n_clusters", n_clusters, minimum=2)
        self.max_clusters = 2 * self.v if max_clusters is None else check_int("max_clusters", max_clusters, minimum=2)
        self.method = method
        self.n_init = check_int("n_init", n_init, minimum=1)
        self.progress = check_bool("progress", progress)

    @property
    def top(self) -> int:
        """The highest level this learner clusters (``L - 1``: the root needs labels)."""
        return self.L - 1

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels :meth:`transform` returns: ``1 .. top`` (none when ``L = 1``)."""
        return tuple(range(1, self.top + 1))

    def _alphabet(self, level: int) -> int:
        """The alphabet size of the codes at ``level`` (tokens at level 0)."""
        return self.alphabets_[level]

    def _encode(self, codes: np.ndarray, level: int) -> np.ndarray:
        """The s-tuples of level-``level`` codes ``(P, n*s)``, encoded: ``(P, n)`` in ``[0, V**s)``."""
        V = self._alphabet(level)
        return encode_tuples(codes.reshape(codes.shape[0], -1, self.s), V, smallest_uint(V**self.s))

    def _context_size(self, level: int, V: int, tokens, token_tuples, labels) -> tuple[int, int]:
        """``(n_slots, n_values)`` of the context at ``level`` when the level-``(level - 1)`` codes have alphabet ``V``.

        Asks the context itself, on one sample whose codes are zeros.
        """
        n = self.s ** (self.L - level)
        view = View(
            codes=np.zeros((1, n * self.s), dtype=np.int64),
            tuples=np.zeros((1, n), dtype=np.int64),
            tokens=tokens[:1],
            token_tuples=token_tuples[:1],
            labels=None if labels is None else labels[:1],
            V=V,
            v=self.v,
            n_classes=self.n_classes,
        )
        values, n_values = CONTEXTS[self.context](view, level, self.L, self.s)
        return values.shape[2], n_values

    def _check_sizes(self, tokens, token_tuples, labels) -> None:
        """Raise a ``ValueError`` before any work when a level's count table would not fit in memory."""
        k = self.max_clusters if self.n_clusters == "auto" else self.n_clusters
        name = "max_clusters" if self.n_clusters == "auto" else "n_clusters"
        for level in range(1, self.top + 1):
            V = self.v if level == 1 else k
            n_slots, n_values = self._context_size(level, V, tokens, token_tuples, labels)
            rows, columns = V**self.s, n_slots * n_values
            check_memory(
                "v" if level == 1 else name, V, 2 * 8 * rows * columns,
                f"the level-{level} count table of {type(self).__name__} (context {self.context!r}: "
                f"{rows} tuples x {columns} context values, int64, and its block counts)",
            )

    def _count(self, codes, tokens, token_tuples, labels, level: int) -> np.ndarray:
        """Co-occurrence counts ``(V**s, n_slots * n_values)`` of the tuples under ``level``.

        Counting runs block by block. Each ``np.bincount`` returns a dense
        array of all ``V**s * n_slots * n_values`` bins, so blocks are made
        large enough to fill several items per bin (up to :data:`MAX_ITEMS`).
        """
        context = CONTEXTS[self.context]
        V = self._alphabet(level - 1)
        n_slots, n_values = self._context_size(level, V, tokens, token_tuples, labels)

        def view(block):
            return View(
                codes=codes[block],
                tuples=self._encode(codes[block], level - 1),
                tokens=tokens[block],
                token_tuples=token_tuples[block],
                labels=None if labels is None else labels[block],
                V=V,
                v=self.v,
                n_classes=self.n_classes,
            )

        items_per_row = self.s ** (self.L - level) * n_slots
        n_bins = V**self.s * n_slots * n_values
        rows = int(np.clip(4 * n_bins // items_per_row, BLOCK, max(BLOCK, MAX_ITEMS // items_per_row)))
        total = np.zeros((V**self.s, n_slots * n_values), dtype=np.int64)
        for block in _blocks(codes.shape[0], rows):
            part = view(block)
            values, _ = context(part, level, self.L, self.s)
            total += cooccurrence(part.tuples, values, V**self.s, n_values)
        return total

    def _relabel(self, codes: np.ndarray, level: int) -> np.ndarray:
        """The level-``level`` codes of ``codes`` (level ``level - 1``), shape ``(P, s**(L - level))``."""
        table = self.assignments_[level]
        out = np.empty((codes.shape[0], codes.shape[1] // self.s), dtype=table.dtype)
        for block in _blocks(codes.shape[0]):
            out[block] = table[self._encode(codes[block], level - 1)]
        return out

    def fit(self, tokens, labels=None) -> ContextClustering:
        """Learn levels ``1 .. top`` from ``tokens`` of shape ``(P, s**L)``."""
        self._fit_levels(tokens, labels)
        return self

    def _fit_levels(self, tokens, labels) -> tuple[np.ndarray, np.ndarray | None]:
        """Learn levels ``1 .. top``; return the training set's level-``top`` codes and the checked labels."""
        tokens, labels = self._fit_inputs(tokens, labels)
        self.assignments_, self.seen_, self.alphabets_ = {}, {}, {0: self.v}
        token_tuples = self._encode(tokens, 0)
        self._check_sizes(tokens, token_tuples, labels)
        codes = tokens
        bar = progress_bar(self.top, type(self).__name__, self.progress, unit="level")
        for level in range(1, self.top + 1):
            counts = self._count(codes, tokens, token_tuples, labels, level)
            k = self.n_clusters
            if k == "auto":
                k = estimate_n_clusters(counts, self.max_clusters, self.seed)
            assignment = cluster_rows(counts, k, self.seed, self.method, self.n_init)
            seen = assignment >= 0
            weight = np.bincount(assignment[seen], weights=counts.sum(axis=1)[seen], minlength=k)
            assignment[~seen] = int(np.argmax(weight))  # the fallback for unseen tuples
            self.alphabets_[level] = k
            self.assignments_[level] = assignment.astype(smallest_uint(k))
            self.seen_[level] = seen
            codes = self._relabel(codes, level)
            bar.update()
        bar.close()
        return codes, labels

    def transform(self, tokens) -> dict[int, np.ndarray]:
        """Codes of every learned level: ``{l: (P, s**(L - l))}`` for ``l = 1 .. top``."""
        self._check_fitted("assignments_")
        codes = self._check_tokens(tokens)
        out = {}
        for level in range(1, self.top + 1):
            codes = out[level] = self._relabel(codes, level)
        return out

    def unseen_fraction(self, tokens) -> dict[int, float]:
        """For each learned level, the fraction of tuples in ``tokens`` whose value was never seen in training."""
        self._check_fitted("assignments_")
        codes = self._check_tokens(tokens)
        out = {}
        for level in range(1, self.top + 1):
            out[level] = float(1 - self.seen_[level][self._encode(codes, level - 1)].mean())
            codes = self._relabel(codes, level)
        return out


class LabelledClustering(ContextClustering):
    """A :class:`ContextClustering` that also reads the root label off its top codes.

    After learning levels ``1 .. L-1``, ``fit`` trains a
    :class:`lpbook.root.RootProbe` on the level-``(L-1)`` codes of the first
    ``n_labelled`` training samples (all of them by default) and their labels;
    ``transform`` adds the predicted root ``{L: (P, 1)}``.
    """

    uses_labels = True
    option_values: ClassVar[dict[str, str]] = {
        "n_classes": "an integer >= 1", "n_labelled": "an integer >= 1 (the first samples' labels are read)",
    }

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        return super().computed_defaults() | {"n_classes": "v", "n_labelled": "every training sample"}

    def __init__(self, v, s, L, seed=0, *, n_classes=None, n_labelled=None, **options):
        super().__init__(v, s, L, seed, **options)
        self.n_classes = self.v if n_classes is None else check_int("n_classes", n_classes, minimum=1)
        self.n_labelled = None if n_labelled is None else check_int("n_labelled", n_labelled, minimum=1)

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels :meth:`transform` returns: ``1 .. L``."""
        return tuple(range(1, self.L + 1))

    def _probe(self) -> RootProbe:
        return RootProbe(self._alphabet(self.L - 1), self.s, self.n_classes)

    def fit(self, tokens, labels=None) -> LabelledClustering:
        top, labels = self._fit_levels(tokens, labels)  # level L-1 (tokens when L = 1)
        self.root_ = self._probe().fit(top[: self.n_labelled], labels[: self.n_labelled])
        return self

    def _fitted_state(self) -> dict:
        state = super()._fitted_state()
        if "root_" in state:
            state["root_"] = {"table_": self.root_.table_, "seen_": self.root_.seen_}
        return state

    def _restore_state(self, state: dict) -> None:
        root = state.pop("root_", None)
        super()._restore_state(state)
        if root is not None:
            self.root_ = self._probe()
            self.root_.table_, self.root_.seen_ = root["table_"], root["seen_"]

    def transform(self, tokens) -> dict[int, np.ndarray]:
        """Codes of levels ``1 .. L-1`` and the predicted root label ``{L: (P, 1)}``."""
        self._check_fitted("root_")
        out = super().transform(tokens)
        top = out[self.L - 1] if self.L > 1 else self._check_tokens(tokens)
        out[self.L] = self.root_.predict(top)[:, None]  # in smallest_uint(n_classes), as every level
        return out
