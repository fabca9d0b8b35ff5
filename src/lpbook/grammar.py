"""The Random Hierarchy Model (RHM): a random, unambiguous context-free grammar.

Levels run from 0 (the ``s**L`` visible tokens) to ``L`` (the root). Level
``l < L`` has alphabet size ``v``; the root has ``n_classes`` (default ``v``).
Each level-``l`` symbol ``a`` (``l = 1..L``) has ``m`` productions, each an
s-tuple of level-``(l-1)`` symbols, stored as ``rules[l][a, j]``. All the
``n_l * m`` tuples of one level are distinct, drawn without replacement from the
``v**s`` possible tuples, so every grammatical tuple has exactly one parent.

Sampling is ancestral: the root is uniform and every node picks one of its
``m`` productions independently, uniformly by default. With
``rule_probs="zipf"`` (beyond the paper, our construction) symbol ``a`` picks
its productions with probabilities proportional to ``k**(-zipf_a)``,
``k = 1..m``, the ranks assigned to its productions in a random order drawn
from the grammar's seed; :attr:`RHM.production_probs` holds them.

Seeds. The rules of level ``l`` depend only on ``(seed, l)`` and on the
number of level-``l`` symbols, so grammars of different depth with the same seed
share their lower levels. Samples are drawn in blocks of :data:`BLOCK` rows,
each block from its own stream, so ``sample(P2, seed)`` begins with
``sample(P1, seed)`` for ``P1 <= P2``: training sets of increasing size are
nested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_float, check_int, check_int_array, check_memory, check_range

#: Rows per independently seeded block in :meth:`RHM.sample`.
BLOCK = 4096

# Namespaces of the random streams derived from a seed.
_RULES_STREAM = 0
_SAMPLE_STREAM = 1
_ORDER_STREAM = 2  # the rank order of skewed production probabilities

#: The production-probability schemes of :class:`RHM`.
RULE_PROBS = ("uniform", "zipf")


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent, reproducible generator for ``(seed, key)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def sample_seeds(seed: int) -> tuple[int, int]:
    """The seeds of a run's training and test samples, ``(2 * seed, 2 * seed + 1)``.

    Every run of the book (a sweep point, a saved network, an oracle or a
    perturbation check) with seed ``seed`` trains on
    ``rhm.sample(P, seed=2 * seed)`` and tests on
    ``rhm.sample(n_test, seed=2 * seed + 1)``, so that runs of the same
    grammar, ``P`` and seed see the same strings.
    """
    return 2 * seed, 2 * seed + 1


def smallest_uint(n_values: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ``0 .. n_values - 1``."""
    return np.min_scalar_type(max(n_values - 1, 0))


def encode_tuples(tuples: np.ndarray, v: int, dtype=np.int64) -> np.ndarray:
    """Codes of s-tuples over an alphabet of size ``v``.

    ``tuples`` has shape ``(..., s)``; the result, of shape ``(...)``, is
    ``sum_i tuples[..., i] * v**(s-1-i)`` (the first symbol is the most
    significant digit), in ``dtype`` (int64 by default), which must hold ``v**s - 1``.
    """
    tuples = np.asarray(tuples)
    codes = tuples[..., 0].astype(dtype)
    for i in range(1, tuples.shape[-1]):
        codes *= v
        codes += tuples[..., i]
    return codes


@dataclass(frozen=True)
class Sample:
    """Strings of an RHM with all their latent levels.

    ``levels[l]`` has shape ``(P, s**(L - l))`` for ``l = 0..L``, in the
    smallest unsigned dtype that holds level ``l``'s alphabet.
    """

    levels: tuple[np.ndarray, ...]

    @property
    def tokens(self) -> np.ndarray:
        """The visible tokens, ``levels[0]``, of shape ``(P, s**L)``."""
        return self.levels[0]

    @property
    def labels(self) -> np.ndarray:
        """The root symbols (class labels), of shape ``(P,)``."""
        return self.levels[-1][:, 0]

    @property
    def P(self) -> int:
        """The number of strings."""
        return self.levels[0].shape[0]

    def __len__(self) -> int:
        return self.P


class UngrammaticalError(ValueError):
    """Raised by :meth:`RHM.parse` on a string the grammar cannot generate.

    ``sample``, ``level`` and ``position`` locate the first offending tuple: the
    s-tuple of level-``(level - 1)`` symbols under position ``position`` of
    level ``level``, in row ``sample`` of the input.
    """

    def __init__(self, message: str, sample: int, level: int, position: int):
        super().__init__(message)
        self.sample = sample
        self.level = level
        self.position = position


class RHM:
    """A Random Hierarchy Model with fixed random rules.

    Parameters
    ----------
    v : int
        Alphabet size of every level below the root (``v >= 2``).
    m : int
        Productions per symbol (``1 <= m <= v**(s-1)``).
    s : int
        Branching factor, the length of each production (``s >= 2``).
    L : int
        Depth (``L >= 1``): there are ``s**L`` tokens.
    n_classes : int, optional
        Alphabet size of the root, ``n_c`` (default ``v``; ``n_c * m <= v**s``).
    seed : int
        Seed of the rules (``>= 0``).
    rule_probs : {"uniform", "zipf"}
        How a symbol picks among its ``m`` productions: uniformly (the paper's
        RHM, the default), or with Zipf probabilities ``k**(-zipf_a)`` over ranks
        ``k = 1..m`` assigned to its productions in an order drawn from ``seed``
        (independently for every symbol of every level).
    zipf_a : float, optional
        The Zipf exponent (finite, ``>= 0``; default 1), only with
        ``rule_probs="zipf"``: a uniform grammar given one raises ``ValueError``
        (its ``zipf_a`` is ``None``). ``zipf_a = 0`` gives uniform probabilities
        (but samples from a different random stream than ``rule_probs="uniform"``).

    Attributes
    ----------
    rules : dict[int, numpy.ndarray]
        ``rules[l]`` for ``l = 1..L``, of shape ``(n_l, m, s)``, read-only.
    production_probs : dict[int, numpy.ndarray]
        ``production_probs[l][a, j]`` is the probability that a level-``l``
        symbol ``a`` uses production ``rules[l][a, j]``: float64 arrays of shape
        ``(n_l, m)`` whose rows sum to 1, read-only.
    """

    def __init__(self, v, m, s, L, n_classes=None, seed=0, rule_probs="uniform", zipf_a=None):
        self.v = check_int("v", v, minimum=2)
        self.s = check_int("s", s, minimum=2)
        self.L = check_int("L", L, minimum=1)
        self.m = check_int("m", m, minimum=1)
        self.n_classes = self.v if n_classes is None else check_int("n_classes", n_classes, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        if not isinstance(rule_probs, str):
            raise TypeError(f"rule_probs must be a string, one of {RULE_PROBS}, got {rule_probs!r}")
        if rule_probs not in RULE_PROBS:
            raise ValueError(f"rule_probs must be one of {RULE_PROBS}, got {rule_probs!r}")
        self.rule_probs = rule_probs
        if rule_probs == "uniform" and zipf_a is not None:
            raise ValueError(f"zipf_a is only used with rule_probs='zipf', got zipf_a={zipf_a!r} and rule_probs='uniform'")
        zipf_a = 1.0 if zipf_a is None else zipf_a
        self.zipf_a = None if rule_probs == "uniform" else check_float("zipf_a", zipf_a, low=0.0, closed=True)
        v, m, s = self.v, self.m, self.s
        check_memory("L", self.L, self.string_bytes, f"one string of s**L tokens (s={s}) with its latent levels")
        if v**s >= 2**62:
            raise ValueError(f"v**s must be < 2**62 so that tuple codes fit in int64, got v={v}, s={s}")
        if m > v ** (s - 1):
            raise ValueError(
                f"m must be <= v**(s-1) = {v ** (s - 1)} so that the v*m productions of a level "
                f"can be distinct s-tuples, got m={m}"
            )
        if self.n_classes * m > v**s:
            raise ValueError(
                f"n_classes*m must be <= v**s = {v**s} so that the root's productions can be "
                f"distinct s-tuples, got n_classes={self.n_classes}, m={m}"
            )

        self.rules: dict[int, np.ndarray] = {}
        self._sorted_codes: dict[int, np.ndarray] = {}
        self._sorted_index: dict[int, np.ndarray] = {}
        self._packed: dict[int, np.ndarray] = {}
        child_dtype = smallest_uint(v)
        for level in range(1, self.L + 1):
            n = self.alphabet_size(level)
            codes = _stream(self.seed, _RULES_STREAM, level).choice(v**s, size=n * m, replace=False)
            digits = (codes[:, None] // v ** np.arange(s - 1, -1, -1)) % v
            rules = digits.reshape(n, m, s).astype(child_dtype)
            rules.flags.writeable = False
            self.rules[level] = rules
            order = np.argsort(codes, kind="stable")
            self._sorted_codes[level] = codes[order]
            self._sorted_index[level] = order
            # One item of s symbols per production, so that a single np.take
            # writes all the children of many nodes at once.
            self._packed[level] = np.ascontiguousarray(rules.reshape(n * m, s)).view(
                np.dtype((np.void, s * child_dtype.itemsize))
            )[:, 0]
        self.production_probs = {level: self._production_probs(level) for level in range(1, self.L + 1)}
        # Zipf sampling inverts the cumulative probabilities of all productions
        # of a level at once: entry a*m + j is a + P(choice <= j | a), strictly
        # increasing because every probability is positive.
        self._cumulative = {}
        for level, probs in self.production_probs.items():
            cumulative = np.cumsum(probs, axis=1)
            cumulative[:, -1] = 1.0
            self._cumulative[level] = (np.arange(probs.shape[0])[:, None] + cumulative).ravel()

    def _production_probs(self, level: int) -> np.ndarray:
        n, m = self.alphabet_size(level), self.m
        if self.rule_probs == "uniform":
            probs = np.full((n, m), 1.0 / m)
        else:
            zipf = np.arange(1, m + 1, dtype=float) ** -self.zipf_a
            zipf /= zipf.sum()
            ranks = _stream(self.seed, _ORDER_STREAM, level).permuted(np.tile(np.arange(m), (n, 1)), axis=1)
            probs = zipf[ranks]
        probs.flags.writeable = False
        return probs

    def __repr__(self) -> str:
        skew = f", rule_probs='zipf', zipf_a={self.zipf_a:g}" if self.rule_probs == "zipf" else ""
        return (
            f"RHM(v={self.v}, m={self.m}, s={self.s}, L={self.L}, "
            f"n_classes={self.n_classes}, seed={self.seed}{skew})"
        )

    # ------------------------------------------------------------------ shape
    def alphabet_size(self, level: int) -> int:
        """``n_l``: ``n_classes`` at the root, ``v`` below."""
        level = check_int("level", level, minimum=0)
        if level > self.L:
            raise ValueError(f"level must be <= L = {self.L}, got {level}")
        return self.n_classes if level == self.L else self.v

    def n_positions(self, level: int) -> int:
        """The number of level-``level`` positions, ``s**(L - level)``."""
        self.alphabet_size(level)
        return self.s ** (self.L - level)

    def dtype(self, level: int) -> np.dtype:
        """The dtype of level ``level`` in samples."""
        return smallest_uint(self.alphabet_size(level))

    @property
    def string_bytes(self) -> int:
        """Bytes that one string takes in a :class:`Sample`, all its levels included."""
        below_root = (self.s ** (self.L + 1) - 1) // (self.s - 1) - 1
        return below_root * self.dtype(0).itemsize + self.dtype(self.L).itemsize

    @property
    def n_strings(self) -> int:
        """The exact number of distinct token strings, ``n_c * m**((s**L - 1)/(s - 1))``.

        The grammar is unambiguous, so distinct derivations give distinct
        strings: one root choice, and ``m`` choices at each of the
        ``(s**L - 1)/(s - 1)`` internal nodes.
        """
        return self.n_classes * self.m ** ((self.s**self.L - 1) // (self.s - 1))

    # ----------------------------------------------------------- tuple lookup
    def tuple_index(self, level: int, tuples) -> np.ndarray:
        """Which production each s-tuple of level-``(level-1)`` symbols is.

        ``tuples`` has shape ``(..., s)`` with values in ``[0, v)``. Returns an
        int64 array of shape ``(...)`` holding ``a*m + j`` when the tuple is
        ``rules[level][a, j]``, and ``-1`` when it is not grammatical.
        """
        level = check_int("level", level, minimum=1)
        if level > self.L:
            raise ValueError(f"level must be <= L = {self.L}, got {level}")
        tuples = check_int_array("tuples", tuples)
        if tuples.ndim < 1 or tuples.shape[-1] != self.s:
            raise ValueError(f"tuples must have shape (..., s={self.s}), got {tuples.shape}")
        check_range("tuples", tuples, 0, self.v)
        return self._lookup(level, tuples)

    def _lookup(self, level: int, tuples: np.ndarray) -> np.ndarray:
        codes = encode_tuples(tuples, self.v)
        sorted_codes = self._sorted_codes[level]
        where = np.searchsorted(sorted_codes, codes)
        where_clipped = np.minimum(where, sorted_codes.size - 1)
        found = sorted_codes[where_clipped] == codes
        return np.where(found, self._sorted_index[level][where_clipped], -1)

    # --------------------------------------------------------------- sampling
    def train_test(self, P, n_test, seed) -> tuple[Sample, Sample]:
        """The training and test samples of a run with seed ``seed`` (:func:`sample_seeds`).

        ``(sample(P, 2 * seed), sample(n_test, 2 * seed + 1))``: the one recipe
        of every run of the book (a sweep point, :meth:`lpbook.points.Point.data`;
        a saved network; the oracle and perturbation checks), so that runs of
        the same grammar, ``P`` and seed see the same strings.
        """
        P, n_test = check_int("P", P, minimum=1), check_int("n_test", n_test, minimum=1)
        train_seed, test_seed = sample_seeds(check_int("seed", seed, minimum=0))
        return self.sample(P, seed=train_seed), self.sample(n_test, seed=test_seed)

    def sample(self, P, seed) -> Sample:
        """Draw ``P`` i.i.d. strings with all their latent levels.

        Fully vectorised over samples and positions; memory beyond the returned
        arrays is a few blocks of :data:`BLOCK` rows. ``sample(P2, seed)``
        begins with ``sample(P1, seed)`` when ``P1 <= P2``.
        """
        P = check_int("P", P, minimum=1)
        seed = check_int("seed", seed, minimum=0)
        check_memory("P", P, P * self.string_bytes, "a sample of P strings with their latent levels")
        levels = [np.empty((P, self.n_positions(l)), self.dtype(l)) for l in range(self.L + 1)]
        choice_dtype = smallest_uint(self.m)
        for block, lo in enumerate(range(0, P, BLOCK)):
            hi = min(P, lo + BLOCK)
            top = _stream(seed, _SAMPLE_STREAM, block, self.L)
            levels[self.L][lo:hi, 0] = top.integers(0, self.n_classes, size=hi - lo, dtype=self.dtype(self.L))
            for level in range(self.L, 0, -1):
                rng = _stream(seed, _SAMPLE_STREAM, block, level - 1)
                parents = levels[level][lo:hi]
                if self.rule_probs == "uniform":
                    choice = rng.integers(0, self.m, size=parents.shape, dtype=choice_dtype)
                    production = parents.astype(np.intp)
                    production *= self.m
                    production += choice
                else:
                    # the first production whose cumulative entry exceeds a + u
                    production = np.searchsorted(self._cumulative[level], parents + rng.random(parents.shape), side="right")
                    np.minimum(production, (parents.astype(np.intp) + 1) * self.m - 1, out=production)
                out = levels[level - 1][lo:hi].view(self._packed[level].dtype)
                np.take(self._packed[level], production, out=out)
        for arr in levels:
            arr.flags.writeable = False
        return Sample(tuple(levels))

    # ---------------------------------------------------------------- parsing
    def _check_tokens(self, tokens) -> np.ndarray:
        tokens = check_int_array("tokens", tokens, ndim=2)
        if tokens.shape[1] != self.s**self.L:
            raise ValueError(f"tokens must have shape (P, s**L = {self.s**self.L}), got {tokens.shape}")
        check_range("tokens", tokens, 0, self.v)
        return tokens

    def _parse(self, tokens: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Bottom-up parse with sentinel -1 for nodes above an ungrammatical tuple.

        Returns the levels (int64, -1 where undefined) and, for ``l = 1..L``,
        the mask of tuples that are ungrammatical although all their symbols
        are defined (where parsing first fails).
        """
        P = tokens.shape[0]
        levels = [tokens.astype(np.int64)]
        origins = [np.zeros((P, 0), dtype=bool)]
        for level in range(1, self.L + 1):
            children = levels[-1].reshape(P, -1, self.s)
            defined = (children >= 0).all(axis=-1)
            index = self._lookup(level, np.where(children >= 0, children, 0))
            origin = defined & (index < 0)
            levels.append(np.where(defined & (index >= 0), index // self.m, -1))
            origins.append(origin)
        return levels, origins

    def parse(self, tokens) -> Sample:
        """Rebuild every latent level from ``tokens`` with the true rules.

        ``tokens`` is an integer array of shape ``(P, s**L)`` with values in
        ``[0, v)``. Raises :class:`UngrammaticalError` (a ``ValueError``)
        naming the first row, and in it the lowest level and leftmost position,
        where a tuple is not a production; :meth:`is_grammatical` gives a mask
        instead.
        """
        tokens = self._check_tokens(tokens)
        levels, origins = self._parse(tokens)
        bad_rows = np.flatnonzero(levels[-1][:, 0] < 0)
        if bad_rows.size:
            row = int(bad_rows[0])
            level = next(l for l in range(1, self.L + 1) if origins[l][row].any())
            pos = int(np.flatnonzero(origins[level][row])[0])
            symbols = tuple(int(x) for x in levels[level - 1][row, pos * self.s : (pos + 1) * self.s])
            raise UngrammaticalError(
                f"tokens[{row}] is not generated by this grammar: the level-{level - 1} tuple "
                f"{symbols} under level-{level} position {pos} is not a production of any "
                f"level-{level} symbol",
                sample=row,
                level=level,
                position=pos,
            )
        out = [tokens.astype(self.dtype(0))] + [
            lv.astype(self.dtype(l)) for l, lv in enumerate(levels) if l > 0
        ]
        for arr in out:
            arr.flags.writeable = False
        return Sample(tuple(out))

    def is_grammatical(self, tokens) -> np.ndarray:
        """Boolean mask of shape ``(P,)``: which rows of ``tokens`` the grammar generates."""
        tokens = self._check_tokens(tokens)
        levels, _ = self._parse(tokens)
        return levels[-1][:, 0] >= 0

    # ------------------------------------------------------------ enumeration
    def enumerate(self, max_strings: int = 10**6) -> Sample:
        """All ``n_strings`` strings with their latents, for tiny grammars only.

        Rows are ordered lexicographically by (root, productions top-down, left
        to right). Raises ``ValueError`` when ``n_strings > max_strings``.
        """
        max_strings = check_int("max_strings", max_strings, minimum=1)
        if self.n_strings > max_strings:
            raise ValueError(
                f"this grammar generates {self.n_strings} strings, more than "
                f"max_strings={max_strings}; enumerate() is meant for tiny grammars, use sample()"
            )
        levels = {self.L: np.arange(self.n_classes)[:, None]}
        for level in range(self.L, 0, -1):
            parents = levels[level]
            n_rows, width = parents.shape
            choices = np.indices((self.m,) * width).reshape(width, -1).T
            k = choices.shape[0]
            for l in levels:
                levels[l] = np.repeat(levels[l], k, axis=0)
            choice = np.tile(choices, (n_rows, 1))
            levels[level - 1] = self.rules[level][levels[level], choice].reshape(n_rows * k, -1)
        out = tuple(levels[l].astype(self.dtype(l)) for l in range(self.L + 1))
        for arr in out:
            arr.flags.writeable = False
        return Sample(out)
