"""Sample-complexity sweeps: run a learner over grammars x sample sizes x seeds.

A *point* is one training run, fully described by a :class:`Point`: the
learner's registered name and options, the grammar ``(v, m, s, L, n_classes)``
with its production law (``rule_probs``, ``zipf_a``; see
:class:`~lpbook.grammar.RHM`), the number of training samples ``P``, the seed
and the test-set size ``n_test``. Seed ``seed`` draws a fresh grammar ``RHM(..., seed=seed)``, the
training set ``sample(P, seed=2*seed)`` (nested across ``P``) and the held-out
test set ``sample(n_test, seed=2*seed + 1)``; the learner gets ``seed`` too.

Storage. :func:`run_sweep` writes one row per point to a SQLite file (table
``points``), keyed by :attr:`Point.key`, the sha256 of the point's canonical
JSON (which leaves the production law out when it is uniform, so that points
of the paper's grammars keep the keys they had before laws were stored, and
leaves out the learner's runtime options, ``device``, ``threads`` and
``progress``, so that a sweep resumes whatever the machine; :func:`rekey`
rewrites a database stored with them).
Only the main process writes, and it commits each point as soon as it
finishes, so an interrupted sweep (Ctrl-C, ``kill -9``) loses at most the
points in flight; rerunning the same call skips the points already stored
and never rewrites them. On Ctrl-C a sweep stops at once: it cancels the
points not started, stores the results already returned, ends the workers
of its own pool with the points they run, and raises
:class:`SweepInterrupted`, which says how many points were kept and how many
dropped. A sweep whose every point is stored only reads the file: it needs
no write access and takes no lock. The ``seconds`` column is the wall time of the
learner's ``fit`` and ``transform`` only: drawing the grammar and the samples
and scoring the codes are not included.

One sweep at a time. A database belongs to one running sweep: while it runs,
:func:`run_sweep` holds an exclusive lock (``flock``) on the file ``DB.lock``
next to it, and a second sweep into the same database is refused at once
with a :class:`DatabaseError` that names the holder. The lock goes with the
process, even after a ``kill -9``, so an interrupted sweep never blocks its
rerun. (On platforms without ``fcntl`` there is no lock.) A ``db`` that no
sweep can write (a folder, a file that is not a sweep database, a missing
folder) is refused before the lock file is created, so a refusal leaves
nothing behind. Reading, with :func:`load_results`, is always allowed.

Statistics. :func:`estimate_pstar` reads the sample complexity ``P*`` off the
median accuracy curve over seeds, with a bootstrap over seeds;
:func:`fit_exponent` regresses ``log P*`` on ``log m`` (or on ``L``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import numbers
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import BrokenExecutor, CancelledError, Executor, ProcessPoolExecutor, as_completed
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import lpbook

from ._validate import check_int
from .grammar import RHM, Sample
from .learners import Learner, get, parameters, split_runtime
from .metrics import level_accuracy

#: Keyword arguments that :func:`run_point` passes to every learner itself.
RESERVED_OPTIONS = frozenset({"v", "s", "L", "seed", "n_classes"})

#: The table, one row per finished point. ``options`` and ``accuracy`` are JSON.
SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key       TEXT PRIMARY KEY,  -- Point.key: sha256 of the point's canonical JSON
    learner   TEXT    NOT NULL,
    options   TEXT    NOT NULL,  -- canonical JSON object (sorted keys)
    v         INTEGER NOT NULL,
    m         INTEGER NOT NULL,
    s         INTEGER NOT NULL,
    L         INTEGER NOT NULL,
    n_classes INTEGER NOT NULL,
    P         INTEGER NOT NULL,
    seed      INTEGER NOT NULL,
    n_test    INTEGER NOT NULL,
    accuracy  TEXT    NOT NULL,  -- JSON {level: accuracy in [0, 1]}
    seconds   REAL    NOT NULL,  -- wall time of the learner's fit + transform (not sampling, not scoring)
    version   TEXT    NOT NULL,  -- lpbook.__version__ that computed the point
    finished  TEXT    NOT NULL,  -- UTC ISO 8601 time the point finished
    rule_probs TEXT   NOT NULL DEFAULT 'uniform',  -- the production law: 'uniform' or 'zipf'
    zipf_a    REAL               -- its Zipf exponent; NULL for uniform laws
)
"""
#: The columns that a database written before production laws were stored
#: lacks: name -> (SQL type, the value its uniform points hold). A writer adds
#: them (``ALTER TABLE``); a reader reads those values.
LAW_COLUMNS = {"rule_probs": ("TEXT NOT NULL", "'uniform'"), "zipf_a": ("REAL", "NULL")}

_COLUMNS = (
    "key", "learner", "options", "v", "m", "s", "L", "n_classes",
    "P", "seed", "n_test", "accuracy", "seconds", "version", "finished", *LAW_COLUMNS,
)
_FILTERS = frozenset(_COLUMNS) - {"key", "accuracy", "seconds", "finished"}
#: Row fields that identify one curve: everything but ``P`` and ``seed``.
SETTING_FIELDS = ("learner", "options", "v", "m", "s", "L", "n_classes", "n_test", "rule_probs", "zipf_a")


def _canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- the points
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
        return {name: value for name, value in fields.items() if name not in LAW_COLUMNS}
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
        return hashlib.sha256(_canonical_json(_without_uniform_law(fields)).encode()).hexdigest()

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
    """What :func:`run_point` measured: ``accuracy[level]`` in ``[0, 1]`` for each level the
    learner returned, ``seconds`` of fit + transform, the package ``version`` and the
    UTC time ``finished``."""

    point: Point
    accuracy: dict = field(hash=False)
    seconds: float
    version: str
    finished: str


def _make_learner(cls: type[Learner], point: Point) -> Learner:
    """The point's learner (:meth:`Point.make_learner`); one that has a ``progress`` option gets
    ``progress=False``: inside a sweep, only the sweep's own bar is shown."""
    return point.make_learner(cls, **({"progress": False} if "progress" in parameters(cls) else {}))


def _check_options(options) -> dict:
    """``options`` as a canonical JSON-compatible dict (``None`` is ``{}``)."""
    options = {} if options is None else options
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise TypeError(f"options must be a dict with str keys, got {options!r}")
    reserved = RESERVED_OPTIONS & options.keys()
    if reserved:
        raise ValueError(f"options must not set {sorted(reserved)}: the sweep sets them")
    try:
        return json.loads(_canonical_json(options))
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
            model = _make_learner(cls, point)
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
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
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


# ------------------------------------------------------------- one point
def _root_accuracy(labels: np.ndarray, codes) -> float:
    """Plain accuracy of root codes of shape ``(P,)`` or ``(P, 1)`` against ``labels`` ``(P,)``."""
    codes = np.asarray(codes)
    if codes.shape not in {labels.shape, labels.shape + (1,)}:
        raise ValueError(f"root codes must have shape ({labels.size}, 1), got {codes.shape}")
    return float(np.mean(codes.reshape(labels.shape) == labels))


def _accuracies(test: Sample, codes: Mapping, L: int) -> dict[int, float]:
    """``{level: accuracy}`` of a learner's ``codes`` on the test sample."""
    if not codes:
        raise ValueError("the learner returned codes for no level")
    accuracy = {}
    for level, level_codes in codes.items():
        level = check_int("level of the learner's codes", level, minimum=0)
        if level > L:
            raise ValueError(f"the learner returned codes for level {level} > L = {L}")
        if level == L:
            accuracy[level] = _root_accuracy(test.labels, level_codes)
        else:
            accuracy[level] = level_accuracy(test.levels[level], level_codes)
    return dict(sorted(accuracy.items()))


def run_point(point: Point, learner: type[Learner] | None = None) -> PointResult:
    """Train and test one point; deterministic apart from ``seconds`` and ``finished``.

    ``learner`` is the class to use, by default ``REGISTRY[point.learner]``;
    :func:`run_sweep` passes it so that worker processes that do not share the
    main process's registry (``spawn``) import it by reference.
    """
    cls = get(point.learner) if learner is None else learner
    _, train, test = point.data()
    model = _make_learner(cls, point)
    start = time.perf_counter()
    model.fit(train.tokens, train.labels if cls.uses_labels else None)
    codes = model.transform(test.tokens)
    seconds = time.perf_counter() - start
    finished = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return PointResult(point, _accuracies(test, codes, point.L), seconds, lpbook.__version__, finished)


def cached_sweep(learner, grammars, P_grid, seeds, db, *, options=None, n_test=2000) -> list[dict] | None:
    """The rows of a sweep if ``db`` already holds every one of its points, else ``None``; runs nothing.

    Same arguments as :func:`run_sweep`. A chapter that only *reads* another
    chapter's sweeps uses it to draw what is stored and skip what is not.
    """
    points = make_points(learner, grammars, P_grid, seeds, options=options, n_test=n_test)
    return _stored_rows(points, db) if Path(db).exists() else None


def _stored_rows(points: list[Point], db) -> list[dict] | None:
    """The rows of ``points`` (of one learner and ``n_test``) if the existing ``db`` holds them all, else ``None``."""
    with closing(_open_existing(db)) as conn, _database_errors(db):
        stored = _stored_keys(conn)
    keys = {p.key for p in points}
    if not keys <= stored:
        return None
    return [row for row in load_results(db, learner=points[0].learner, n_test=points[0].n_test) if row["key"] in keys]


# ---------------------------------------------------------------- storage
class DatabaseError(ValueError):
    """A sweep database that cannot be opened, read or written, or that another sweep is writing.

    The message always names the database's path.
    """


@contextmanager
def _database_errors(db):
    """Re-raise SQLite's errors (which never name the file) as :class:`DatabaseError` naming ``db``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DatabaseError(f"db {os.fspath(db)!r}: {type(exc).__name__}: {exc}") from exc


def _points_columns(conn: sqlite3.Connection, db) -> list[str]:
    """The columns of ``db``'s table ``points`` (empty if it has none): those of :data:`SCHEMA`, or those
    less :data:`LAW_COLUMNS` (a database written before laws were stored). :class:`DatabaseError` if
    ``db`` is no SQLite file or its ``points`` has other columns."""
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(points)")]
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"db {os.fspath(db)!r} is not a sweep database: {exc}") from None
    if columns and set(columns) not in (set(_COLUMNS), set(_COLUMNS) - LAW_COLUMNS.keys()):
        raise DatabaseError(
            f"db {os.fspath(db)!r} is not a sweep database: its table 'points' has the columns {columns}, "
            f"not {list(_COLUMNS)}; use another file"
        )
    return columns


def _check_folder(db) -> None:
    if Path(db).is_dir():
        raise DatabaseError(f"db {os.fspath(db)!r} is a folder: give the path of a file in it, such as "
                            f"{os.path.join(os.fspath(db), 'sweep.sqlite')!r}")
    if not Path(db).resolve().parent.is_dir():
        raise FileNotFoundError(f"db {os.fspath(db)!r} cannot be created: its folder does not exist")


def _check_writable_db(db) -> None:
    """Refuse, before anything is created beside it, a ``db`` that no sweep can write into.

    A folder, a missing folder, and an existing file that is not a sweep
    database (:func:`_points_columns`) raise; a missing file or an existing
    sweep database (or an empty SQLite file) pass.
    """
    _check_folder(db)
    if Path(db).exists():
        with closing(_open_existing(db, table=False)) as conn, _database_errors(db):
            _points_columns(conn, db)


def _connect(db) -> sqlite3.Connection:
    """Open (creating if needed) the sweep database ``db`` and its table; refuse a foreign table ``points``."""
    _check_folder(db)
    with _database_errors(db):
        conn = sqlite3.connect(os.fspath(db), timeout=60)
        try:
            columns = _points_columns(conn, db)
            if not columns:
                conn.execute(SCHEMA)
            for name, (kind, default) in LAW_COLUMNS.items():  # a database from before laws were stored
                if columns and name not in columns:
                    conn.execute(f"ALTER TABLE points ADD COLUMN {name} {kind} DEFAULT {default}")
            conn.commit()
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def _sole_writer(db):
    """Hold the writer's lock of ``db`` (see the module docstring), or raise :class:`DatabaseError`."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: no lock
        yield
        return
    _check_folder(db)
    path = os.fspath(db) + ".lock"
    with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock.read().strip() or "a process that has just started"
            raise DatabaseError(
                f"db {os.fspath(db)!r} is being written by another sweep ({holder}); a database takes one "
                "sweep at a time: wait for that one to finish (rerunning it resumes it), or use another file"
            ) from None
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        lock.truncate(0)
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}, since {since}")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)


def _open_existing(db, table: bool = True) -> sqlite3.Connection:
    """Open an existing sweep database without creating anything; with ``table``, refuse one without its table."""
    path = Path(db)
    if path.is_dir():
        _check_folder(db)
    if not path.is_file():
        raise FileNotFoundError(f"db {os.fspath(db)!r} does not exist")
    # mode=rw rather than ro: a read-only connection cannot roll back the hot
    # journal that a sweep killed mid-commit leaves behind.
    with _database_errors(db):
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, timeout=60)
        try:
            if not _points_columns(conn, db) and table:
                raise DatabaseError(f"db {os.fspath(db)!r} is not a sweep database: it has no table 'points'")
        except BaseException:
            conn.close()
            raise
    return conn


def _stored_keys(conn: sqlite3.Connection) -> set[str]:
    return {key for (key,) in conn.execute("SELECT key FROM points")}


def _insert(conn: sqlite3.Connection, result: PointResult) -> None:
    """Store one result and commit at once; a key already present is left untouched."""
    p = result.point
    values = (
        p.key, p.learner, _canonical_json(p.options), p.v, p.m, p.s, p.L, p.n_classes,
        p.P, p.seed, p.n_test, _canonical_json(result.accuracy), result.seconds,
        result.version, result.finished, p.rule_probs, p.zipf_a,
    )
    placeholders = ", ".join("?" * len(_COLUMNS))
    conn.execute(f"INSERT OR IGNORE INTO points ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)
    conn.commit()


def _as_row(values: tuple) -> dict:
    row = dict(zip(_COLUMNS, values))
    row["options"] = json.loads(row["options"])
    row["accuracy"] = {int(level): acc for level, acc in json.loads(row["accuracy"]).items()}
    return row


def load_results(db, **filters) -> list[dict]:
    """The stored points of ``db`` as plain dicts, sorted by setting, ``P``, seed.

    Each row has the :class:`Point` fields (``options`` a dict), ``key``,
    ``accuracy`` (``{level: accuracy}``, int keys), ``seconds``, ``version``
    and ``finished``. ``filters`` keep the rows whose field equals the given
    value, e.g. ``load_results(db, learner="ilc", m=3)``; allowed fields:
    learner, options, v, m, s, L, n_classes, P, seed, n_test, version,
    rule_probs, zipf_a (``None`` for uniform laws). With ``learner``, an
    ``options`` filter ignores that learner's runtime options, which no row
    stores. A database written before laws were stored reads as uniform.
    """
    unknown = filters.keys() - _FILTERS
    if unknown:
        raise ValueError(f"filters must be among {sorted(_FILTERS)}, got {sorted(unknown)}")
    if "options" in filters:
        options = _check_options(filters["options"])
        if "learner" in filters:  # runtime options are no part of a stored point
            options = split_runtime(get(filters["learner"]), options)[0]
        filters["options"] = _canonical_json(options)
    where = " AND ".join(f"{name} IS ?" for name in filters) or "1"  # IS: NULL-safe equality
    order = ", ".join(SETTING_FIELDS + ("P", "seed"))
    with closing(_open_existing(db)) as conn, _database_errors(db):
        present = _points_columns(conn, db)
        columns = [name if name in present else f"{LAW_COLUMNS[name][1]} AS {name}" for name in _COLUMNS]
        cursor = conn.execute(
            f"SELECT * FROM (SELECT {', '.join(columns)} FROM points) WHERE {where} ORDER BY {order}",
            tuple(filters.values()),
        )
        return [_as_row(values) for values in cursor]


def point_of(row: Mapping) -> Point:
    """The :class:`Point` of a stored row (:func:`load_results`), its options split as :func:`make_points`
    splits them: a row written with runtime options in its identity gives the point they belong to."""
    options, runtime = split_runtime(get(row["learner"]), row["options"])
    law = {name: row.get(name, default) for name, default in (("rule_probs", "uniform"), ("zipf_a", None))}
    return Point(row["learner"], options, *(row[name] for name in ("v", "m", "s", "L", "n_classes", "P", "seed", "n_test")),
                 **law, runtime=runtime)


def misplaced_keys(rows: Iterable[Mapping]) -> list[str]:
    """The keys of ``rows`` that are not their points' keys (:func:`point_of`): rows stored with runtime
    options in their identity, or under a stale key. :func:`rekey` rewrites them."""
    return [row["key"] for row in rows if (p := point_of(row)).key != row["key"] or p.runtime]


def rekey(db) -> dict[str, int]:
    """Rewrite the points of the sweep database ``db`` that hold runtime options in their identity.

    Each row gets the key and options of its :func:`point_of` point: its
    learner's runtime options (``device``, ``threads``, ``progress``) leave its
    ``options`` and its key. Rows that become the same point (one stored with
    ``progress=False``, one without) keep the one that finished first. The
    results, versions and times are untouched; the rewrite is one transaction
    under the writer's lock, so it is refused while a sweep writes ``db``. Rerunning
    it changes nothing. Returns ``{"points": rows read, "rekeyed": rows rewritten, "merged": rows dropped}``.
    """
    _check_writable_db(db)
    if not Path(db).is_file():
        raise FileNotFoundError(f"db {os.fspath(db)!r} does not exist")
    with _sole_writer(db):
        rows = load_results(db)
        by_key: dict[str, list[tuple[Point, dict]]] = {}
        for row in rows:
            point = point_of(row)
            by_key.setdefault(point.key, []).append((point, row))
        rekeyed, dropped = [], []
        for key, members in by_key.items():
            members.sort(key=lambda member: member[1]["finished"])
            point, kept = members[0]
            dropped += [row["key"] for _, row in members[1:]]
            if kept["key"] != key or kept["options"] != point.options:
                rekeyed.append((key, _canonical_json(point.options), kept["key"]))
        with closing(_open_existing(db)) as conn, _database_errors(db):
            with conn:  # one transaction: the losers go first, so that no new key meets an old one
                conn.executemany("DELETE FROM points WHERE key = ?", [(key,) for key in dropped])
                conn.executemany("UPDATE points SET key = ?, options = ? WHERE key = ?", rekeyed)
    return {"points": len(rows), "rekeyed": len(rekeyed), "merged": len(dropped)}


# ---------------------------------------------------------------- the sweep
def _worker_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says that a point's worker died or its cluster dropped it, not that the point failed.

    A broken process pool, a cancelled future (this process cancels only after
    the last result), and Dask's ``KilledWorker`` (raised once a point has been
    on more dying workers than the scheduler's ``allowed-failures`` allows).
    """
    if isinstance(exc, (BrokenExecutor, CancelledError)):
        return True
    distributed = sys.modules.get("distributed")  # loaded whenever the executor is Dask's
    return distributed is not None and isinstance(exc, distributed.KilledWorker)


def _collect(futures: dict, conn: sqlite3.Connection, bar, stored: set) -> None:
    """Store each result as it arrives, adding its future to ``stored``.

    A point that failed stops the sweep with its description. A point whose
    worker was lost (:func:`_worker_lost`) does not: the others are still
    stored, and then a ``RuntimeError`` says how many were left for the next run.
    """
    lost = []
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as exc:
            if _worker_lost(exc):
                lost.append(futures[future])
                continue
            raise RuntimeError(f"{futures[future]} failed: {type(exc).__name__}: {exc}") from exc
        _insert(conn, result)
        stored.add(future)
        bar.update()
    if lost:
        raise RuntimeError(
            f"{len(lost)} points were lost with their workers and are not stored (e.g. {lost[0]}); "
            "the others are: rerun the same sweep to run the lost ones"
        )


def _init_worker() -> None:
    """Initializer of the default pool's workers.

    - One thread per worker: the pool already uses every core, and nested
      thread pools (BLAS, OpenMP in scikit-learn, torch) would oversubscribe them.
    - Ignore SIGINT (see below): the main process ends its workers on Ctrl-C.
    - End the worker when the main process dies: without it a ``kill -9`` of
      the main process would leave its workers waiting forever for work.
    """
    os.environ["OMP_NUM_THREADS"] = "1"  # read by torch when it starts its thread pool
    threadpool_limits(1)
    # Ctrl-C in a terminal reaches every process of its group, and a Jupyter kernel that shuts down
    # sends SIGINT to its children: the sweep's process decides what happens to its workers, and a
    # worker never prints a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()

    def watch():
        try:
            multiprocessing.connection.wait([parent.sentinel])
        except OSError:  # the sentinel was closed because this worker is exiting: nothing to watch
            return
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def process_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """The default executor of :func:`run_sweep`: ``workers`` processes (default ``os.cpu_count()``, every core).

    Workers are started with "spawn", not "fork" (forking a process that
    already runs thread pools, such as OpenMP in scikit-learn or torch, can
    deadlock the children), use one thread each, ignore SIGINT from their
    first instruction (:class:`_QuietPool`), and end when the main process
    dies. Pass one pool to several :func:`run_sweep` calls to start the
    workers only once.
    """
    workers = (os.cpu_count() or 1) if workers is None else check_int("workers", workers, minimum=1)
    context = multiprocessing.get_context("spawn")
    return _QuietPool(max_workers=workers, mp_context=context, initializer=_init_worker)


class _QuietPool(ProcessPoolExecutor):
    """A process pool whose workers ignore SIGINT from the moment they start.

    A spawned worker is started inside ``submit``; while it is, this process
    ignores SIGINT, and the worker inherits that (it survives ``exec``, and
    Python keeps an ignored SIGINT). So a Ctrl-C, or the SIGINT that Jupyter
    sends a kernel's whole process group when it shuts down, never finds a
    worker importing lpbook or waiting for work. Only the main thread can
    change signal handlers; elsewhere ``submit`` is unchanged (and
    :func:`_init_worker` ignores SIGINT once the worker has started).
    """

    def submit(self, fn, /, *args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return super().submit(fn, *args, **kwargs)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return super().submit(fn, *args, **kwargs)
        finally:  # a handler installed from C reads as None: Python's own then takes its place
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_sweep`, raised once every finished point is stored.

    Its message says how many points of the sweep the database holds, how
    many were in flight (running, or handed to a worker: their work is
    dropped) and how many had not started; the attributes ``stored``,
    ``computed`` (stored by this run), ``dropped`` and ``not_started`` hold
    the counts.
    """

    def __init__(self, stored: int, computed: int, dropped: int, not_started: int):
        self.stored, self.computed, self.dropped, self.not_started = stored, computed, dropped, not_started
        super().__init__(
            f"{stored} point{'s' * (stored != 1)} of this sweep {'is' if stored == 1 else 'are'} stored "
            f"({computed} computed in this run); {dropped} {'was' if dropped == 1 else 'were'} in flight and "
            f"{'is' if dropped == 1 else 'are'} dropped, {not_started} had not started: "
            "rerun the same command to resume"
        )


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """End the workers of this sweep's own pool now, with the points they run, and shut it down."""
    if hasattr(executor, "terminate_workers"):  # Python >= 3.14
        executor.terminate_workers()
    else:
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def _execute(todo: list[Point], conn, executor: Executor | None, workers: int | None, bar, stored_before: int) -> None:
    """Run ``todo`` on ``executor`` (or a process pool of its own) and store the results.

    On Ctrl-C: the points not started are cancelled, results already returned
    are stored, the points still running are dropped (with the workers of its
    own pool, which end at once), and :class:`SweepInterrupted` says so;
    ``stored_before`` is the number of the sweep's points stored before this run.
    """
    own = executor is None
    if own:
        executor = process_pool(min(workers or os.cpu_count() or 1, len(todo)))
    cls = get(todo[0].learner)
    futures, stored = {}, set()
    try:
        # Largest P first: the slowest points start early, which balances the workers.
        for point in sorted(todo, key=lambda p: -p.P):
            futures[executor.submit(run_point, point, cls)] = point
        _collect(futures, conn, bar, stored)
    except BaseException as exc:
        cancelled = sum(future.cancel() for future in futures)
        if own:  # do not wait for the points still running
            _stop_workers(executor)
        if not isinstance(exc, KeyboardInterrupt):
            raise
        for future in futures:  # finished, but not stored yet: store it
            if future not in stored and future.done() and not future.cancelled() and future.exception() is None:
                _insert(conn, future.result())
                stored.add(future)
        dropped = len(futures) - cancelled - len(stored)  # in flight: handed to a worker, never returned
        raise SweepInterrupted(stored_before + len(stored), len(stored), dropped,
                               cancelled + len(todo) - len(futures)) from None
    if own:  # every point is done: wait for the workers, so that nothing is left to close at exit
        executor.shutdown(wait=True)


def run_sweep(
    learner,
    grammars,
    P_grid,
    seeds,
    db,
    *,
    options=None,
    n_test=2000,
    executor: Executor | None = None,
    workers=None,
    progress=True,
) -> list[dict]:
    """Run every point of the sweep that ``db`` does not hold yet; return all its rows.

    The arguments up to ``n_test`` are those of :func:`make_points`. Points run
    on ``executor`` (any :class:`concurrent.futures.Executor`, left open, such
    as a Dask cluster's ``client.get_executor(pure=False)``), or by default on a process
    pool of ``workers`` processes (default ``os.cpu_count()``, every core). Workers only
    compute and return results: each finished point is committed to the
    SQLite file ``db`` at once, by this process only. Ctrl-C raises
    :class:`SweepInterrupted` at once, every finished point stored. Rerunning an interrupted
    call finishes it; so does rerunning one that raised because workers were
    lost with points in flight. A sweep whose points are all stored returns
    them without writing anything. A second sweep into a database that a sweep is writing
    is refused (:class:`DatabaseError`, see the module docstring), as is a
    file that is not a sweep database, or a folder, before any point runs. ``progress``
    shows the sweep's tqdm bar; learners never show bars of their own inside a
    sweep (those with a ``progress`` option get ``progress=False``). The
    learner's runtime options (``device``, ``threads``, ``progress``) reach it
    but change no key: a sweep started with ``device="cuda"`` resumes on the
    CPU, and ``options=dict(progress=False)`` hits the keys of ``options=None``. Returns
    the rows of the sweep's points as :func:`load_results` gives them.
    """
    points = make_points(learner, grammars, P_grid, seeds, options=options, n_test=n_test)
    if executor is not None and workers is not None:
        raise ValueError("give either executor or workers, not both")
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
    if workers is not None:
        check_int("workers", workers, minimum=1)
    _check_writable_db(db)  # before the lock file is created beside it
    done = _stored_rows(points, db) if Path(db).exists() else None
    if done is not None:  # nothing to do: no lock, nothing written
        return done
    with _sole_writer(db), closing(_connect(db)) as conn, _database_errors(db):
        stored = _stored_keys(conn)
        todo = [p for p in points if p.key not in stored]
        with tqdm(total=len(points), initial=len(points) - len(todo), unit="point", disable=not progress) as bar:
            if todo:
                _execute(todo, conn, executor, workers, bar, len(points) - len(todo))
    keys = {p.key for p in points}
    return [row for row in load_results(db, learner=learner, n_test=n_test) if row["key"] in keys]


# ---------------------------------------------------------------- statistics
def setting_of(row: Mapping) -> tuple:
    """What identifies the curve a row belongs to: ``(field, value)`` pairs of :data:`SETTING_FIELDS`.

    Fields a row lacks count as ``None``; options are compared as canonical JSON.
    """
    return tuple(
        (name, _canonical_json(row.get(name)) if name == "options" else row.get(name)) for name in SETTING_FIELDS
    )


def group_results(rows: Iterable[Mapping]) -> dict[tuple, list]:
    """Rows split by :func:`setting_of` (one curve each), in order of first appearance."""
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault(setting_of(row), []).append(row)
    return groups


@dataclass(frozen=True)
class PStar:
    """A sample complexity read off the median accuracy curve.

    ``value`` is ``P*`` in samples, NaN when ``censored`` is ``"below"`` (the
    median curve is at or above ``threshold`` already at the smallest ``P``)
    or ``"above"`` (it never reaches it); ``censored`` is ``None`` otherwise.
    ``[low, high]`` is the bootstrap percentile interval at ``confidence``.
    ``boot`` (shape ``(n_boot,)``) holds the bootstrap draws of ``P*``, where
    a draw censored below is ``0`` and one censored above is ``inf``; so are
    ``low`` and ``high`` when the interval leaves the grid. ``P_grid`` and
    ``median`` (same length) are the median curve itself. ``missing`` lists
    the ``(P, seed)`` pairs of the grid ``P_grid x seeds`` that the results
    lack (the medians use the seeds present at each ``P``).
    """

    value: float
    low: float
    high: float
    censored: str | None
    level: int
    threshold: float
    confidence: float
    n_seeds: int
    P_grid: tuple
    median: tuple
    boot: np.ndarray = field(repr=False, compare=False)
    missing: tuple = ()


def accuracy_matrix(rows: list, level: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid ``P`` of shape ``(n_P,)`` and the accuracies of ``level``, shape ``(n_P, n_seeds)``.

    The columns are the seeds found in ``rows``; a ``(P, seed)`` pair that
    ``rows`` lack is NaN (see :func:`missing_pairs`).
    """
    P_grid = sorted({row["P"] for row in rows})
    seeds = sorted({row["seed"] for row in rows})
    acc = np.full((len(P_grid), len(seeds)), np.nan)
    filled = np.zeros(acc.shape, dtype=bool)
    at_P, at_seed = {P: i for i, P in enumerate(P_grid)}, {s: j for j, s in enumerate(seeds)}
    for row in rows:
        i, j = at_P[row["P"]], at_seed[row["seed"]]
        if filled[i, j]:
            raise ValueError(f"results hold two rows for P={row['P']}, seed={row['seed']}")
        if level not in row["accuracy"]:
            levels = sorted(row["accuracy"])
            raise ValueError(f"level must be one of the levels in the results {levels}, got {level}")
        acc[i, j], filled[i, j] = row["accuracy"][level], True
    if len(P_grid) < 2:
        raise ValueError(f"results must hold at least 2 values of P, got {P_grid}")
    return np.array(P_grid, dtype=float), acc


def missing_pairs(rows: list) -> list[tuple[int, int]]:
    """The ``(P, seed)`` pairs of the grid (every ``P`` x every seed found in ``rows``) that ``rows`` lack."""
    present = {(row["P"], row["seed"]) for row in rows}
    P_grid, seeds = sorted({P for P, _ in present}), sorted({seed for _, seed in present})
    return [(P, seed) for P in P_grid for seed in seeds if (P, seed) not in present]


def _crossing(log_P: np.ndarray, curves: np.ndarray, threshold: float) -> np.ndarray:
    """``log P*`` of each column of ``curves`` (shape ``(n_P, k)``, on the grid ``log_P``).

    Linear interpolation in ``(log P, accuracy)`` between the last grid point
    below ``threshold`` and the first at or above; ``-inf`` where the first
    point is already at or above, ``+inf`` where none is. Shape ``(k,)``.
    NaN entries (no data at that ``P``) are skipped.
    """
    n_P, k = curves.shape
    valid = ~np.isnan(curves)
    reached = valid & (curves >= threshold)
    first = reached.argmax(axis=0)
    # The last valid grid point at or before each row, -1 where there is none.
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(n_P)[:, None], -1), axis=0)
    columns = np.arange(k)
    lower = np.where(first > 0, last_valid[np.maximum(first - 1, 0), columns], -1)
    y0, y1 = curves[np.maximum(lower, 0), columns], curves[first, columns]
    x0, x1 = log_P[np.maximum(lower, 0)], log_P[first]
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = x0 + (threshold - y0) * (x1 - x0) / (y1 - y0)
    crossing = np.where(lower < 0, -np.inf, crossing)
    return np.where(reached.any(axis=0), crossing, np.inf)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of ``draws`` (infinite draws allowed: no interpolation)."""
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2], method="inverted_cdf")
    return float(low), float(high)


def _check_fraction(name: str, value, *, one_allowed: bool) -> float:
    """``value`` as a float in ``(0, 1)``, or ``(0, 1]`` when ``one_allowed``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (0 < value < 1 or (one_allowed and value == 1)):
        raise ValueError(f"{name} must be in (0, 1{']' if one_allowed else ')'}, got {value}")
    return float(value)


def _check_one_setting(rows: list) -> None:
    """Raise a ``ValueError`` naming the fields in which ``rows`` differ, unless they share one setting."""
    settings = list(group_results(rows))
    if len(settings) > 1:
        mixed = {name: sorted({dict(s)[name] for s in settings}, key=repr) for name in SETTING_FIELDS}
        described = ", ".join(f"{name} in {values}" for name, values in mixed.items() if len(values) > 1)
        raise ValueError(
            f"results must come from one setting (learner, options, grammar, n_test); they mix {described}"
        )


def estimate_pstar(results, level, threshold=0.9, *, n_boot=1000, confidence=0.95, seed=0) -> PStar:
    """The sample complexity ``P*`` at which the median accuracy of ``level`` first reaches ``threshold``.

    ``results`` are rows as :func:`load_results` gives them, all of one
    setting (learner, options, grammar, ``n_test``), with at least 2 values of
    ``P``. For each ``P`` the accuracy is the median over the seeds present
    there: ``(P, seed)`` pairs that are missing (e.g. seeds added later on
    another grid) are left out and listed in :attr:`PStar.missing`. ``P*`` interpolates linearly in
    ``(log P, accuracy)`` (see :class:`PStar` for censoring). The bootstrap
    resamples the seeds with replacement, the same resample for every ``P``
    since training sets are nested across ``P``, ``n_boot`` times from the
    generator seeded by ``seed``.
    """
    rows = list(results)
    if not rows:
        raise ValueError("results must not be empty")
    _check_one_setting(rows)
    level = check_int("level", level, minimum=0)
    threshold = _check_fraction("threshold", threshold, one_allowed=True)
    confidence = _check_fraction("confidence", confidence, one_allowed=False)
    n_boot = check_int("n_boot", n_boot, minimum=1)
    P_grid, acc = accuracy_matrix(rows, level)
    log_P = np.log(P_grid)
    n_seeds = acc.shape[1]
    resample = np.random.default_rng(seed).integers(0, n_seeds, size=(n_boot, n_seeds))
    with warnings.catch_warnings():  # a resample may hold no seed at some P: that P is skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(acc, axis=1)
        boot_medians = np.nanmedian(acc[:, resample], axis=-1)  # (n_P, n_boot)
    log_value = _crossing(log_P, median[:, None], threshold)[0]
    boot = np.exp(_crossing(log_P, boot_medians, threshold))  # (n_boot,)
    boot.flags.writeable = False
    censored = None if np.isfinite(log_value) else ("below" if np.isneginf(log_value) else "above")
    low, high = _interval(boot, confidence)
    return PStar(
        value=float(np.exp(log_value)) if censored is None else float("nan"),
        low=low,
        high=high,
        censored=censored,
        level=level,
        threshold=threshold,
        confidence=confidence,
        n_seeds=n_seeds,
        P_grid=tuple(int(P) for P in P_grid),
        median=tuple(float(a) for a in median),
        boot=boot,
        missing=tuple(missing_pairs(rows)),
    )


def pstar_ratio(numerator: PStar, denominator: PStar, confidence: float = 0.95) -> tuple[float, float, float]:
    """``numerator.value / denominator.value`` and the percentile interval at ``confidence`` of the
    ratio of their bootstrap draws (independent sweeps, so draws are paired by index only).

    Returns ``(ratio, low, high)``; the ratio is NaN when either ``P*`` is censored, and
    draws censored on both sides are left out of the interval (NaN if none remains).
    """
    if not (isinstance(numerator, PStar) and isinstance(denominator, PStar)):
        raise TypeError("numerator and denominator must be PStar results of estimate_pstar")
    if numerator.boot.size != denominator.boot.size:
        raise ValueError(f"numerator and denominator must have as many bootstrap draws, got "
                         f"{numerator.boot.size} and {denominator.boot.size}")
    confidence = _check_fraction("confidence", confidence, one_allowed=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = numerator.boot / denominator.boot
        value = numerator.value / denominator.value
    draws = draws[~np.isnan(draws)]
    low, high = _interval(draws, confidence) if draws.size else (float("nan"), float("nan"))
    return float(value), low, high


@dataclass(frozen=True)
class Exponent:
    """A least-squares fit ``log P* = intercept + slope * X``, ``X = log x`` or ``x``.

    ``[low, high]`` is the bootstrap percentile interval of ``slope`` at
    ``confidence``, over the ``n_boot`` replicates whose P* draws were all
    finite (replicates with a draw censored off the grid are left out).
    ``n_points`` finite P* values entered the fit.
    """

    slope: float
    low: float
    high: float
    intercept: float
    log_x: bool
    confidence: float
    n_points: int
    n_boot: int


def _slopes(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of each row of ``Y`` (shape ``(k, n)``) against ``X`` (shape ``(n,)``)."""
    Xc = X - X.mean()
    return (Y - Y.mean(axis=-1, keepdims=True)) @ Xc / (Xc @ Xc)


def fit_exponent(x, pstars, log_x=True, *, n_boot=1000, confidence=0.95, seed=0) -> Exponent:
    """Regress ``log P*`` on ``log x`` (exponent in ``m``) or, with ``log_x=False``, on ``x`` (growth in ``L``).

    ``x`` and ``pstars`` (:class:`PStar` results) have equal lengths; censored
    P* are left out, and at least 2 finite ones at distinct ``x`` must remain.
    Each of ``n_boot`` bootstrap replicates draws one of each P*'s bootstrap
    draws (independently, from the generator seeded by ``seed``) and refits.
    """
    pstars = list(pstars)
    if not all(isinstance(p, PStar) for p in pstars):
        raise TypeError("pstars must be PStar results of estimate_pstar")
    x = np.asarray(x, dtype=float)
    if x.shape != (len(pstars),) or not np.isfinite(x).all():
        raise ValueError(f"x must hold len(pstars) = {len(pstars)} finite numbers, got {x.tolist()}")
    if log_x and (x <= 0).any():
        raise ValueError(f"x must be > 0 when log_x is true, got {x.tolist()}")
    confidence = _check_fraction("confidence", confidence, one_allowed=False)
    n_boot = check_int("n_boot", n_boot, minimum=1)
    finite = np.isfinite([p.value for p in pstars])
    if np.unique(x[finite]).size < 2:
        raise ValueError(f"fit_exponent needs at least 2 finite P* at distinct x, got x={x[finite].tolist()}")
    kept = [p for p, ok in zip(pstars, finite) if ok]
    X = np.log(x[finite]) if log_x else x[finite]
    Y = np.log([p.value for p in kept])
    slope = float(_slopes(X, Y))
    rng = np.random.default_rng(seed)
    draws = np.stack([p.boot[rng.integers(0, p.boot.size, n_boot)] for p in kept], axis=1)  # (n_boot, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = _slopes(X, np.log(draws))
    boot = boot[np.isfinite(boot)]
    low, high = _interval(boot, confidence) if boot.size else (float("nan"), float("nan"))
    return Exponent(
        slope=slope,
        low=low,
        high=high,
        intercept=float(Y.mean() - slope * X.mean()),
        log_x=bool(log_x),
        confidence=confidence,
        n_points=int(finite.sum()),
        n_boot=int(boot.size),
    )


def try_fit_exponent(x, pstars, **kwargs) -> Exponent | None:
    """:func:`fit_exponent`, or ``None`` when fewer than two ``P*`` were measured (censored ones do not count)."""
    return fit_exponent(x, pstars, **kwargs) if sum(p.censored is None for p in pstars) >= 2 else None
