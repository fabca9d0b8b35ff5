"""The points of a sample-complexity sweep and their grids.

A *point* is one training run, fully described by a :class:`Point`: the
learner's registered name and options, the grammar ``(v, m, s, L, n_classes)``
with its production law (``rule_probs``, ``zipf_a``; see
:class:`~lpbook.grammar.RHM`), the number of training samples ``P``, the seed
and the test-set size ``n_test``. Seed ``seed`` draws a fresh grammar ``RHM(..., seed=seed)``, the
training set ``sample(P, seed=2*seed)`` (nested across ``P``) and the held-out
test set ``sample(n_test, seed=2*seed + 1)`` (:meth:`Point.data`); the learner
(:meth:`Point.make_learner`) gets ``seed`` too.

A point's identity is :attr:`Point.key`, the sha256 of its canonical JSON,
which leaves out the production law when it is uniform (so that points of the
paper's grammars keep the keys they had before laws were stored) and the
learner's runtime options (``device``, ``threads``, ``progress``: how a fit
runs, not what it computes), which :attr:`Point.runtime` holds apart.
:func:`make_points` checks a sweep's points before any work starts;
:func:`log_grid` and :func:`scaled_grid` give their sizes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ._validate import check_float, check_int
from .grammar import RHM, Sample
from .learners import Learner, get, split_runtime

#: Keyword arguments that a point passes to its learner itself.
RESERVED_OPTIONS = frozenset({"v", "s", "L", "seed", "n_classes"})
#: The fields of a grammar's production law, left out of a key when the law is uniform.
LAW_FIELDS = ("rule_probs", "zipf_a")
#: Row fields that identify one curve: everything but ``P`` and ``seed``.
SETTING_FIELDS = ("learner", "options", "v", "m", "s", "L", "n_classes", "n_test", "rule_probs", "zipf_a")


def canonical_json(value) -> str:
    """``value`` as JSON with sorted keys and no spaces: the form that keys hash and databases store."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Grammar:
    """The shape and production law of an RHM, checked by :class:`~lpbook.grammar.RHM` itself.

    ``n_classes=None`` means ``v``, and is stored resolved. ``rule_probs`` is
    ``"uniform"`` (the paper's grammars, the default) or ``"zipf"``; ``zipf_a``
    is the Zipf exponent, ``None`` for uniform laws (giving one is an error, as
    for :class:`~lpbook.grammar.RHM`) and 1.0 by default for Zipf ones.
    """

    v: int
    m: int
    s: int
    L: int
    n_classes: int | None = None
    rule_probs: str = "uniform"
    zipf_a: float | None = None

    def __post_init__(self):
        rhm = self.rhm()
        for name in ("v", "m", "s", "L", "n_classes"):
            object.__setattr__(self, name, getattr(rhm, name))
        object.__setattr__(self, "zipf_a", rhm.zipf_a)

    def rhm(self, seed: int = 0) -> RHM:
        """The grammar of this shape and law drawn with ``seed``."""
        return RHM(self.v, self.m, self.s, self.L, n_classes=self.n_classes, seed=seed,
                   rule_probs=self.rule_probs, zipf_a=self.zipf_a)

    def as_dict(self) -> dict:
        """The grammar as a JSON-compatible dict, without the production law when it is uniform."""
        return _without_uniform_law(dataclasses.asdict(self))

    def __repr__(self) -> str:
        return f"Grammar({', '.join(f'{name}={value!r}' for name, value in self.as_dict().items())})"


def _without_uniform_law(fields: dict) -> dict:
    """``fields`` less ``rule_probs`` and ``zipf_a`` when the law is uniform: what identified a grammar before laws."""
    if fields["rule_probs"] == "uniform":
        return {name: value for name, value in fields.items() if name not in LAW_FIELDS}
    return fields


def _as_grammar(grammar) -> Grammar:
    if isinstance(grammar, Grammar):
        return grammar
    if not isinstance(grammar, Mapping):
        raise TypeError(f"each grammar must be a Grammar or a mapping, got {grammar!r}")
    names = {f.name for f in dataclasses.fields(Grammar)}
    if not {"v", "m", "s", "L"} <= grammar.keys() <= names:
        raise ValueError(
            f"each grammar must have keys v, m, s, L and optionally n_classes, rule_probs, zipf_a, got {sorted(grammar)}"
        )
    try:
        return Grammar(**grammar)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"invalid grammar {dict(grammar)}: {exc}") from None


@dataclass(frozen=True)
class Point:
    """One training run of a sweep (see the module docstring for the seeds).

    ``learner`` is a key of :data:`lpbook.learners.REGISTRY`, ``options`` its
    keyword arguments that say what the fit computes (a JSON-compatible dict),
    ``n_classes`` is resolved (never ``None``), ``P`` and ``n_test`` count
    training and test strings; ``rule_probs`` and ``zipf_a`` are the grammar's
    production law, as in :class:`Grammar`. ``runtime`` holds the learner's
    runtime options (:attr:`lpbook.learners.Learner.runtime_params`: ``device``,
    ``threads``, ``progress``), which reach the learner but are no part of the
    point's identity: neither its :attr:`key` nor its equality.
    """

    learner: str
    options: dict = field(hash=False)
    v: int
    m: int
    s: int
    L: int
    n_classes: int
    P: int
    seed: int
    n_test: int
    rule_probs: str = "uniform"
    zipf_a: float | None = None
    runtime: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        """The primary key: sha256 (hex) of the point's canonical JSON, without the runtime options, and
        without the production law when it is uniform."""
        fields = dataclasses.asdict(self)
        del fields["runtime"]
        return hashlib.sha256(canonical_json(_without_uniform_law(fields)).encode()).hexdigest()

    @property
    def grammar(self) -> Grammar:
        """The point's grammar shape and production law (without its seed)."""
        return Grammar(self.v, self.m, self.s, self.L, self.n_classes, self.rule_probs, self.zipf_a)

    def rhm(self) -> RHM:
        """The point's grammar, drawn with its seed."""
        return self.grammar.rhm(self.seed)

    def data(self) -> tuple[RHM, Sample, Sample]:
        """``(rhm, train, test)``: the point's grammar, its ``P`` training and ``n_test`` test samples.

        The recipe of the module docstring (:meth:`lpbook.grammar.RHM.train_test`):
        the same seed gives the same bytes wherever a point is run.
        """
        rhm = self.rhm()
        return (rhm, *rhm.train_test(self.P, self.n_test, self.seed))

    def make_learner(self, cls: type[Learner] | None = None, **runtime) -> Learner:
        """The point's learner, not fitted: ``cls`` (default ``REGISTRY[learner]``) built with the
        grammar's ``v, s, L``, the seed, the options and the runtime options (``runtime`` overrides
        them), and ``n_classes`` for a learner that uses labels."""
        cls = get(self.learner) if cls is None else cls
        extra = {"n_classes": self.n_classes} if cls.uses_labels else {}
        return cls(v=self.v, s=self.s, L=self.L, seed=self.seed, **(self.options | self.runtime | runtime | extra))

    @classmethod
    def make(cls, learner: str, grammar, P: int, seed: int, *, options=None, n_test: int = 2000) -> Point:
        """The one point of ``learner`` on ``grammar`` (a :class:`Grammar` or a mapping) at ``P`` and ``seed``,
        checked as :func:`make_points` checks a sweep's, its runtime options kept apart."""
        return make_points(learner, [grammar], [P], [seed], options=options, n_test=n_test)[0]

@dataclass(frozen=True)
class PointResult:
    """What :func:`lpbook.sweep.run_point` measured: ``accuracy[level]`` in ``[0, 1]`` for each level the
    learner returned, ``seconds`` of fit + transform, the package ``version``, the
    UTC time ``finished``, and ``extra``, the JSON object that a sweep's measure
    recorded (``None`` without one)."""

    point: Point
    accuracy: dict = field(hash=False)
    seconds: float
    version: str
    finished: str
    extra: dict | None = field(default=None, hash=False)

def _check_options(options) -> dict:
    """``options`` as a canonical JSON-compatible dict (``None`` is ``{}``)."""
    options = {} if options is None else options
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise TypeError(f"options must be a dict with str keys, got {options!r}")
    reserved = RESERVED_OPTIONS & options.keys()
    if reserved:
        raise ValueError(f"options must not set {sorted(reserved)}: the sweep sets them")
    try:
        return json.loads(canonical_json(options))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"options must be JSON-serialisable, got {options!r}: {exc}") from None


def _check_ints(name: str, values, minimum: int) -> list[int]:
    """Sorted unique ints ``>= minimum`` from a non-empty iterable."""
    if not isinstance(values, Iterable) or isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be an iterable of integers, got {values!r}")
    values = sorted({check_int(name, x, minimum=minimum) for x in values})
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _check_seeds(seeds) -> list[int]:
    """``range(seeds)`` for an int, else the sorted unique seeds (each ``>= 0``)."""
    if isinstance(seeds, Iterable):
        return _check_ints("seeds", seeds, minimum=0)
    return list(range(check_int("seeds", seeds, minimum=1)))


def make_points(learner, grammars, P_grid, seeds, *, options=None, n_test=2000) -> list[Point]:
    """Every point of a sweep, all checked before any work starts.

    ``grammars``: non-empty iterable of :class:`Grammar` or mappings with keys
    ``v, m, s, L`` (and optionally ``n_classes``, ``rule_probs``, ``zipf_a``); ``P_grid``: training sizes,
    ints ``>= 1``, or a function ``Grammar -> sizes`` that gives each grammar
    its own grid (e.g. :func:`scaled_grid`); ``seeds``: a count ``n >= 1``
    (seeds ``0..n-1``) or an iterable of ints ``>= 0``; ``options``:
    JSON-serialisable keyword arguments of the learner, its runtime options
    (``device``, ``threads``, ``progress``) kept apart in :attr:`Point.runtime`,
    so that they change no key. Also builds the
    learner once per grammar, so that it rejects bad options here, and
    refuses a learner that recovers no level of a grammar (its ``levels`` is
    empty, e.g. ILC at ``L = 1``). Returns the points ordered by grammar,
    ``P``, seed.
    """
    cls = get(learner)
    if not isinstance(grammars, Iterable) or isinstance(grammars, Mapping):
        raise TypeError(f"grammars must be an iterable of grammars, got {grammars!r}")
    grammars = [_as_grammar(g) for g in grammars]
    if not grammars:
        raise ValueError("grammars must not be empty")
    grids = [_check_ints("P_grid", P_grid(g) if callable(P_grid) else P_grid, minimum=1) for g in grammars]
    seeds = _check_seeds(seeds)
    options, runtime = split_runtime(cls, _check_options(options))
    n_test = check_int("n_test", n_test, minimum=1)
    for g, grid in zip(grammars, grids):
        point = Point(learner, options, **dataclasses.asdict(g), P=grid[0], seed=seeds[0], n_test=n_test,
                      runtime=runtime)
        try:
            model = point.make_learner(cls)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"learner {learner!r} rejects options {options} for {g}: {exc}") from None
        if model.levels is not None and not model.levels:
            raise ValueError(
                f"learner {learner!r} recovers no level of {g} (its levels are empty for L={g.L}), "
                "so the sweep would measure nothing; choose a larger L"
            )
    return [
        Point(learner, options, **dataclasses.asdict(g), P=P, seed=seed, n_test=n_test, runtime=runtime)
        for g, grid in zip(grammars, grids)
        for P in grid
        for seed in seeds
    ]


def log_grid(P_min, P_max, n) -> list[int]:
    """About ``n`` log-spaced sample sizes from ``P_min`` to ``P_max`` (both included).

    Returns sorted unique ints: rounding can merge neighbours, so there may be
    fewer than ``n`` when the range is narrow.
    """
    P_min = check_int("P_min", P_min, minimum=1)
    P_max = check_int("P_max", P_max, minimum=P_min)
    n = check_int("n", n, minimum=1)
    return np.unique(np.rint(np.geomspace(P_min, P_max, n)).astype(np.int64)).tolist()


def scaled_grid(low, high, n, scale):
    """A grid per grammar: :func:`log_grid` from ``low * scale(g)`` to ``high * scale(g)``, for :func:`make_points`.

    ``scale`` is a function of a :class:`Grammar` (e.g. ``lambda g: g.v * g.m**3``,
    the predicted sample complexity), so that one sweep covers every grammar
    around its own prediction. ``low <= high`` are positive numbers; the ends
    are rounded to ints ``>= 1``.
    """
    low, high = check_float("low", low, low=0.0), check_float("high", high, low=0.0)
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    n = check_int("n", n, minimum=1)

    def grid(grammar: Grammar) -> list[int]:
        factor = scale(grammar)
        if not 0 < factor < float("inf"):
            raise ValueError(f"scale must be a positive number for every grammar, got {factor} for {grammar}")
        P_min = max(1, round(low * factor))
        return log_grid(P_min, max(P_min, round(high * factor)), n)

    return grid


def point_of(row: Mapping) -> Point:
    """The :class:`Point` of a stored row (:func:`lpbook.storage.load_results`), its options split as :func:`make_points`
    splits them: a row written with runtime options in its identity gives the point they belong to."""
    options, runtime = split_runtime(get(row["learner"]), row["options"])
    law = {name: row.get(name, default) for name, default in (("rule_probs", "uniform"), ("zipf_a", None))}
    return Point(row["learner"], options, *(row[name] for name in ("v", "m", "s", "L", "n_classes", "P", "seed", "n_test")),
                 **law, runtime=runtime)


def misplaced_keys(rows: Iterable[Mapping]) -> list[str]:
    """The keys of ``rows`` that are not their points' keys (:func:`point_of`): rows stored with runtime
    options in their identity, or under a stale key. :func:`lpbook.storage.rekey` rewrites them."""
    return [row["key"] for row in rows if (p := point_of(row)).key != row["key"] or p.runtime]

