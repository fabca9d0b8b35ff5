"""Exact inference on the RHM tree by belief propagation.

The RHM is a tree-shaped graphical model with known rules, so the posterior of
every node's symbol given any subset of visible tokens is computed exactly by
two sweeps of messages (Sclocchi, Favero & Wyart, arXiv:2402.16991, use
belief propagation on the RHM too):

- **upward** (inside): ``beta_l[p, a] = P(visible tokens below node (l, p) | X = a)``.
  A visible token's message is the one-hot of its value, a hidden token's is
  all ones. A node's message sums, over its productions ``(a, j)``, the
  production weight times the product of its children's messages at the
  production's symbols: ``G[a, j] = w[a, j] * prod_i beta_child_i[rules[a, j, i]]``
  and ``beta[a] = sum_j G[a, j]``, with ``w = rhm.production_probs[l]``
  (``1/m`` for the paper's uniform rules; skewed for ``rule_probs="zipf"``).
- **downward**: the root's posterior is ``prior * beta_L`` normalised. Given a
  node's symbol ``a``, its production is independent of everything outside its
  subtree, so ``P(production j | a, visible) = G[a, j] / beta[a]``; the
  posterior of the node's productions is ``post[a] * G[a, j] / beta[a]``, and a
  child's posterior sums it over the productions that put each symbol at that
  child.

Every upward message is normalised to sum 1 at every node and the logarithms
of the normalisers are accumulated, so deep trees (``L = 10``) neither
underflow nor overflow. A node whose subtree is fully visible is determined by
parsing: its message is one-hot and its posterior too, so messages are
computed only for the nodes above a hidden token (and level 1 is read from a
table of every tuple of visible or hidden tokens). The work is vectorised over
samples and positions and done in chunks of rows, so that memory beyond the
returned arrays stays small; ``benchmarks/bench_bp.py`` measures it.

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

import dataclasses
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ._progress import progress_bar
from ._validate import check_bool, check_int, check_int_array, check_range
from .exact import marginals
from .grammar import RHM, UngrammaticalError, encode_tuples

#: The book's criterion for a trained network: it is called converged when its masked-token test
#: loss exceeds :func:`bayes_masked_token_loss` on the same strings and masks by at most this many
#: nats per hidden token (at the largest training set of its chapter).
CONVERGED_EXCESS = 0.05

#: Target number of level-0 posterior entries (``s**L * v`` per row) per chunk of rows.
_CHUNK_ENTRIES = 2**18

#: The smallest positive double: the floor put under messages before dividing by them.
_SMALLEST = np.finfo(np.float64).smallest_subnormal

#: Largest ``(v + 1)**s`` for which child tuples are mapped to productions by a dense table
#: (beyond it, by binary search in the grammar's sorted tuple codes).
_DENSE_LOOKUP = 2**22


@dataclass(frozen=True)
class _Level:
    """Tables of one level's ``n*m`` productions.

    The message-passing tables order the productions ``j*n + a`` (``j``-major:
    broadcasting a per-symbol factor then runs over contiguous blocks of ``n``):

    - ``gather`` (s*n*m,): entry ``i*n*m + j*n + a`` is ``i*v + rules[a, j, i]``,
      the column of the children's messages (laid out ``(s*v,)`` per node)
      that production ``(a, j)`` reads at child ``i``;
    - ``summer`` (n*m, n): row ``j*n + a`` holds the production weight
      ``w[a, j]`` in column ``a``: it turns the products of the children's
      messages into the node's message;
    - ``scatter`` (n*m, s*v): row ``j*n + a`` holds ``w[a, j]`` in the columns
      ``i*v + rules[a, j, i]``: it turns production posteriors (divided by the
      weights) into the children's posteriors.

    The parse tables order them ``a*m + j`` like :meth:`RHM.tuple_index`:

    - ``log_weights`` (n*m + 1,): ``log w[a, j]``, then a 0 read by index ``-1``;
    - ``symbol`` (n*m + 1,): the parent symbol ``a``, then ``-1``;
    - ``lookup`` ((v+1)**s,) or None: the production of each child tuple coded
      in base ``v + 1`` (digit ``v`` = unknown child), ``-1`` when the tuple has
      an unknown child or is not a production.

    Level 1 only, when small enough: ``by_code``, the output of
    :func:`_combine` for every tuple of visible or hidden tokens, indexed by its
    code, so that level 1 is read from tables instead of computed.
    """

    gather: np.ndarray
    summer: np.ndarray
    scatter: np.ndarray
    log_weights: np.ndarray
    symbol: np.ndarray
    lookup: np.ndarray | None
    by_code: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _tables(rhm: RHM) -> dict[int, _Level]:
    out = {}
    s, v, m = rhm.s, rhm.v, rhm.m
    for level in range(1, rhm.L + 1):
        n = rhm.alphabet_size(level)
        weights = rhm.production_probs[level]
        by_j = rhm.rules[level].transpose(1, 0, 2).reshape(m * n, s).astype(np.intp)  # row j*n + a
        w_by_j = weights.T.ravel()
        columns = by_j + v * np.arange(s)
        summer = np.zeros((m * n, n))
        summer[np.arange(m * n), np.tile(np.arange(n), m)] = w_by_j
        scatter = np.zeros((m * n, s * v))
        scatter[np.arange(m * n)[:, None], columns] = w_by_j[:, None]
        lookup = None
        if (v + 1) ** s <= _DENSE_LOOKUP:
            lookup = np.full((v + 1) ** s, -1, dtype=np.intp)
            lookup[encode_tuples(rhm.rules[level].reshape(n * m, s), v + 1)] = np.arange(n * m)
        out[level] = _Level(
            gather=np.ascontiguousarray(columns.T).ravel(),
            summer=summer,
            scatter=scatter,
            log_weights=np.append(np.log(weights).ravel(), 0.0),
            symbol=np.append(np.repeat(np.arange(n), m), -1),
            lookup=lookup,
        )
    first = out[1]
    if first.lookup is not None and (v + 1) ** s * first.summer.shape[0] <= _DENSE_LOOKUP:
        digits = np.indices((v + 1,) * s).reshape(s, -1).T  # row r has code r in base v + 1
        rows = np.take(_evidence(v), np.where(digits == v, -1, digits), axis=0).reshape(-1, s * v)
        out[1] = dataclasses.replace(first, by_code=_combine(first, rows, s))
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
    if tokens.shape[0] == 0:
        raise ValueError(f"tokens must hold at least one string, got shape {tokens.shape}")
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
    ``beta`` (k, n) their upward messages, computed from the children's
    normalised messages (so up to a factor per node); ``terms`` (k, n*m), kept
    only for the downward pass, the products of the children's normalised
    messages at each production ``j*n + a`` (the production's term without
    its weight).
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
    ``dead[l]`` the flat indices of nodes whose message vanished; ``root``
    the normalised messages of the uncertain roots, in the order of
    ``uncertain[L].index``.
    """

    known: dict[int, np.ndarray]
    uncertain: dict[int, _Uncertain]
    log_z: np.ndarray
    dead: dict[int, np.ndarray]
    root: np.ndarray | None = None


def _evidence(v: int) -> np.ndarray:
    """Level-0 messages by token value: the identity, then a row of ones read by index ``-1`` (hidden)."""
    return np.vstack([np.eye(v), np.ones((1, v))])


def _tuple_codes(rhm: RHM, children: np.ndarray) -> np.ndarray:
    """Codes in base ``v + 1`` of child tuples (k, s), digit ``v`` for an unknown child (``-1``)."""
    return encode_tuples(np.where(children < 0, rhm.v, children), rhm.v + 1)


def _combine(t: _Level, rows: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One upward step for ``k`` nodes from their children's messages ``rows`` (k, s*v).

    Returns the production terms (k, n*m) (products of the children's
    messages, without the weights), the node messages (k, n) and their sums (k,).
    """
    columns = t.gather.reshape(s, -1)  # one gather per child: faster than one gather of all children, then slices
    terms = np.take(rows, columns[0], axis=1) * np.take(rows, columns[1], axis=1)
    for i in range(2, s):
        terms *= np.take(rows, columns[i], axis=1)
    beta = terms @ t.summer
    return terms, beta, beta.sum(axis=1)


def _productions(rhm: RHM, level: int, table: _Level, children: np.ndarray) -> np.ndarray:
    """The production index of each row of ``children`` (k, s) (``-1`` = unknown), or ``-1``."""
    if table.lookup is not None:
        return table.lookup[_tuple_codes(rhm, children)]
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
    sizes = {l: (rhm.n_positions(l), rhm.alphabet_size(l)) for l in range(rhm.L + 1)}
    # The messages of the level below: node i's is row slot[i] of stack.
    stack, slot = _evidence(v), symbols.ravel()  # tokens: one-hot, or ones when hidden (-1)
    for level in range(1, rhm.L + 1):
        t = tables[level]
        n_pos, n = sizes[level]
        children = up.known[level - 1].reshape(N * n_pos, s)
        production = _productions(rhm, level, t, children)
        up.known[level] = t.symbol[production].reshape(N, n_pos)
        up.log_z += t.log_weights[production].reshape(N, n_pos).sum(axis=1)
        index = np.flatnonzero(production < 0)
        if level == 1 and t.by_code is not None:
            code = _tuple_codes(rhm, children[index])
            terms, beta, z = (np.take(table, code, axis=0) for table in t.by_code)
        else:
            rows = np.take(stack, slot.reshape(N * n_pos, s)[index], axis=0).reshape(index.size, s * v)
            terms, beta, z = _combine(t, rows, s)
        dead = z <= 0
        if dead.any():
            up.dead[level] = index[dead]
            up.log_z[index[dead] // n_pos] = -np.inf
            z[dead] = 1.0
        up.log_z += np.bincount(index // n_pos, weights=np.log(z), minlength=N)
        up.uncertain[level] = _Uncertain(index, beta, terms if keep else None)
        if level < rhm.L:  # known nodes: a one-hot row; the others: their normalised message
            stack = np.empty((n + index.size, n))
            stack[:n] = np.eye(n)
            np.divide(beta, z[:, None], out=stack[n:])
            slot = up.known[level].ravel().copy()
            slot[index] = n + np.arange(index.size)
        else:
            up.root = beta / z[:, None]
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


def _chunks(rhm: RHM, P: int, progress: bool = False, desc: str = ""):
    """The ``(lo, hi)`` row ranges of the chunks of ``P`` rows, with a bar over rows labelled ``desc`` when ``progress``."""
    rows = max(1, _CHUNK_ENTRIES // (rhm.s**rhm.L * rhm.v))
    with progress_bar(P, desc, progress, unit="string") as bar:
        for lo in range(0, P, rows):
            yield lo, min(P, lo + rows)
            bar.update(min(P, lo + rows) - lo)


def _symbols(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, -1, tokens.astype(np.intp))


def posteriors(rhm: RHM, tokens, mask=None, *, dtype=np.float64, progress=False) -> dict[int, np.ndarray]:
    """Posterior of every node's symbol given the visible tokens.

    Parameters
    ----------
    rhm : RHM
    tokens : int array, shape ``(P, s**L)``
        Values of visible tokens in ``[0, v)``; hidden ones are ignored.
    mask : bool array of the tokens' shape, optional
        ``True`` = hidden (default: nothing hidden).
    dtype : numpy.float64 (default) or numpy.float32
        The returned arrays' type. Messages are computed in float64 either
        way; float32 rounds each stored posterior, and the downward pass reads
        the rounded parent posteriors back, so a level-``l`` posterior carries
        a relative error of at most about ``(L + 1 - l) * 2**-24`` (one
        rounding per level from the root down). It halves the memory and the
        time spent writing the output, which dominates at large ``P``.
    progress : bool
        Show a tqdm bar over the strings (default False; ``P = 10**5`` strings at
        ``L = 6`` take about ten seconds).

    Returns
    -------
    dict[int, numpy.ndarray]
        ``{l: array of shape (P, s**(L-l), n_l)}`` for ``l = 0..L`` (of
        ``dtype``, rows summing to 1 up to rounding), ``n_0 = v`` and ``n_L = n_classes``.
        Level 0 holds the predictive distribution at hidden positions and the
        exact one-hot of the token at visible ones.

    Raises :class:`lpbook.UngrammaticalError` when the visible tokens of a
    row have probability zero.
    """
    tokens, mask = _check(rhm, tokens, mask)
    progress = check_bool("progress", progress)
    return _posteriors(rhm, tokens, mask, dtype, _root_prior(rhm), progress)


def _posteriors(rhm: RHM, tokens: np.ndarray, mask: np.ndarray, dtype, prior: np.ndarray,
                progress: bool = False) -> dict[int, np.ndarray]:
    """:func:`posteriors` on checked inputs, the root of row ``r`` drawn from ``prior[r]`` (``prior`` (P, n_classes) or (n_classes,))."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype!r}") from error
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}")
    P = tokens.shape[0]
    tables = _tables(rhm)
    sizes = {l: (rhm.n_positions(l), rhm.alphabet_size(l)) for l in range(rhm.L + 1)}
    # Zero-filled in one sequential pass: faulting the pages in while writing
    # chunk by chunk measured several times slower (system time).
    out = {l: np.empty((P, *sizes[l]), dtype=dtype) for l in range(rhm.L + 1)}
    for array in out.values():
        array.fill(0.0)
    prior = np.broadcast_to(prior, (P, rhm.n_classes))
    for lo, hi in _chunks(rhm, P, progress, "bp.posteriors"):
        N = hi - lo
        up = _upward(rhm, tables, _symbols(tokens[lo:hi], mask[lo:hi]), True)
        if up.dead:
            _raise_ungrammatical(rhm, up, lo)
        top = out[rhm.L][lo:hi]
        _set_known(top, up.known[rhm.L])
        post = prior[lo:hi][up.uncertain[rhm.L].index] * up.root
        top.reshape(N, -1)[up.uncertain[rhm.L].index] = post / post.sum(axis=1, keepdims=True)
        for level in range(rhm.L, 0, -1):
            node = up.uncertain[level]
            (n_pos, n), k = sizes[level], node.index.size
            # P(production | visible) / w = post[a] * terms / beta[a]; where beta = 0, post = 0 too, and
            # 0 / (the smallest positive double) = 0 (cheaper than a masked division; positive betas are unchanged)
            ratio = out[level][lo:hi].reshape(N * n_pos, n)[node.index].astype(np.float64, copy=False)
            ratio /= np.maximum(node.beta, _SMALLEST, out=node.beta)
            Q = node.terms.reshape(k, rhm.m, n)
            Q *= ratio[:, None, :]
            child = Q.reshape(k, rhm.m * n) @ tables[level].scatter
            if level == 1:  # exact one-hots at visible tokens: x / x == 1
                child = child.reshape(k, rhm.s, rhm.v)
                child /= child.sum(axis=2, keepdims=True)
            below = out[level - 1][lo:hi]
            _set_known(below, up.known[level - 1])
            below.reshape(N * n_pos, rhm.s * rhm.v)[node.index] = child.reshape(k, rhm.s * rhm.v)
    return out


def _set_known(posterior: np.ndarray, known: np.ndarray) -> None:
    """Put a 1 at each known symbol of a zero-filled ``posterior`` (N, n_pos, n); ``known`` (N, n_pos), ``-1`` = unknown."""
    flat = known.ravel()
    index = np.flatnonzero(flat >= 0)
    posterior.reshape(-1)[index * posterior.shape[2] + flat[index]] = 1.0


def _upward_roots(rhm: RHM, tokens: np.ndarray, mask: np.ndarray, *, strict: bool, progress: bool, desc: str):
    """The upward pass alone: ``(log_z (P,), root message (P, n_classes))``.

    ``log_z`` sums the logarithms of every normaliser of a row, and the root
    message is normalised. With ``strict``, a row of probability zero raises
    :class:`lpbook.UngrammaticalError`; otherwise its ``log_z`` is ``-inf``.
    ``progress`` shows a bar over the rows labelled ``desc``.
    """
    P = tokens.shape[0]
    tables = _tables(rhm)
    log_z, roots = np.empty(P), np.empty((P, rhm.n_classes))
    for lo, hi in _chunks(rhm, P, check_bool("progress", progress), desc):
        up = _upward(rhm, tables, _symbols(tokens[lo:hi], mask[lo:hi]), False)
        if strict and up.dead:
            _raise_ungrammatical(rhm, up, lo)
        root = np.take(_onehot(rhm.n_classes), up.known[rhm.L][:, 0], axis=0)
        root[up.uncertain[rhm.L].index] = up.root
        log_z[lo:hi], roots[lo:hi] = up.log_z, root
    return log_z, roots


def log_likelihood(rhm: RHM, tokens, mask=None, *, progress=False) -> np.ndarray:
    """``log P(visible tokens)`` of every row, shape ``(P,)`` (natural log).

    With nothing hidden it is the log-probability of the whole string; rows
    the grammar cannot produce get ``-inf``. ``progress`` shows a bar over the strings.
    """
    tokens, mask = _check(rhm, tokens, mask)
    log_z, roots = _upward_roots(rhm, tokens, mask, strict=False, progress=progress, desc="bp.log_likelihood")
    with np.errstate(divide="ignore"):
        return log_z + np.log(roots @ _root_prior(rhm))


def root_posterior(rhm: RHM, tokens, mask=None, *, progress=False) -> np.ndarray:
    """The posterior of the root alone, shape ``(P, n_classes)``: ``posteriors(...)[L][:, 0]``.

    It needs only the upward pass, so it costs about half as much and skips
    the lower levels' posteriors. Raises :class:`lpbook.UngrammaticalError`
    like :func:`posteriors`. ``progress`` shows a bar over the strings.
    """
    tokens, mask = _check(rhm, tokens, mask)
    _, roots = _upward_roots(rhm, tokens, mask, strict=True, progress=progress, desc="bp.root_posterior")
    post = roots * _root_prior(rhm)
    return post / post.sum(axis=1, keepdims=True)


def masked_token_nll(rhm: RHM, tokens, mask, levels=None) -> np.ndarray:
    """``-log p(tokens[r, i] | visible tokens of row r)`` at hidden positions, NaN at visible ones.

    ``tokens`` (P, s**L) must hold the true values at hidden positions too;
    ``mask`` (same shape, ``True`` = hidden) is required. Returns float64 of
    shape ``(P, s**L)``; a true value of posterior probability zero gives ``inf``.

    ``levels`` (an int in ``[0, L]``, default ``L``) limits the predictor to
    the rules of levels ``1..levels``: it is Bayes-optimal for a model in which
    the level-``levels`` nodes are independent, each with its exact marginal
    (:func:`lpbook.exact.marginals`), and generate the tokens below them by
    the grammar's rules. ``levels = L`` is the exact posterior; ``levels = 0``
    predicts each token by its marginal. It measures what knowing the rules
    up to a level is worth, in the units of :func:`bayes_masked_token_loss`.
    """
    if mask is None:
        raise TypeError("mask is required: a boolean array of the tokens' shape, True = hidden")
    tokens, mask = _check(rhm, tokens, mask)
    check_range("tokens (hidden)", tokens[mask], 0, rhm.v)
    levels = rhm.L if levels is None else check_int("levels", levels, minimum=0)
    if levels > rhm.L:
        raise ValueError(f"levels must be <= L = {rhm.L}, got {levels}")
    if levels == rhm.L:
        post = posteriors(rhm, tokens, mask)[0]
    else:
        post = _lower_posteriors(rhm, levels, tokens, mask)
    p_true = np.take_along_axis(post, np.clip(tokens, 0, rhm.v - 1)[:, :, None].astype(np.intp), axis=2)[:, :, 0]
    with np.errstate(divide="ignore"):
        return np.where(mask, -np.log(p_true), np.nan)


def _lower_posteriors(rhm: RHM, levels: int, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Level-0 posteriors (P, s**L, v) of the model that keeps the rules of levels ``1..levels < L`` only."""
    P, k = tokens.shape[0], levels
    marginal = marginals(rhm)[k]  # (N_k, v): one independent prior per level-k node
    if k == 0:
        return np.broadcast_to(marginal, (P, *marginal.shape))
    lower = RHM(rhm.v, rhm.m, rhm.s, k, n_classes=rhm.v, seed=rhm.seed, rule_probs=rhm.rule_probs, zipf_a=rhm.zipf_a)
    same = all(np.array_equal(lower.rules[l], rhm.rules[l]) and np.array_equal(lower.production_probs[l], rhm.production_probs[l])
               for l in range(1, k + 1))
    if not same:  # the grammar draws each level's rules from its own stream, so this cannot happen
        raise RuntimeError(f"the depth-{k} grammar of seed {rhm.seed} does not share the rules of {rhm}")
    width = rhm.s**k  # one row per level-k node: its span of tokens
    post = _posteriors(lower, tokens.reshape(-1, width), mask.reshape(-1, width), np.float64, np.tile(marginal, (P, 1)))
    return post[0].reshape(P, rhm.s**rhm.L, rhm.v)


def bayes_masked_token_loss(rhm: RHM, tokens, mask, levels=None) -> float:
    """The Bayes-optimal masked-token cross-entropy, in nats per hidden token.

    The mean of :func:`masked_token_nll` over all hidden positions of all rows
    (rows with more hidden tokens weigh more): the floor that a network's test
    loss on the same tokens and mask is compared against. Any mask works;
    it must hide at least one token. With ``levels < L`` it is the loss of
    the predictor that knows only the rules of levels ``1..levels``
    (see :func:`masked_token_nll`): the ladder of floors from ``levels = 0``
    (token marginals) to ``levels = L`` (the Bayes floor) tells which levels
    a network's loss has paid for.
    """
    nll = masked_token_nll(rhm, tokens, mask, levels)
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
    root = root_posterior(rhm, tokens, mask)
    best = root >= root.max(axis=1, keepdims=True) * (1 - 1e-9)
    credit = best[np.arange(root.shape[0]), labels.astype(np.intp)] / best.sum(axis=1)
    return float(credit.mean())


def nested_masks(P: int, n_tokens: int, fractions, seed: int) -> np.ndarray:
    """Masks that hide each fraction of the tokens, nested across fractions.

    Every row draws one uniformly random order of its ``n_tokens`` positions
    (from ``seed``) and hides the first ``round(f * n_tokens)`` of them for
    fraction ``f``: each row hides exactly that many tokens, and a larger
    fraction hides a superset (our choice: it makes curves over ``f``
    smoother than independent masks). Returns a bool array of shape
    ``(len(fractions), P, n_tokens)``, ``True`` = hidden.
    """
    P = check_int("P", P, minimum=1)
    n_tokens = check_int("n_tokens", n_tokens, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    fractions = np.asarray(fractions, dtype=float)
    if fractions.ndim != 1 or not np.all((fractions >= 0) & (fractions <= 1)):
        raise ValueError(f"fractions must be a 1-dimensional array of values in [0, 1], got {fractions!r}")
    rank = np.random.default_rng(seed).random((P, n_tokens)).argsort(axis=1).argsort(axis=1)
    counts = np.rint(fractions * n_tokens).astype(np.int64)
    return rank[None, :, :] < counts[:, None, None]


def root_accuracy_curve(rhm: RHM, fractions, P: int, seed: int, *, progress: bool = False) -> np.ndarray:
    """The Bayes-optimal root accuracy against the fraction of hidden tokens, shape ``(len(fractions),)``.

    Draws ``P`` strings (``rhm.sample(P, seed)``), hides each fraction of
    their tokens with :func:`nested_masks` (seeded by ``seed + 1``), and
    scores :func:`bayes_root_accuracy` against the sampled roots.
    """
    progress = check_bool("progress", progress)
    sample = rhm.sample(P, seed)
    masks = nested_masks(P, sample.tokens.shape[1], fractions, seed + 1)
    return np.array([
        bayes_root_accuracy(rhm, sample.tokens, mask, labels=sample.labels)
        for mask in tqdm(masks, desc=f"root accuracy, L={rhm.L}", disable=not progress)
    ])


def halfway_fraction(fractions, accuracy, chance: float) -> float:
    """The hidden fraction where ``accuracy`` first falls halfway from 1 to ``chance``.

    Linear interpolation between the two grid points around the first
    crossing of ``(1 + chance) / 2``; ``nan`` when the curve never gets there.
    ``fractions`` and ``accuracy`` are 1-dimensional, ``fractions`` increasing.
    """
    fractions, accuracy = np.asarray(fractions, dtype=float), np.asarray(accuracy, dtype=float)
    level = (1 + chance) / 2
    below = np.flatnonzero(accuracy < level)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = below[0]
    a0, a1 = accuracy[i - 1], accuracy[i]
    return float(fractions[i - 1] + (a0 - level) / (a0 - a1) * (fractions[i] - fractions[i - 1]))
