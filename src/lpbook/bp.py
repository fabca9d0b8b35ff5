"""Exact inference on the RHM tree by belief propagation.

The RHM is a tree-shaped graphical model with known rules, so the posterior of
every node's symbol given any subset of visible tokens is computed exactly by
two sweeps of messages (Sclocchi, Favero & Wyart, arXiv:2402.16991, use the
same algorithm on the RHM):

- **upward** (inside): ``beta_l[p, a] = P(visible tokens below node (l, p) | X = a)``.
  A visible token's message is the one-hot of its value, a hidden token's is
  all ones. A node's message sums, over its productions ``(a, j)``, the
  production weight times the product of its children's messages at the
  production's symbols: ``G[a, j] = w[a, j] * prod_i beta_child_i[rules[a, j, i]]``
  and ``beta[a] = sum_j G[a, j]``.
- **downward**: the root's posterior is ``prior * beta_L`` normalised. Given a
  node's symbol ``a``, its production is independent of everything outside its
  subtree, so ``P(production j | a, visible) = G[a, j] / beta[a]``; the
  posterior of the node's productions is ``post[a] * G[a, j] / beta[a]``, and a
  child's posterior sums it over the productions that put each symbol at that
  child.

Every message is normalised to sum 1 at every node and the logarithms of the
normalisers are accumulated, so deep trees (``L = 10``) neither underflow nor
overflow. The work is vectorised over samples and positions and done in chunks
of rows, so that memory beyond the returned arrays stays small.

Conventions (the book's, ours):

- ``mask`` is a boolean array of the tokens' shape, ``True`` = hidden. The
  values of hidden tokens are ignored (any integer, e.g. ``-1``, may stand
  there); visible tokens must lie in ``[0, v)``.
- **Ungrammatical visible tokens.** When the visible tokens of a row have
  probability zero under the grammar, :func:`log_likelihood` returns ``-inf``
  for that row, and every function that needs a posterior raises
  :class:`lpbook.UngrammaticalError` naming the first such row and the lowest
  node where no symbol is consistent with the visible tokens below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_int_array, check_range
from .grammar import RHM, UngrammaticalError, encode_tuples

#: Target number of level-0 posterior entries (``s**L * v`` per row) per chunk of rows.
_CHUNK_ENTRIES = 2**19

#: Largest ``(v + 1)**s`` for which child tuples are mapped to productions by a dense table
#: (beyond it, by binary search in the grammar's sorted tuple codes).
_DENSE_LOOKUP = 2**22


@dataclass(frozen=True)
class _Level:
    """Tables of one level's ``n*m`` productions, in the order ``a*m + j``.

    - ``gather`` (s*n*m,): entry ``i*n*m + a*m + j`` is ``i*v + rules[a, j, i]``,
      the column of the children's messages (laid out ``(s*v,)`` per node)
      that production ``(a, j)`` reads at child ``i``;
    - ``scatter`` (n*m, s*v): the indicator matrix of the same map;
    - ``summer`` (n*m, n): sums a node's production terms into its symbols;
    - ``weights`` (n*m,): the production probabilities;
    - ``log_weights`` (n*m + 1,): their logarithms, then a 0 read by index ``-1``;
    - ``symbol`` (n*m + 1,): the parent symbol ``a`` of each production, then ``-1``;
    - ``lookup`` ((v+1)**s,) or None: the production of each child tuple coded
      in base ``v + 1`` (digit ``v`` = unknown child), ``-1`` when the tuple has
      an unknown child or is not a production.
    """

    gather: np.ndarray
    scatter: np.ndarray
    summer: np.ndarray
    weights: np.ndarray
    log_weights: np.ndarray
    symbol: np.ndarray
    lookup: np.ndarray | None


def _tables(rhm: RHM) -> dict[int, _Level]:
    out = {}
    s, v, m = rhm.s, rhm.v, rhm.m
    for level in range(1, rhm.L + 1):
        n = rhm.alphabet_size(level)
        rules = rhm.rules[level].reshape(n * m, s).astype(np.intp)
        columns = rules + v * np.arange(s)
        scatter = np.zeros((n * m, s * v))
        scatter[np.arange(n * m)[:, None], columns] = 1.0
        weights = np.full(n * m, 1.0 / m)
        lookup = None
        if (v + 1) ** s <= _DENSE_LOOKUP:
            lookup = np.full((v + 1) ** s, -1, dtype=np.intp)
            lookup[encode_tuples(rules, v + 1)] = np.arange(n * m)
        out[level] = _Level(
            gather=np.ascontiguousarray(columns.T).ravel(),
            scatter=scatter,
            summer=np.repeat(np.eye(n), m, axis=0),
            weights=weights,
            log_weights=np.append(np.log(weights), 0.0),
            symbol=np.append(np.repeat(np.arange(n), m), -1),
            lookup=lookup,
        )
    return out


def _onehot(n: int) -> np.ndarray:
    """Rows of the identity of size ``n``, then a row of zeros read by index ``-1``."""
    return np.vstack([np.eye(n), np.zeros((1, n))])


def _check(rhm: RHM, tokens, mask) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``tokens`` and ``mask``; return them with ``mask`` as a bool array."""
    if not isinstance(rhm, RHM):
        raise TypeError(f"rhm must be an RHM, got {type(rhm).__name__}")
    tokens = check_int_array("tokens", tokens, ndim=2)
    if tokens.shape[1] != rhm.s**rhm.L:
        raise ValueError(f"tokens must have shape (P, s**L = {rhm.s**rhm.L}), got {tokens.shape}")
    if mask is None:
        mask = np.zeros(tokens.shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"mask must be a boolean array (True = hidden), got dtype {mask.dtype}")
        if mask.shape != tokens.shape:
            raise ValueError(f"mask must have the shape of tokens {tokens.shape}, got {mask.shape}")
    check_range("tokens (visible)", tokens[~mask], 0, rhm.v)
    return tokens, mask


@dataclass
class _Uncertain:
    """The nodes of one level whose subtree holds a hidden token (or a contradiction).

    ``index`` (k,) are their flat indices ``row * n_pos + pos`` in the chunk;
    ``beta`` (k, n) their normalised upward messages; ``terms`` (k, n*m) their
    production terms ``G`` divided by the same normalisers (kept only for the
    downward pass).
    """

    index: np.ndarray
    beta: np.ndarray
    terms: np.ndarray | None


@dataclass
class _Upward:
    """The upward pass of one chunk.

    ``known[l]`` (N, n_pos) holds the symbol of every node whose subtree is
    fully visible (it is then determined by the parse) and ``-1`` elsewhere;
    ``uncertain[l]`` the other nodes' messages; ``log_z`` (N,) the sum of
    the logarithms of all normalisers, ``-inf`` on rows of probability zero;
    ``dead[l]`` the flat indices of nodes whose message vanished.
    """

    known: dict[int, np.ndarray]
    uncertain: dict[int, _Uncertain]
    log_z: np.ndarray
    dead: dict[int, np.ndarray]


def _productions(rhm: RHM, level: int, table: _Level, children: np.ndarray) -> np.ndarray:
    """The production index of each row of ``children`` (k, s) (``-1`` = unknown), or ``-1``."""
    if table.lookup is not None:
        return table.lookup[encode_tuples(np.where(children < 0, rhm.v, children), rhm.v + 1)]
    index = rhm._lookup(level, np.maximum(children, 0))
    return np.where((children >= 0).all(axis=1), index, -1)


def _upward(rhm: RHM, tables: dict[int, _Level], symbols: np.ndarray, keep: bool) -> _Upward:
    """Upward messages of one chunk; ``symbols`` (N, s**L) holds the tokens, ``-1`` where hidden.

    A node whose subtree is fully visible and grammatical has a one-hot
    message on its parsed symbol, with normaliser the weight of its production;
    only the other nodes are computed from their children's messages.
    """
    N = symbols.shape[0]
    s, v = rhm.s, rhm.v
    up = _Upward({0: symbols}, {}, np.zeros(N), {})
    evidence = np.vstack([np.eye(v), np.ones((1, v))])  # row -1: a hidden token
    below = None  # dense normalised messages of the level below, (N * n_pos, n)
    for level in range(1, rhm.L + 1):
        t = tables[level]
        n, n_pos = rhm.alphabet_size(level), rhm.n_positions(level)
        children = up.known[level - 1].reshape(N * n_pos, s)
        production = _productions(rhm, level, t, children)
        up.known[level] = t.symbol[production].reshape(N, n_pos)
        up.log_z += t.log_weights[production].reshape(N, n_pos).sum(axis=1)
        index = np.flatnonzero(production < 0)
        if level == 1:
            rows = np.take(evidence, children[index], axis=0).reshape(index.size, s * v)
        else:
            rows = below.reshape(N * n_pos, s * v)[index]
        picked = np.take(rows, t.gather, axis=1)
        width = t.weights.size
        terms = picked[:, :width] * t.weights
        for i in range(1, s):
            terms *= picked[:, i * width : (i + 1) * width]
        beta = terms @ t.summer
        z = beta.sum(axis=1)
        dead = z <= 0
        if dead.any():
            up.dead[level] = index[dead]
            up.log_z[index[dead] // n_pos] = -np.inf
            z[dead] = 1.0
        up.log_z += np.bincount(index // n_pos, weights=np.log(z), minlength=N)
        beta /= z[:, None]
        if keep:
            terms /= z[:, None]
        up.uncertain[level] = _Uncertain(index, beta, terms if keep else None)
        if level < rhm.L:
            below = np.take(_onehot(n), up.known[level].ravel(), axis=0)
            below[index] = beta
    return up


def _root_prior(rhm: RHM) -> np.ndarray:
    return np.full(rhm.n_classes, 1.0 / rhm.n_classes)


def _raise_ungrammatical(rhm: RHM, up: _Upward, row_offset: int):
    """Raise for the first row with a vanished message, at its lowest such node."""
    found = [(int(idx // rhm.n_positions(l)), l, int(idx % rhm.n_positions(l)))
             for l, dead in up.dead.items() for idx in dead]
    row, level, pos = min(found)
    raise UngrammaticalError(
        f"the visible tokens of row {row + row_offset} are not generated by this grammar: no symbol of "
        f"the level-{level} node at position {pos} is consistent with the visible tokens below it",
        sample=row + row_offset,
        level=level,
        position=pos,
    )


def _chunks(rhm: RHM, P: int):
    rows = max(1, _CHUNK_ENTRIES // (rhm.s**rhm.L * rhm.v))
    return [(lo, min(P, lo + rows)) for lo in range(0, P, rows)]


def _symbols(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, -1, tokens.astype(np.intp))


def posteriors(rhm: RHM, tokens, mask=None) -> dict[int, np.ndarray]:
    """Posterior of every node's symbol given the visible tokens.

    Parameters
    ----------
    rhm : RHM
    tokens : int array, shape ``(P, s**L)``
        Values of visible tokens in ``[0, v)``; hidden ones are ignored.
    mask : bool array of the tokens' shape, optional
        ``True`` = hidden (default: nothing hidden).

    Returns
    -------
    dict[int, numpy.ndarray]
        ``{l: array of shape (P, s**(L-l), n_l)}`` for ``l = 0..L`` (float64,
        rows summing to 1 up to rounding), ``n_0 = v`` and ``n_L = n_classes``.
        Level 0 holds the predictive distribution at hidden positions and the
        exact one-hot of the token at visible ones.

    Raises :class:`lpbook.UngrammaticalError` when the visible tokens of a
    row have probability zero.
    """
    tokens, mask = _check(rhm, tokens, mask)
    P = tokens.shape[0]
    tables = _tables(rhm)
    out = {l: np.empty((P, rhm.n_positions(l), rhm.alphabet_size(l))) for l in range(rhm.L + 1)}
    onehot = {l: _onehot(rhm.alphabet_size(l)) for l in range(rhm.L + 1)}
    prior = _root_prior(rhm)
    for lo, hi in _chunks(rhm, P):
        N = hi - lo
        up = _upward(rhm, tables, _symbols(tokens[lo:hi], mask[lo:hi]), True)
        if up.dead:
            _raise_ungrammatical(rhm, up, lo)
        top = out[rhm.L][lo:hi]
        np.take(onehot[rhm.L], up.known[rhm.L], axis=0, out=top)
        root = up.uncertain[rhm.L]
        post = prior * root.beta
        top.reshape(N, -1)[root.index] = post / post.sum(axis=1, keepdims=True)
        for level in range(rhm.L, 0, -1):
            node = up.uncertain[level]
            n = rhm.alphabet_size(level)
            post = out[level][lo:hi].reshape(N * rhm.n_positions(level), n)[node.index]
            ratio = np.divide(post, node.beta, out=np.zeros_like(post), where=node.beta > 0)
            k = node.index.size
            Q = (node.terms.reshape(k, n, rhm.m) * ratio[:, :, None]).reshape(k, n * rhm.m)
            child = Q @ tables[level].scatter
            if level == 1:  # exact one-hots at visible tokens: x / x == 1
                child = child.reshape(k, rhm.s, rhm.v)
                child /= child.sum(axis=2, keepdims=True)
            below = out[level - 1][lo:hi]
            np.take(onehot[level - 1], up.known[level - 1], axis=0, out=below)
            below.reshape(N * rhm.n_positions(level), rhm.s * rhm.v)[node.index] = child.reshape(k, rhm.s * rhm.v)
    return out


def log_likelihood(rhm: RHM, tokens, mask=None) -> np.ndarray:
    """``log P(visible tokens)`` of every row, shape ``(P,)`` (natural log).

    With nothing hidden it is the log-probability of the whole string; rows
    the grammar cannot produce get ``-inf``.
    """
    tokens, mask = _check(rhm, tokens, mask)
    P = tokens.shape[0]
    tables = _tables(rhm)
    out = np.empty(P)
    prior = _root_prior(rhm)
    for lo, hi in _chunks(rhm, P):
        up = _upward(rhm, tables, _symbols(tokens[lo:hi], mask[lo:hi]), False)
        root_beta = np.take(_onehot(rhm.n_classes), up.known[rhm.L][:, 0], axis=0)
        root_beta[up.uncertain[rhm.L].index] = up.uncertain[rhm.L].beta
        with np.errstate(divide="ignore"):
            out[lo:hi] = up.log_z + np.log(root_beta @ prior)
    return out


def masked_token_nll(rhm: RHM, tokens, mask) -> np.ndarray:
    """``-log p(tokens[r, i] | visible tokens of row r)`` at hidden positions, NaN at visible ones.

    ``tokens`` (P, s**L) must hold the true values at hidden positions too;
    ``mask`` (same shape, ``True`` = hidden) is required. Returns float64 of
    shape ``(P, s**L)``; a true value of posterior probability zero gives ``inf``.
    """
    if mask is None:
        raise TypeError("mask is required: a boolean array of the tokens' shape, True = hidden")
    tokens, mask = _check(rhm, tokens, mask)
    check_range("tokens (hidden)", tokens[mask], 0, rhm.v)
    post = posteriors(rhm, tokens, mask)[0]
    p_true = np.take_along_axis(post, np.clip(tokens, 0, rhm.v - 1)[:, :, None].astype(np.intp), axis=2)[:, :, 0]
    with np.errstate(divide="ignore"):
        return np.where(mask, -np.log(p_true), np.nan)


def bayes_masked_token_loss(rhm: RHM, tokens, mask) -> float:
    """The Bayes-optimal masked-token cross-entropy, in nats per hidden token.

    The mean of :func:`masked_token_nll` over all hidden positions of all rows
    (rows with more hidden tokens weigh more): the floor that a network's test
    loss on the same tokens and mask is compared against. Any mask works;
    it must hide at least one token.
    """
    nll = masked_token_nll(rhm, tokens, mask)
    hidden = ~np.isnan(nll)
    if not hidden.any():
        raise ValueError("mask must hide at least one token")
    return float(nll[hidden].mean())


def bayes_root_accuracy(rhm: RHM, tokens, mask=None, labels=None) -> float:
    """Accuracy of the Bayes-optimal root classifier given the visible tokens.

    The classifier answers the root symbol of largest posterior probability.
    The true roots are ``labels`` (int array ``(P,)``) when given, and
    otherwise come from parsing ``tokens`` with the grammar (the full strings,
    hidden values included, must then be grammatical). Ties (posteriors equal
    to within a relative ``1e-9``) are broken uniformly at random in
    expectation: a row whose true root is among ``k`` tied maxima scores
    ``1/k``, so the result is exact, not a random draw.
    """
    tokens, mask = _check(rhm, tokens, mask)
    if labels is None:
        labels = rhm.parse(tokens).labels
    else:
        labels = check_int_array("labels", labels, ndim=1)
        if labels.shape[0] != tokens.shape[0]:
            raise ValueError(f"labels must have shape (P = {tokens.shape[0]},), got {labels.shape}")
        check_range("labels", labels, 0, rhm.n_classes)
    root = posteriors(rhm, tokens, mask)[rhm.L][:, 0]
    best = root >= root.max(axis=1, keepdims=True) * (1 - 1e-9)
    credit = best[np.arange(root.shape[0]), labels.astype(np.intp)] / best.sum(axis=1)
    return float(credit.mean())
