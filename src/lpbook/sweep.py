"""Sample-complexity sweeps: run a learner over grammars x sample sizes x seeds.

A sweep is a list of points (:mod:`lpbook.points`: :class:`Point`,
:func:`make_points`, the grids :func:`log_grid` and :func:`scaled_grid`), run
by :func:`run_sweep` into a SQLite database (:mod:`lpbook.storage`); ``P*``
and its fits are read off the rows by :mod:`lpbook.pstar`. This module runs
points: :func:`run_point` trains and tests one, and :func:`run_sweep` runs
every point that the database does not hold yet, on a process pool of its
own (:func:`process_pool`) or any executor (a Dask cluster's, say).

Only the sweep's process writes: it commits each point as soon as it
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

For the chapters, this module also gives the names of :mod:`lpbook.points`,
:mod:`lpbook.storage` and :mod:`lpbook.pstar` that they import from it.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import BrokenExecutor, CancelledError, Executor, ProcessPoolExecutor, as_completed
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import lpbook

from ._validate import check_int
from .grammar import Sample
from .learners import Learner, get, parameters
from .metrics import level_accuracy
from .points import canonical_json
from .points import (  # noqa: F401  (re-exported: the chapters import them from here)
    RESERVED_OPTIONS,
    Grammar,
    Point,
    PointResult,
    log_grid,
    make_points,
    scaled_grid,
)
from .pstar import (  # noqa: F401  (re-exported: the chapters import them from here)
    SETTING_FIELDS,
    Exponent,
    PStar,
    accuracy_matrix,
    estimate_pstar,
    fit_exponent,
    group_results,
    missing_pairs,
    pstar_ratio,
    setting_of,
    try_fit_exponent,
)
from .storage import DatabaseError, load_results  # noqa: F401  (re-exported: the chapters import them from here)
from .storage import check_writable_db, connect, database_errors, insert, sole_writer, stored_keys, stored_rows


def _make_learner(cls: type[Learner], point: Point) -> Learner:
    """The point's learner (:meth:`Point.make_learner`); one that has a ``progress`` option gets
    ``progress=False``: inside a sweep, only the sweep's own bar is shown."""
    return point.make_learner(cls, **({"progress": False} if "progress" in parameters(cls) else {}))


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


def run_point(point: Point, learner: type[Learner] | None = None, measure: Callable | None = None) -> PointResult:
    """Train and test one point; deterministic apart from ``seconds`` and ``finished``.

    ``learner`` is the class to use, by default ``REGISTRY[point.learner]``;
    :func:`run_sweep` passes it so that worker processes that do not share the
    main process's registry (``spawn``) import it by reference. ``measure``,
    if given, is called as ``measure(point, model, (rhm, train, test))`` on the
    fitted learner and returns a JSON-compatible dict, kept as the result's
    ``extra`` (say, a network's test loss against its Bayes floor); its time is
    not counted in ``seconds``.
    """
    cls = get(point.learner) if learner is None else learner
    data = point.data()
    _, train, test = data
    model = _make_learner(cls, point)
    start = time.perf_counter()
    model.fit(train.tokens, train.labels if cls.uses_labels else None)
    codes = model.transform(test.tokens)
    seconds = time.perf_counter() - start
    extra = None if measure is None else _check_extra(measure(point, model, data))
    finished = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return PointResult(point, _accuracies(test, codes, point.L), seconds, lpbook.__version__, finished, extra)


def _check_extra(extra) -> dict:
    """What a measure returned, checked: a dict with str keys, that JSON can store."""
    if not isinstance(extra, Mapping) or not all(isinstance(key, str) for key in extra):
        raise TypeError(f"a sweep's measure must return a dict with str keys, got {type(extra).__name__}")
    try:
        return json.loads(canonical_json(dict(extra)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a sweep's measure must return JSON-serialisable values: {exc}") from None


def cached_sweep(learner, grammars, P_grid, seeds, db, *, options=None, n_test=2000) -> list[dict] | None:
    """The rows of a sweep if ``db`` already holds every one of its points, else ``None``; runs nothing.

    Same arguments as :func:`run_sweep`. A chapter that only *reads* another
    chapter's sweeps uses it to draw what is stored and skip what is not.
    """
    points = make_points(learner, grammars, P_grid, seeds, options=options, n_test=n_test)
    return stored_rows(points, db) if Path(db).exists() else None


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
        insert(conn, result)
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


def _execute(todo: list[Point], conn, executor: Executor | None, workers: int | None, bar, stored_before: int,
             measure: Callable | None = None) -> None:
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
            futures[executor.submit(run_point, point, cls, measure)] = point
        _collect(futures, conn, bar, stored)
    except BaseException as exc:
        if own:  # do not wait for the points still running
            # The pool's own thread cancels the waiting points when it shuts down: a future cancelled
            # here, as its workers end, makes CPython 3.11 print an InvalidStateError traceback (gh-107219).
            waiting = {future for future in futures if not future.running() and not future.done()}
            _stop_workers(executor)
        else:
            waiting = {future for future in futures if future.cancel()}
        if not isinstance(exc, KeyboardInterrupt):
            raise
        for future in futures:  # finished, but not stored yet: store it
            if future not in stored and future.done() and not future.cancelled() and future.exception() is None:
                insert(conn, future.result())
                stored.add(future)
        not_started = len(waiting - stored) + len(todo) - len(futures)
        dropped = len(futures) - len(waiting - stored) - len(stored)  # handed to a worker, never returned
        raise SweepInterrupted(stored_before + len(stored), len(stored), dropped, not_started) from None
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
    measure: Callable | None = None,
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
    CPU, and ``options=dict(progress=False)`` hits the keys of ``options=None``.
    ``measure`` (see :func:`run_point`; a module-level function, so that
    worker processes import it by reference) stores what it returns as each
    new row's ``extra``; it is no part of a point's key, so a database holds
    one sweep's measure. Returns the rows of the sweep's points as
    :func:`load_results` gives them.
    """
    points = make_points(learner, grammars, P_grid, seeds, options=options, n_test=n_test)
    if executor is not None and workers is not None:
        raise ValueError("give either executor or workers, not both")
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
    if workers is not None:
        check_int("workers", workers, minimum=1)
    check_writable_db(db)  # before the lock file is created beside it
    done = stored_rows(points, db) if Path(db).exists() else None
    if done is not None:  # nothing to do: no lock, nothing written
        return done
    with sole_writer(db), closing(connect(db)) as conn, database_errors(db):
        stored = stored_keys(conn)
        todo = [p for p in points if p.key not in stored]
        with tqdm(total=len(points), initial=len(points) - len(todo), unit="point", disable=not progress) as bar:
            if todo:
                _execute(todo, conn, executor, workers, bar, len(points) - len(todo), measure)
    keys = {p.key for p in points}
    return [row for row in load_results(db, learner=learner, n_test=n_test) if row["key"] in keys]
