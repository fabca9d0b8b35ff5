"""SLC: a stack of predictor-clusterer modules trained by gradient descent on their own latents (Chapter 4).

The neural form of iterative latent clustering (:class:`lpbook.ILC`). Module
``l = 1..L-1`` owns two tables (all design choices here are OURS; the paper's
architecture and losses are not public):

- a **clusterer** ``C_l`` of shape ``(v**s, v)``: the logits of the level-``l``
  code of every s-tuple value of level-``(l-1)`` codes. A tuple of *soft*
  codes (distributions over ``v``) is read as the distribution of its tuple
  value, the outer product of its members' codes, and its code is the mixture
  ``x @ softmax(C_l)``; a tuple of hard codes picks one row.
- a **predictor** of two tables: ``W_l`` of shape ``(n_slots, v, v**s)``,
  the logits of ``q_l(z | a, slot)``, the distribution of the *cousin tuple*
  (the level-``(l-1)`` codes under the sibling of the slot, read jointly as one
  value ``z``) given the level-``l`` code ``a`` and the slot; and ``U_l`` of
  shape ``(v, n_slots)``, the logits of ``q_l(slot | a)``. A *slot* is the
  node's place ``i`` under its parent together with one of its ``s - 1``
  siblings, ``n_slots = s * (s - 1)``.

**Loss.** For every level-``l`` node and each of its siblings, the node's
soft code ``c`` predicts the cousin tuple and the slot by the mixtures
``p(z | slot) = sum_a c_a q_l(z | a, slot)`` and ``p(slot) = sum_a c_a q_l(slot | a)``,
and the loss is ``-log p(z | slot) - place_weight * log p(slot)`` at the
cousin tuple's *hard* codes ``z`` (the hard codes of the level below, as ILC
uses them: level 0 are the tokens), averaged over nodes and siblings, summed
over modules. With hard codes and the best predictor it is
``H(Z | code, S) + place_weight * H(S | code)``, minimised exactly by the
synonym partition for every ``place_weight > 0`` (Chapter 4's proposition;
at ``place_weight = 1`` it is ``H(S, Z | code)``). The place term matters: two
symbols that never occupy the same place under their parents are told apart
only by where they occur, and ``H(Z | code, S)`` alone (``place_weight=0``,
an ablation) is blind to merging them. A **balance** term
``balance * (log v - H(c_bar))`` per module, where ``c_bar`` is the mean soft
code of the batch, keeps every code in use (without it codes die and the
level stalls): it is zero when the batch uses the ``v`` codes equally.

**Modes.** ``mode="end-to-end"``: the loss of module ``l`` back-propagates
into the clusterers below it through its soft input codes.
``mode="local"``: a stop-gradient between modules, so each module learns only
from its own loss (its input codes and targets are constants to it).

**Restarts, module by module.** ``restarts`` independent copies are
trained at once (a leading dimension of every table, one Adam state,
independent gradients), in ``L - 1`` stages of ``steps`` steps: stage ``k``
trains modules ``1..k``. At the end of a stage below the top, the restart with
the lowest *hard-code criterion* (:func:`hard_criterion`: the estimated
loss of the hard codes with the best predictor, on the training set) summed
over modules ``1..k`` gives its modules ``1..k`` to every restart, and stage
``k + 1`` starts a fresh module ``k + 1`` per restart on top of them. The comparison is fair because all restarts share the levels
below. After the last stage the restart with the lowest criterion summed over
all modules is kept. No label is used anywhere. The criterion is the
population loss of the book's proposition with the best predictor for the
hard codes.

**Codes.** ``transform`` returns hard codes: level ``l`` is ``argmax`` of the
clusterer's row for the tuple of hard level-``(l-1)`` codes. So the learned
model is one lookup table per level, like ILC's.

**Records.** Every ``log_every`` steps the loop records the learning curve
(``curve_``); ``fit(tokens, on_record=callback)`` also hands each record's
per-restart, per-module losses and lookup tables to ``callback``
(:class:`Record`), for a reader who follows the training dynamics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .._progress import finish, progress_bar
from .._validate import check_bool, check_float, check_int
from ..grammar import encode_tuples, smallest_uint
from ..learners import Learner, register
from ..exact import slot_context
from ..tree import cousin_targets, target_positions
from .training import RUNTIME_OPTION_VALUES, RUNTIME_PARAMS, LearningCurve, generator, resolve_device, seeded, torch_threads

MODES = ("end-to-end", "local")


@dataclass(frozen=True)
class Record:
    """One record of SLC's training loop, as ``fit``'s ``on_record`` receives it.

    ``step``: steps done, over all stages; ``loss``, ``balance``: float arrays
    ``(restarts, L - 1)``, the mean prediction loss (nats, without the balance
    term) and balance deficit ``log v - H(c_bar)`` of every restart and module
    since the previous record (``nan`` for a module not trained yet);
    ``assignments``: int64 ``(restarts, L - 1, v**s)``, every restart's hard
    lookup tables, for :func:`hard_codes`.
    """

    step: int
    loss: np.ndarray
    balance: np.ndarray
    assignments: np.ndarray


def cousin_layout(L: int, level: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Where every level-``level`` node finds its cousin tuples, and in which slot.

    Returns ``(siblings, slots)``, both int64 of shape ``(s**(L - level), s - 1)``:
    ``siblings[p, r]`` is the position of the ``r``-th sibling of node ``p``
    (whose tuple is the cousin tuple), ``slots[p, r] = (p % s) * (s - 1) + r``
    the slot of that pair, in ``[0, s * (s - 1))``.
    """
    _, siblings = target_positions(L, level, s, cousin_targets)
    n = siblings.shape[0]
    slots = (np.arange(n)[:, None] % s) * (s - 1) + np.arange(s - 1)[None, :]
    return siblings, slots


def hard_codes(tokens: np.ndarray, assignments: np.ndarray, v: int, s: int) -> list[np.ndarray]:
    """The hard codes of every level from lookup tables.

    ``tokens`` of shape ``(P, s**L)``; ``assignments`` of shape ``(L - 1, v**s)``,
    row ``l - 1`` mapping each tuple value of level-``(l-1)`` codes to its
    level-``l`` code. Returns ``[tokens, codes_1, ..., codes_{L-1}]``,
    ``codes_l`` int64 of shape ``(P, s**(L - l))``.
    """
    codes = [np.asarray(tokens, dtype=np.int64)]
    for table in assignments:
        below = codes[-1]
        codes.append(table[encode_tuples(below.reshape(below.shape[0], -1, s), v)])
    return codes


def hard_criterion(codes: list[np.ndarray], v: int, s: int, L: int, place_weight: float = 1.0) -> np.ndarray:
    """The estimated loss of each module's hard codes with the best predictor, in nats.

    It is ``H(cousin tuple | code, slot) + place_weight * H(slot | code)``
    (:func:`criterion_terms`), each term estimated by the plug-in estimate plus
    the Miller-Madow correction (for every row, the number of values it was
    seen with, minus one, over twice the number of pairs): without it,
    splitting a frequent class and merging two rare ones lowers the plug-in
    value on finite data, although it raises the population value.

    ``codes`` as :func:`hard_codes` returns them, for a grammar of depth ``L``:
    levels ``0..k`` with ``k <= L - 1``. Module ``l`` pools, over all samples
    and level-``l`` nodes and their siblings, the triples (slot, hard code of
    the node, value of the cousin tuple of level-``(l-1)`` codes). Returns shape ``(k,)``.
    """
    n_slots = s * (s - 1)
    out = np.zeros(len(codes) - 1)
    for level in range(1, len(codes)):
        below = codes[level - 1]
        tuples = encode_tuples(below.reshape(below.shape[0], -1, s), v)  # (P, n)
        siblings, slots = cousin_layout(L, level, s)
        given = slots[None] * v + codes[level][:, :, None]  # (P, n, s-1) in [0, n_slots * v)
        joint = np.bincount((given * v**s + tuples[:, siblings]).ravel(), minlength=n_slots * v * v**s)
        cousin, place = criterion_terms(joint.reshape(n_slots, v, v**s))
        out[level - 1] = cousin + place_weight * place
    return out


def criterion_terms(joint: np.ndarray, *, bias_correction: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``H(value | slot, code)`` and ``H(slot | code)`` from counts ``joint`` ``(..., n_slots, v, n_values)``.

    Returns two arrays of shape ``(...)`` (:func:`conditional_entropy`; with
    ``bias_correction=False`` ``joint`` may hold probabilities).
    """
    *lead, n_slots, v, n_values = joint.shape
    cousin = conditional_entropy(joint.reshape(*lead, n_slots * v, n_values), bias_correction=bias_correction)
    place = conditional_entropy(np.swapaxes(joint.sum(axis=-1), -2, -1), bias_correction=bias_correction)
    return cousin, place


def conditional_entropy(joint: np.ndarray, *, bias_correction: bool = True) -> np.ndarray:
    """``H(value | row)`` in nats from counts ``joint`` ``(..., rows, values)``: shape ``(...)``.

    The plug-in estimate plus, with ``bias_correction``, the Miller-Madow
    correction (see :func:`hard_criterion`). Without it, ``joint`` may hold
    probabilities: the result is then the exact conditional entropy.
    """
    joint = np.asarray(joint, dtype=float)
    margin = joint.sum(axis=-1, keepdims=True)
    seen = joint > 0
    terms = np.where(seen, joint * np.log(np.where(seen, joint, 1) / np.where(margin > 0, margin, 1)), 0)
    plug_in = -np.sum(terms, axis=(-2, -1))
    # Miller-Madow: each seen row adds (its seen values - 1) / 2 to N * H.
    correction = np.sum(np.maximum(seen.sum(axis=-1) - 1, 0), axis=-1) / 2 if bias_correction else 0.0
    return (plug_in + correction) / joint.sum(axis=(-2, -1))


def synonym_table(rhm, level: int) -> np.ndarray:
    """The synonym partition of the tuples under ``level`` as a hard clusterer: int64 ``(v**s,)``.

    Entry ``t`` is the parent of the tuple value ``t`` (``encode_tuples`` of
    ``rules[level][a, j]`` gives ``a``), and ``-1`` for the ungrammatical values,
    which never occur. The table :func:`population_criterion` minimises.
    """
    v, s = rhm.v, rhm.s
    out = np.full(v**s, -1, dtype=np.int64)
    out[encode_tuples(rhm.rules[level].reshape(-1, s), v)] = np.repeat(np.arange(rhm.alphabet_size(level)), rhm.m)
    return out


def population_criterion(rhm, level: int, table: np.ndarray, place_weight: float = 1.0) -> float:
    """The population value of :func:`hard_criterion` of module ``level`` for the hard clusterer ``table``.

    The codes below are the true symbols (level ``level - 1`` of ``rhm``), and
    ``table``, int of shape ``(v**s,)``, maps every grammatical tuple value to a
    code in ``[0, v)`` (:func:`synonym_table` gives the true one); the cousin
    tuples are read jointly. Computed exactly from the rules
    (:func:`lpbook.exact.slot_context`), in nats. For ``place_weight > 0`` the
    synonym partition is the only minimiser when the slot contexts of the
    symbols differ; at ``place_weight = 0`` a partition that merges two symbols
    that never share a place attains the minimum too.
    """
    v, s = rhm.v, rhm.s
    table = np.asarray(table)
    if table.shape != (v**s,):
        raise ValueError(f"table must have shape ({v**s},), got {table.shape}")
    joint = slot_context(rhm, level)  # (n_slots, v*m tuples, v*m cousin tuples)
    codes = table[encode_tuples(rhm.rules[level].reshape(-1, s), v)]  # the code of every grammatical tuple
    if codes.min() < 0 or codes.max() >= v:
        raise ValueError(f"table must map every grammatical tuple to a code in [0, {v})")
    by_code = np.zeros((joint.shape[0], v, joint.shape[2]))
    np.add.at(by_code, (slice(None), codes), joint)
    cousin, place = criterion_terms(by_code, bias_correction=False)
    return float(cousin + place_weight * place)


def rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of each restart's table: ``table`` ``(R, K, d)``, int64 ``index`` ``(R, ...)`` in ``[0, K)``.

    Returns shape ``(R, ..., d)``.
    """
    R, K, d = table.shape
    offset = (torch.arange(R, device=index.device) * K).reshape(R, *[1] * (index.dim() - 1))
    return torch.index_select(table.reshape(R * K, d), 0, (index + offset).reshape(-1)).reshape(*index.shape, d)


def distinct_subtrees(first: torch.Tensor, s: int, levels: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The distinct subtrees of a batch of trees, level by level, and where each node finds its own.

    ``first``: int64 ``(B, n)``, the token-tuple values of the level-1 nodes.
    Returns ``[(members_1, index_1), ..., (members_levels, index_levels)]``:
    ``index_l`` int64 ``(B, n / s**(l - 1))``, the distinct level-``l``
    subtree of every node, in ``[0, D_l)``; ``members_1`` int64 ``(D_1,)``
    the token-tuple value of each distinct level-1 subtree, ``members_l``
    int64 ``(D_l, s)`` for ``l >= 2`` the distinct level-``(l-1)`` subtrees
    under each. Two nodes share an index exactly when their token subtrees are equal.
    """
    values, index = torch.unique(first, return_inverse=True)
    out = [(values, index)]
    for _ in range(1, levels):
        count = out[-1][0].shape[0]
        grouped = index.reshape(index.shape[0], -1, s)  # (B, n_l, s)
        index = grouped[..., 0]
        for i in range(1, s):  # compressed after each member, so that the keys stay below count**2
            index = torch.unique(index * count + grouped[..., i], return_inverse=True)[1]
        members = torch.empty(int(index.max()) + 1, s, dtype=index.dtype, device=index.device)
        members[index.reshape(-1)] = grouped.reshape(-1, s)  # equal subtrees write equal members
        out.append((members, index))
    return out


def cousin_triples(index: torch.Tensor, siblings: torch.Tensor, slots: torch.Tensor, count: int, n_slots: int):
    """The distinct (node, cousin, slot) triples of a level and how often each occurs.

    ``index`` int64 ``(B, n)``: the distinct subtree of every node, in ``[0, count)``
    (:func:`distinct_subtrees`); ``siblings``, ``slots`` as :func:`cousin_layout`
    gives them (as tensors; slots in ``[0, n_slots)``). Returns int64 tensors
    ``(node, cousin, slot, counts)``, each of shape ``(K,)``: the subtree of the
    node, that of the sibling whose tuple is its cousin tuple, the slot, and the
    number of (sample, node, sibling) with that triple.
    """
    triples = (index[:, :, None] * count + index[:, siblings]) * n_slots + slots  # (B, n, s-1)
    triples, counts = torch.unique(triples, return_counts=True)
    return triples // (count * n_slots), triples // n_slots % count, triples % n_slots, counts


def subtree_codes(trees: list, hard_tables: torch.Tensor, v: int, s: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The hard codes of distinct subtrees, as :func:`hard_codes` gives them for their nodes.

    ``trees``: :func:`distinct_subtrees` for levels ``1..k``; ``hard_tables``
    int64 ``(R, k, v**s)``, each restart's lookup tables. Returns, for each
    level, ``(tuples, codes)``, both int64 ``(R, D_l)``: the value of the tuple
    of hard codes below each distinct subtree (level 1: its tokens), and its hard code.
    """
    R = hard_tables.shape[0]
    powers = v ** torch.arange(s - 1, -1, -1, device=hard_tables.device)
    out = []
    for level, (members, _) in enumerate(trees):
        tuples = members.expand(R, -1) if level == 0 else (out[-1][1][:, members] * powers).sum(dim=-1)
        out.append((tuples, torch.gather(hard_tables[:, level], 1, tuples)))
    return out


def contract(partial: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """Sum out the tuple members ``members`` ``(R, N, k, v)`` from ``partial`` ``(R, N, v**k * v)``: shape ``(R, N, v)``.

    ``partial[r, n]`` holds a table over the values of the ``k`` members (first
    most significant) and the code; each member's soft code weighs its axis.
    """
    R, N, k, v = members.shape
    for i in range(k):
        partial = Weigh.apply(members[:, :, i], partial.reshape(R, N, v, -1))
    return partial


class Weigh(torch.autograd.Function):
    """``out[..., y] = sum_x c[..., x] * table[..., x, y]`` for ``c`` ``(..., v)`` and ``table`` ``(..., v, w)``.

    The backward is written out (the outer product ``c g`` and the product
    ``table g``), because autograd's backward of the broadcast product and sum
    is several times slower on the CPU.
    """

    @staticmethod
    def forward(ctx, c: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(c, table)
        return (c.unsqueeze(-1) * table).sum(dim=-2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        c, table = ctx.saved_tensors
        grad_c = (table @ grad.unsqueeze(-1)).squeeze(-1) if ctx.needs_input_grad[0] else None
        grad_table = c.unsqueeze(-1) * grad.unsqueeze(-2) if ctx.needs_input_grad[1] else None
        return grad_c, grad_table


@register("slc")
class SLC(Learner):
    """A stack of predictor-clusterer modules trained by Adam on their own latents.

    See the module docstring for the model, the loss, the modes and the restart
    selection. ``transform`` returns ``{level: codes}`` for levels ``1..L-1``,
    codes int64 of shape ``(P, s**(L - level))`` in ``[0, v)``.

    Parameters
    ----------
    v, s, L, seed : int
        The grammar's shape (``L >= 2``) and the seed (initial tables, batches).
    mode : ``"end-to-end"`` (default) or ``"local"``
        Whether gradients cross from one module into the modules below.
    balance : float >= 0
        Weight of the balance term (default 1; 0 removes it, an ablation).
    place_weight : float >= 0
        Weight of the place term ``-log p(slot)`` of the loss (default 1; 0
        removes it, an ablation blind to symbols that never share a place).
    restarts : int
        Independent fits trained at once, selected module by module (default 4).
    steps : int
        Adam steps per stage (default 750; ``L - 1`` stages), each on
        ``batch_size`` samples drawn without replacement, epoch after epoch,
        in an order from the seed. The Adam state restarts with each stage.
    batch_size : int
        Samples per step (default 128).
    lr : float
        Adam learning rate (default 0.05: the parameters are logits of tables).
    init_scale : float
        Standard deviation of the clusterers' initial logits (default 0.1:
        nearly uniform codes, whose symmetry the data break; the predictors
        and the place logits start at zero, i.e. uniform).
    log_every : int
        Steps between records of the learning curve (default 50).
    threads : int
        ``torch.set_num_threads`` during ``fit`` (default 1), restored after.
    device : str or torch.device
        Where to train (default ``"cpu"``; on the CPU the fit is deterministic given the seed).
    progress : bool
        Show a tqdm bar over steps (default True).

    Attributes (after ``fit``)
    --------------------------
    assignments_ : int64 array ``(L - 1, v**s)``, the kept restart's lookup tables.
    criterion_ : float array ``(restarts, L - 1)``, :func:`hard_criterion` of every restart at the end.
    restart_ : int, the kept restart.
    curve_ : :class:`lpbook.neural.training.LearningCurve`: ``steps``; ``train_loss``, the lowest
        over restarts of the summed prediction loss of the modules trained; ``seconds``. The
        per-restart, per-module records go to ``fit``'s ``on_record`` (:class:`Record`).
    clusterers_, predictors_, places_ : float32 arrays ``(restarts, L - 1, v**s, v)``,
        ``(restarts, L - 1, n_slots, v, v**s)`` and ``(restarts, L - 1, v, n_slots)``, the final logits.
    """

    uses_labels = False
    runtime_params = RUNTIME_PARAMS
    option_values = {
        "mode": "one of " + ", ".join(map(repr, MODES)),
        "balance": "a number >= 0",
        "place_weight": "a number >= 0",
        "slot_specific": "true or false",
        "restarts": "an integer >= 1",
        "steps": "an integer >= 1",
        "batch_size": "an integer >= 1",
        "lr": "a number > 0",
        "init_scale": "a number > 0",
        "log_every": "an integer >= 1",
        "threads": "an integer >= 1",
        "device": RUNTIME_OPTION_VALUES["device"],
        "progress": "true or false",
    }

    def __init__(
        self,
        v,
        s,
        L,
        seed=0,
        mode="end-to-end",
        balance=1.0,
        place_weight=1.0,
        restarts=4,
        steps=750,
        batch_size=128,
        lr=0.05,
        init_scale=0.1,
        log_every=50,
        threads=1,
        device="cpu",
        progress=True,
    ):
        super().__init__(v, s, L, seed)
        check_int("L", L, minimum=2)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.balance = check_float("balance", balance, low=0.0, closed=True)
        self.place_weight = check_float("place_weight", place_weight, low=0.0, closed=True)
        self.restarts = check_int("restarts", restarts, minimum=1)
        self.steps = check_int("steps", steps, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = check_float("lr", lr, low=0.0)
        self.init_scale = check_float("init_scale", init_scale, low=0.0)
        self.log_every = check_int("log_every", log_every, minimum=1)
        self.threads = check_int("threads", threads, minimum=1)
        self.device = resolve_device(device, check_available=False)  # checked where the data move
        self.progress = check_bool("progress", progress)

    @property
    def n_slots(self) -> int:
        """Slots of a module: ``s * (s - 1)`` (the node's place and the sibling's rank)."""
        return self.s * (self.s - 1)

    # ------------------------------------------------------------ training
    def fit(self, tokens, labels=None, *, on_record: Callable[[Record], object] | None = None) -> SLC:
        """Train on ``tokens`` of shape ``(P, s**L)`` (``labels``, if given, are checked and ignored).

        ``on_record``, if given, is called with a :class:`Record` at every
        record of the learning curve; it changes nothing in the fit.
        """
        tokens, _ = self._fit_inputs(tokens, labels)
        if on_record is not None and not callable(on_record):
            raise TypeError(f"on_record must be callable, got {type(on_record).__name__}")
        resolve_device(self.device)  # the device must exist where the fit runs
        v, s, L, R = self.v, self.s, self.L, self.restarts
        with torch_threads(self.threads):
            with seeded(self.seed):
                clusterers = self.init_scale * torch.randn(R, L - 1, v**s, v)
                predictors = torch.zeros(R, L - 1, self.n_slots, v, v**s)
                places = torch.zeros(R, L - 1, v, self.n_slots)
            clusterers, predictors, places = (x.to(self.device).requires_grad_() for x in (clusterers, predictors, places))
            first = torch.as_tensor(encode_tuples(tokens.reshape(tokens.shape[0], -1, s), v))  # (P, s**(L-1))
            sample = self._sample_structure(first)
            self.curve_ = self._train(clusterers, predictors, places, first.to(self.device), sample, on_record)
            self.clusterers_ = clusterers.detach().cpu().numpy()
            self.predictors_ = predictors.detach().cpu().numpy()
            self.places_ = places.detach().cpu().numpy()
            tables = self.clusterers_.argmax(axis=-1)  # (R, L-1, v**s)
            self.criterion_ = self._criterion(sample, torch.as_tensor(tables))
        self.restart_ = int(np.argmin(self.criterion_.sum(axis=1)))
        self.assignments_ = tables[self.restart_].astype(np.int64)
        return self

    def _sample_structure(self, first: torch.Tensor) -> list[tuple]:
        """The distinct subtrees of the training set (``first``, its token tuples, on the CPU) and, per level,
        its distinct (node, cousin, slot) triples with their counts (:func:`cousin_triples`), for :meth:`_criterion`."""
        s, n_slots = self.s, self.s * (self.s - 1)
        trees = distinct_subtrees(first, s, self.L - 1)
        out = []
        for level, (members, index) in enumerate(trees, start=1):
            siblings, slots = map(torch.as_tensor, cousin_layout(self.L, level, s))
            out.append((members, cousin_triples(index, siblings, slots, len(members), n_slots)))
        return out

    def _criterion(self, sample: list[tuple], tables: torch.Tensor) -> np.ndarray:
        """:func:`hard_criterion` on the training set of each restart's ``tables``, int64 ``(R, k, v**s)``: shape ``(R, k)``.

        Computed once per distinct subtree and triple of the training set
        (``sample``, from :meth:`_sample_structure`), each counted as often as it occurs.
        """
        v, s, n_slots = self.v, self.s, self.s * (self.s - 1)
        R, k = tables.shape[:2]
        trees = [(members, None) for members, _ in sample[:k]]
        out = []
        for (tuples, hard), (_, (node, cousin, slot, counts)) in zip(subtree_codes(trees, tables, v, s), sample):
            given = (torch.arange(R)[:, None] * n_slots + slot) * v + hard[:, node]  # (R, K): restart, slot, code
            joint = torch.bincount(
                (given * v**s + tuples[:, cousin]).reshape(-1),
                weights=counts.to(torch.float64).repeat(R),
                minlength=R * n_slots * v * v**s,
            )
            cousin, place = criterion_terms(joint.reshape(R, n_slots, v, v**s).numpy())
            out.append(cousin + self.place_weight * place)
        return np.stack(out, axis=1)

    def _layout(self, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        siblings, slots = cousin_layout(self.L, level, self.s)
        return torch.as_tensor(siblings, device=self.device), torch.as_tensor(slots, device=self.device)

    def _train(self, clusterers, predictors, places, first: torch.Tensor, sample: list[tuple],
               on_record: Callable[[Record], object] | None) -> LearningCurve:
        """Train stage by stage; stage ``k`` trains modules ``1..k`` for ``steps`` steps.

        At the end of a stage below the top, every restart takes the modules
        ``1..k`` of the restart with the lowest hard criterion summed over
        those modules (a fair comparison, since all restarts then share the
        modules below ``k``), and the next stage trains a fresh module ``k + 1``
        on top of them, each restart from its own random start.
        """
        L = self.L
        layout = [self._layout(level) for level in range(1, L)]
        rng = generator(self.seed)
        batches = self._batches(first.shape[0], rng)
        curve = LearningCurve()
        bar = progress_bar(self.steps * (L - 1), "SLC", self.progress)
        start = time.process_time()
        for depth in range(1, L):
            optimizer = torch.optim.Adam([clusterers, predictors, places], lr=self.lr, foreach=True)
            loss_sum = torch.zeros(self.restarts, L - 1, device=self.device)
            deficit_sum = torch.zeros_like(loss_sum)
            count = 0
            for step in range(1, self.steps + 1):
                index = next(batches).to(self.device)
                loss, deficit = self._losses(clusterers, predictors, places, first[index], layout[:depth])
                optimizer.zero_grad(set_to_none=True)
                (loss + self.balance * deficit).sum().backward()
                optimizer.step()
                loss_sum[:, :depth] += loss.detach()
                deficit_sum[:, :depth] += deficit.detach()
                count += 1
                if step % self.log_every == 0 or step == self.steps:
                    absent = torch.full((self.restarts, L - 1 - depth), float("nan"), device=self.device)
                    losses = torch.cat([loss_sum[:, :depth] / count, absent], dim=1).cpu().numpy()
                    curve.steps.append((depth - 1) * self.steps + step)
                    curve.train_loss.append(float(np.nansum(losses, axis=1).min()))
                    curve.seconds.append(time.process_time() - start)
                    if on_record is not None:
                        on_record(Record(
                            curve.steps[-1], losses,
                            torch.cat([deficit_sum[:, :depth] / count, absent], dim=1).cpu().numpy(),
                            clusterers.detach().argmax(dim=-1).cpu().numpy(),
                        ))
                    loss_sum.zero_()
                    deficit_sum.zero_()
                    count = 0
                    bar.set_postfix(loss=f"{curve.train_loss[-1]:.4f}")
                bar.update()
            if depth < L - 1:
                self._share_best((clusterers, predictors, places), sample, depth)
        finish(bar)
        curve.best_step = curve.steps[-1]
        return curve

    @torch.no_grad()
    def _share_best(self, tables: tuple, sample: list[tuple], depth: int) -> None:
        """Copy modules ``1..depth`` of the restart with the lowest hard criterion over them into every restart.

        ``tables``: the clusterers (first), predictors and place logits, each with restarts and modules leading.
        """
        criterion = self._criterion(sample, tables[0][:, :depth].argmax(dim=-1).cpu())
        best = int(np.argmin(criterion.sum(axis=1)))
        for table in tables:
            table[:, :depth] = table[best, :depth].clone()

    def _batches(self, P: int, rng: torch.Generator) -> Iterator[torch.Tensor]:
        """Endless minibatch indices: epochs of a random order, split into batches of ``batch_size``."""
        while True:
            yield from torch.randperm(P, generator=rng).split(self.batch_size)

    def _losses(self, clusterers, predictors, places, first, layout) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction losses and balance deficits of every restart and module, each of shape ``(R, len(layout))``.

        ``first``: the batch's token tuples, int64 ``(B, s**(L-1))``; ``layout``: the
        modules to evaluate (the first ``len(layout)``), as :meth:`_layout` gives them.

        A node's soft code, its hard code and the value of its tuple of hard
        codes below depend only on its token subtree, so they are computed once
        per distinct subtree of the batch (:func:`distinct_subtrees`), and the
        loss once per distinct (node, sibling, slot) triple, weighted by its
        count: the same sums as over every node. The code of a tuple of soft
        codes ``c_1..c_s`` is ``sum_{x_1..x_s} c_1[x_1] ... c_s[x_s] softmax(C_l)[x_1..x_s]``,
        computed member by member (:func:`contract`), not through their outer product.
        The loss of a triple is ``-log p(z | slot) - place_weight * log p(slot)``
        (the module docstring); the place term is left out when its weight is 0.
        """
        v, s, R, depth = self.v, self.s, self.restarts, len(layout)
        tables = F.softmax(clusterers[:, :depth], dim=-1)  # (R, depth, v**s, v)
        log_q = F.log_softmax(predictors[:, :depth], dim=-1).transpose(-1, -2)  # (R, depth, slots, v**s, v)
        log_places = F.log_softmax(places[:, :depth], dim=-1).transpose(-1, -2)  # (R, depth, slots, v)
        trees = distinct_subtrees(first, s, depth)
        hard = subtree_codes(trees, clusterers[:, :depth].detach().argmax(dim=-1), v, s)
        losses, deficits = [], []
        for module, ((members, index), (siblings, slots)) in enumerate(zip(trees, layout)):
            if module == 0:  # members: the token-tuple values
                codes = tables[:, 0].index_select(1, members)  # (R, D, v)
            else:
                below = codes if self.mode == "end-to-end" else codes.detach()
                inputs = below.index_select(1, members.reshape(-1)).reshape(R, -1, s, v)  # (R, D, s, v)
                table = tables[:, module].reshape(R, v, -1)  # (R, v, v**(s-1) * v): rows by the first member
                if below.shape[1] < members.shape[0]:  # contract the first member where there are fewer rows
                    partial = (below @ table).index_select(1, members[:, 0])
                else:
                    partial = inputs[:, :, 0] @ table
                codes = contract(partial, inputs[:, :, 1:])  # (R, D, v)
            # log p(z | slot) = log sum_a c_a q(z | a, slot) at the cousin tuples' values z, per distinct triple.
            D = codes.shape[1]
            node, sibling, slot, counts = cousin_triples(index, siblings, slots, D, self.n_slots)
            tuples = hard[module][0]
            log_qz = rows(log_q[:, module].reshape(R, -1, v), slot * v**s + tuples[:, sibling])  # (R, K, v)
            log_c = torch.log(codes.clamp_min(1e-30)).index_select(1, node)  # (R, K, v)
            log_p = torch.logsumexp(log_c + log_qz, dim=-1)  # (R, K)
            if self.place_weight > 0:  # log p(slot) = log sum_a c_a q(slot | a)
                log_qs = log_places[:, module].index_select(1, slot)  # (R, K, v)
                log_p = log_p + self.place_weight * torch.logsumexp(log_c + log_qs, dim=-1)
            losses.append(-(log_p @ counts.to(log_p.dtype)) / counts.sum())
            weights = torch.bincount(index.reshape(-1), minlength=D).to(codes.dtype) / index.numel()
            mean_code = torch.einsum("d,rdv->rv", weights, codes)  # (R, v)
            entropy = -(mean_code * torch.log(mean_code.clamp_min(1e-30))).sum(dim=-1)
            deficits.append(math.log(v) - entropy)
        return torch.stack(losses, dim=1), torch.stack(deficits, dim=1)

    # ------------------------------------------------------------ codes
    @property
    def levels(self) -> tuple[int, ...]:
        """The levels :meth:`transform` returns: ``1 .. L-1``."""
        return tuple(range(1, self.L))

    def transform(self, tokens) -> dict[int, np.ndarray]:
        """``{level: codes}`` for levels ``1..L-1``: hard codes of shape ``(P, s**(L - level))`` in ``[0, v)``, dtype ``smallest_uint(v)``."""
        self._check_fitted("assignments_")
        return self._codes(tokens, self.assignments_)

    def _codes(self, tokens, assignments: np.ndarray) -> dict[int, np.ndarray]:
        codes = hard_codes(self._check_tokens(tokens), assignments, self.v, self.s)
        return {level: codes[level].astype(smallest_uint(self.v)) for level in self.levels}
