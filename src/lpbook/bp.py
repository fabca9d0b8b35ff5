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
from .grammar import RHM, UngrammaticalError

#: Target number of float64 entries of the level-0 evidence per chunk of rows.
_CHUNK_ENTRIES = 2**17


@dataclass(frozen=True)
class _Level:
    """Index tables of one level's productions, in the order ``a*m + j``.

    ``gather`` has shape ``(s * n*m,)``: entry ``i*n*m + a*m + j`` is
    ``i*v + rules[a, j, i]``, the column of the children's messages (laid out
    as ``(s*v,)`` per node) that production ``(a, j)`` reads at child ``i``.
    ``scatter`` is the ``(n*m, s*v)`` indicator matrix of the same map.
    ``weights`` holds the production probabilities, shape ``(n*m,)``.
    """

    gather: np.ndarray
    scatter: np.ndarray
    weights: np.ndarray


def _tables(rhm: RHM) -> dict[int, _Level]:
    out = {}
    s, v, m = rhm.s, rhm.v, rhm.m
    for level in range(1, rhm.L + 1):
        rules = rhm.rules[level].reshape(-1, s).astype(np.intp)  # (n*m, s)
        columns = rules + v * np.arange(s)
        scatter = np.zeros((rules.shape[0], s * v))
        scatter[np.arange(rules.shape[0])[:, None], columns] = 1.0
        weights = np.full(rules.shape[0], 1.0 / m)
        out[level] = _Level(np.ascontiguousarray(columns.T).ravel(), scatter, weights)
    return out


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


def _evidence(rhm: RHM, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Level-0 messages, shape ``(N, s**L, v)``: one-hot if visible, ones if hidden."""
    table = np.vstack([np.eye(rhm.v), np.ones((1, rhm.v))])
    return np.take(table, np.where(mask, rhm.v, tokens.astype(np.intp)), axis=0)


def _upward(rhm, tables, beta, keep):
    """Inside messages of one chunk from its level-0 messages ``beta`` (N, s**L, v).

    Returns ``(log_z, betas, productions, zeros, root)``: ``log_z`` (N,) is the
    sum of the logarithms of every normaliser (``-inf`` on rows of probability
    zero); when ``keep``, ``betas[l]`` (N, n_pos, n_l) and ``productions[l]``
    (N, n_pos, n_l*m) are the normalised messages and production terms ``G``
    of every level ``l >= 1``, and ``zeros[l]`` (N, n_pos) marks the nodes whose
    message vanished (empty dicts otherwise); ``root`` (N, 1, n_classes) is the
    root's normalised message.
    """
    N = beta.shape[0]
    log_z = np.zeros(N)
    betas, productions, zeros = {}, {}, {}
    for level in range(1, rhm.L + 1):
        t = tables[level]
        n = rhm.alphabet_size(level)
        n_pos = rhm.n_positions(level)
        children = beta.reshape(N, n_pos, rhm.s * rhm.v)
        picked = np.take(children, t.gather, axis=2).reshape(N, n_pos, rhm.s, -1)
        G = picked[:, :, 0] * t.weights
        for i in range(1, rhm.s):
            G *= picked[:, :, i]
        beta = G.reshape(N, n_pos, n, rhm.m).sum(axis=3)
        z = beta.sum(axis=2)
        dead = z <= 0
        if dead.any():
            z = np.where(dead, 1.0, z)
        log_z += np.log(z).sum(axis=1)
        beta /= z[:, :, None]
        if keep:
            G /= z[:, :, None]
            betas[level], productions[level], zeros[level] = beta, G, dead
        if dead.any():
            log_z[dead.any(axis=1)] = -np.inf
    return log_z, betas, productions, zeros, beta


def _root_prior(rhm: RHM) -> np.ndarray:
    return np.full(rhm.n_classes, 1.0 / rhm.n_classes)


def _raise_ungrammatical(rhm: RHM, zeros: dict[int, np.ndarray], row_offset: int):
    """Raise for the first row with a vanished message, at its lowest such node."""
    bad = np.any([zeros[level].any(axis=1) for level in range(1, rhm.L + 1)], axis=0)
    row = int(np.flatnonzero(bad)[0])
    level = next(l for l in range(1, rhm.L + 1) if zeros[l][row].any())
    pos = int(np.flatnonzero(zeros[level][row])[0])
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
        rows summing to 1), ``n_0 = v`` and ``n_L = n_classes``. Level 0 holds
        the predictive distribution at hidden positions and the one-hot of the
        token at visible ones.

    Raises :class:`lpbook.UngrammaticalError` when the visible tokens of a
    row have probability zero.
    """
    tokens, mask = _check(rhm, tokens, mask)
    P = tokens.shape[0]
    tables = _tables(rhm)
    out = {l: np.empty((P, rhm.n_positions(l), rhm.alphabet_size(l))) for l in range(rhm.L + 1)}
    prior = _root_prior(rhm)
    for lo, hi in _chunks(rhm, P):
        N = hi - lo
        _, betas, productions, zeros, beta_root = _upward(rhm, tables, _evidence(rhm, tokens[lo:hi], mask[lo:hi]), True)
        if any(z.any() for z in zeros.values()):
            _raise_ungrammatical(rhm, zeros, lo)
        post = prior * beta_root
        post /= post.sum(axis=2, keepdims=True)
        out[rhm.L][lo:hi] = post
        for level in range(rhm.L, 0, -1):
            beta = betas[level]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(beta > 0, post / beta, 0.0)
            Q = productions[level].reshape(N, -1, beta.shape[2], rhm.m) * ratio[:, :, :, None]
            child = Q.reshape(-1, Q.shape[2] * rhm.m) @ tables[level].scatter
            post = child.reshape(N, -1, rhm.v)
            post /= post.sum(axis=2, keepdims=True)
            out[level - 1][lo:hi] = post
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
        log_z, _, _, _, beta_root = _upward(rhm, tables, _evidence(rhm, tokens[lo:hi], mask[lo:hi]), False)
        with np.errstate(divide="ignore"):
            out[lo:hi] = log_z + np.log(beta_root[:, 0] @ prior)
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
