"""Sweep databases: one SQLite file per sweep, one row per point, one writer at a time.

A sweep writes one row per point to a SQLite file (table ``points``, :data:`SCHEMA`),
keyed by :attr:`lpbook.points.Point.key`. Only the sweep's own process writes,
through :func:`insert`, which commits each point at once, so an interrupted
sweep loses at most the points in flight, and a point is never stored twice.

One sweep at a time. A database belongs to one running sweep: while it runs,
the sweep holds an exclusive lock (:func:`sole_writer`) on the file ``DB.lock``
next to it, and a second sweep into the same database is refused at once
with a :class:`DatabaseError` that names the holder. The lock goes with the
process, even after a ``kill -9``, so an interrupted sweep never blocks its
rerun. On platforms without ``fcntl`` (Windows) writing is refused with a
:class:`DatabaseError` that says so, never done without the lock. A ``db`` that no
sweep can write (a folder, a file that is not a sweep database, a missing
folder) is refused (:func:`check_writable_db`) before the lock file is
created, so a refusal leaves nothing behind. Reading, with
:func:`load_results`, is always allowed. :func:`rekey` rewrites a database
whose keys hold runtime options.

A chapter keeps its sweeps in a folder of its own, :func:`cache_dir`, so
that a rerun resumes them.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .learners import get, split_runtime
from .points import SETTING_FIELDS, Point, PointResult, _check_options, canonical_json, point_of

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
    zipf_a    REAL,              -- its Zipf exponent; NULL for uniform laws
    extra     TEXT               -- JSON object that the sweep's measure recorded; NULL without a measure
)
"""
#: The columns that a database written before production laws were stored
#: lacks: name -> (SQL type, the value its uniform points hold). A writer adds
#: them (``ALTER TABLE``); a reader reads those values.
LAW_COLUMNS = {"rule_probs": ("TEXT NOT NULL", "'uniform'"), "zipf_a": ("REAL", "NULL")}
#: The columns that a database may lack, as :data:`LAW_COLUMNS`: those, and ``extra``
#: (a database written before measures were stored reads ``NULL`` there).
OPTIONAL_COLUMNS = {**LAW_COLUMNS, "extra": ("TEXT", "NULL")}

_COLUMNS = (
    "key", "learner", "options", "v", "m", "s", "L", "n_classes",
    "P", "seed", "n_test", "accuracy", "seconds", "version", "finished", *OPTIONAL_COLUMNS,
)
_FILTERS = frozenset(_COLUMNS) - {"key", "accuracy", "seconds", "finished", "extra"}


class DatabaseError(ValueError):
    """A sweep database that cannot be opened, read or written, or that another sweep is writing.

    The message always names the database's path.
    """


@contextmanager
def database_errors(db):
    """Re-raise SQLite's errors (which never name the file) as :class:`DatabaseError` naming ``db``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DatabaseError(f"db {os.fspath(db)!r}: {type(exc).__name__}: {exc}") from exc


def _points_columns(conn: sqlite3.Connection, db) -> list[str]:
    """The columns of ``db``'s table ``points`` (empty if it has none): those of :data:`SCHEMA`, less some of
    :data:`OPTIONAL_COLUMNS` (a database written before they were stored). :class:`DatabaseError` if
    ``db`` is no SQLite file or its ``points`` has other columns."""
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(points)")]
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"db {os.fspath(db)!r} is not a sweep database: {exc}") from None
    if columns and not (set(columns) <= set(_COLUMNS) and set(_COLUMNS) - set(columns) <= OPTIONAL_COLUMNS.keys()):
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


def check_writable_db(db) -> None:
    """Refuse, before anything is created beside it, a ``db`` that no sweep can write into.

    A folder, a missing folder, and an existing file that is not a sweep
    database (:func:`_points_columns`) raise; a missing file or an existing
    sweep database (or an empty SQLite file) pass.
    """
    _check_folder(db)
    if Path(db).exists():
        with closing(_open_existing(db, table=False)) as conn, database_errors(db):
            _points_columns(conn, db)


def connect(db) -> sqlite3.Connection:
    """Open (creating if needed) the sweep database ``db`` and its table; refuse a foreign table ``points``."""
    _check_folder(db)
    with database_errors(db):
        conn = sqlite3.connect(os.fspath(db), timeout=60)
        try:
            columns = _points_columns(conn, db)
            if not columns:
                conn.execute(SCHEMA)
            for name, (kind, default) in OPTIONAL_COLUMNS.items():  # a database from before they were stored
                if columns and name not in columns:
                    conn.execute(f"ALTER TABLE points ADD COLUMN {name} {kind} DEFAULT {default}")
            conn.commit()
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def sole_writer(db):
    """Hold the writer's lock of ``db`` (see the module docstring), or raise :class:`DatabaseError`.

    The lock is ``fcntl.flock``, which Linux and macOS have; where it is
    missing (Windows), writing is refused with a :class:`DatabaseError` that
    says so, rather than done without the lock.
    """
    try:
        import fcntl
    except ImportError:
        raise DatabaseError(
            f"db {os.fspath(db)!r} cannot be written here: a sweep locks its database with fcntl.flock, which "
            "this platform lacks (run sweeps on Linux or macOS; reading a database, and a sweep whose every "
            "point is stored, need no lock)"
        ) from None
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
    with database_errors(db):
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, timeout=60)
        try:
            if not _points_columns(conn, db) and table:
                raise DatabaseError(f"db {os.fspath(db)!r} is not a sweep database: it has no table 'points'")
        except BaseException:
            conn.close()
            raise
    return conn


def stored_keys(conn: sqlite3.Connection) -> set[str]:
    """The keys of the points that the open database ``conn`` holds."""
    return {key for (key,) in conn.execute("SELECT key FROM points")}


def insert(conn: sqlite3.Connection, result: PointResult) -> None:
    """Store one result and commit at once; a key already present is left untouched."""
    p = result.point
    values = (
        p.key, p.learner, canonical_json(p.options), p.v, p.m, p.s, p.L, p.n_classes,
        p.P, p.seed, p.n_test, canonical_json(result.accuracy), result.seconds,
        result.version, result.finished, p.rule_probs, p.zipf_a,
        None if result.extra is None else canonical_json(result.extra),
    )
    placeholders = ", ".join("?" * len(_COLUMNS))
    conn.execute(f"INSERT OR IGNORE INTO points ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)
    conn.commit()


def _as_row(values: tuple) -> dict:
    row = dict(zip(_COLUMNS, values))
    row["options"] = json.loads(row["options"])
    row["accuracy"] = {int(level): acc for level, acc in json.loads(row["accuracy"]).items()}
    row["extra"] = None if row["extra"] is None else json.loads(row["extra"])
    return row


def load_results(db, **filters) -> list[dict]:
    """The stored points of ``db`` as plain dicts, sorted by setting, ``P``, seed.

    Each row has the :class:`~lpbook.points.Point` fields (``options`` a dict), ``key``,
    ``accuracy`` (``{level: accuracy}``, int keys), ``seconds``, ``version``,
    ``finished`` and ``extra`` (what the sweep's measure recorded, a dict, or ``None``). ``filters`` keep the rows whose field equals the given
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
        filters["options"] = canonical_json(options)
    where = " AND ".join(f"{name} IS ?" for name in filters) or "1"  # IS: NULL-safe equality
    order = ", ".join(SETTING_FIELDS + ("P", "seed"))
    with closing(_open_existing(db)) as conn, database_errors(db):
        present = _points_columns(conn, db)
        columns = [name if name in present else f"{OPTIONAL_COLUMNS[name][1]} AS {name}" for name in _COLUMNS]
        cursor = conn.execute(
            f"SELECT * FROM (SELECT {', '.join(columns)} FROM points) WHERE {where} ORDER BY {order}",
            tuple(filters.values()),
        )
        return [_as_row(values) for values in cursor]


def stored_rows(points: list[Point], db) -> list[dict] | None:
    """The rows of ``points`` (of one learner and ``n_test``) if the existing ``db`` holds them all, else ``None``."""
    with closing(_open_existing(db)) as conn, database_errors(db):
        stored = stored_keys(conn)
    keys = {p.key for p in points}
    if not keys <= stored:
        return None
    return [row for row in load_results(db, learner=points[0].learner, n_test=points[0].n_test) if row["key"] in keys]


def rekey(db) -> dict[str, int]:
    """Rewrite the points of the sweep database ``db`` that hold runtime options in their identity.

    Each row gets the key and options of its :func:`~lpbook.points.point_of` point: its
    learner's runtime options (``device``, ``threads``, ``progress``) leave its
    ``options`` and its key. Rows that become the same point (one stored with
    ``progress=False``, one without) keep the one that finished first. The
    results, versions and times are untouched; the rewrite is one transaction
    under the writer's lock, so it is refused while a sweep writes ``db``. Rerunning
    it changes nothing. Returns ``{"points": rows read, "rekeyed": rows rewritten, "merged": rows dropped}``.
    """
    check_writable_db(db)
    if not Path(db).is_file():
        raise FileNotFoundError(f"db {os.fspath(db)!r} does not exist")
    with sole_writer(db):
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
                rekeyed.append((key, canonical_json(point.options), kept["key"]))
        with closing(_open_existing(db)) as conn, database_errors(db):
            with conn:  # one transaction: the losers go first, so that no new key meets an old one
                conn.executemany("DELETE FROM points WHERE key = ?", [(key,) for key in dropped])
                conn.executemany("UPDATE points SET key = ?, options = ? WHERE key = ?", rekeyed)
    return {"points": len(rows), "rekeyed": len(rekeyed), "merged": len(dropped)}


# ------------------------------------------------------------- the chapters' folders
#: The environment variable that chooses the folder of the chapters' sweeps.
CACHE_VARIABLE = "LPBOOK_CACHE"


def user_cache_root() -> Path:
    """The user's cache folder for lpbook: ``$LPBOOK_CACHE`` if set, else the platform's convention.

    ``~/.cache/lpbook`` on Linux (``$XDG_CACHE_HOME/lpbook`` when set),
    ``~/Library/Caches/lpbook`` on macOS, ``%LOCALAPPDATA%\\lpbook\\Cache`` on Windows.
    """
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "lpbook"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "lpbook" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "lpbook"


def cache_dir(chapter: str) -> Path:
    """The folder of ``chapter``'s sweep databases, created if needed: ``<root>/<version>/<chapter>``.

    ``<root>`` is :func:`user_cache_root` (set ``LPBOOK_CACHE`` to move it, e.g.
    to a Google Drive folder on Colab, or to a fresh folder to recompute
    everything); ``<version>`` is ``lpbook.__version__``, so a new release
    never reuses the points of an older one. The folder is the same on every
    run, so a rerun of the chapter finds the points already computed
    (:func:`lpbook.sweep.run_sweep` skips them). ``chapter`` is a short name
    such as ``"ilc"``, letters, digits, ``-`` and ``_``.
    """
    from . import __version__

    if not isinstance(chapter, str) or not chapter or not all(c.isalnum() or c in "-_" for c in chapter):
        raise ValueError(f"chapter must be a non-empty name of letters, digits, '-' and '_', got {chapter!r}")
    folder = user_cache_root() / __version__ / chapter
    folder.mkdir(parents=True, exist_ok=True)
    return folder
