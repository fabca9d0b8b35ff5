"""Tests of lpbook.sweep and of the points and storage it runs on: keys, grids, storage, resume, interruption."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

import lpbook
from lpbook import RHM, level_accuracy
from lpbook.learners import REGISTRY, Learner
from lpbook.sweep import (
    DatabaseError,
    Grammar,
    Point,
    group_results,
    load_results,
    log_grid,
    make_points,
    run_point,
    run_sweep,
    scaled_grid,
)

GRAMMARS = [dict(v=4, m=2, s=2, L=2), dict(v=4, m=3, s=2, L=3, n_classes=2)]
P_GRID = [5, 20, 80]


class LeftmostToken(Learner):
    """Toy learner: codes each node by its leftmost token; the root by the majority
    training label of that token (so that the root accuracy grows with P)."""

    uses_labels = True

    def __init__(self, v, s, L, seed=0, *, n_classes=None, root=True):
        super().__init__(v, s, L, seed)
        self.n_classes = n_classes
        self.root = root

    def fit(self, tokens, labels=None):
        tokens = self._check_tokens(tokens)
        labels = self._check_labels(labels, tokens.shape[0], self.n_classes)
        first = tokens[:, 0].astype(np.int64)
        counts = np.bincount(first * self.n_classes + labels, minlength=self.v * self.n_classes)
        counts = counts.reshape(self.v, self.n_classes)
        self.table_ = np.where(counts.any(axis=1), counts.argmax(axis=1), -1)
        return self

    def transform(self, tokens):
        tokens = self._check_tokens(tokens)
        codes = {level: tokens[:, :: self.s**level] for level in range(self.L)}
        if self.root:
            codes[self.L] = self.table_[tokens[:, :1]]
        return codes


@pytest.fixture
def toy(monkeypatch):
    """Register :class:`LeftmostToken` as ``"toy"`` for one test."""
    monkeypatch.setitem(REGISTRY, "toy", LeftmostToken)
    return "toy"


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the points submitted to it."""

    def __init__(self):
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


class RefusingExecutor(Executor):
    """An executor that fails the test if anything is submitted to it."""

    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("nothing should have been submitted")


def sweep(db, learner="toy", executor=None, **kwargs):
    """``run_sweep`` with small defaults, on a pool of 2 threads unless ``executor`` or ``workers`` is given."""
    kwargs = dict(grammars=GRAMMARS, P_grid=P_GRID, seeds=2, n_test=100, progress=False) | kwargs
    if executor is not None or "workers" in kwargs:
        return run_sweep(learner, db=db, executor=executor, **kwargs)
    with ThreadPoolExecutor(2) as pool:
        return run_sweep(learner, db=db, executor=pool, **kwargs)


def deterministic(rows):
    """Rows without the fields that depend on the run (wall time and finishing time)."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "finished")} for row in rows]


def count_rows(db) -> int:
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


# ----------------------------------------------------------------- points
def test_sweep_writes_one_row_per_point(toy, tmp_path):
    db = tmp_path / "r.sqlite"
    rows = sweep(db, options={"root": True})
    assert len(rows) == len(GRAMMARS) * len(P_GRID) * 2 == count_rows(db)
    assert len({row["key"] for row in rows}) == len(rows)
    assert {(row["m"], row["P"], row["seed"]) for row in rows} == {
        (g["m"], P, seed) for g in GRAMMARS for P in P_GRID for seed in (0, 1)
    }
    for row in rows:
        assert set(row["accuracy"]) == set(range(row["L"] + 1))
        assert all(0 <= acc <= 1 for acc in row["accuracy"].values())
        assert row["accuracy"][0] == 1.0  # the tokens themselves
        assert row["version"] == lpbook.__version__
        assert row["options"] == {"root": True}
        assert row["seconds"] >= 0
        assert row["finished"].endswith("+00:00")
    assert {row["n_classes"] for row in rows} == {4, 2}  # n_classes=None stored as v
    assert load_results(db) == rows
    selected = [row for row in rows if row["m"] == 3 and row["P"] == 20]
    assert load_results(db, m=3, P=20) == selected and len(selected) == 2


def test_run_point_follows_the_documented_recipe(toy):
    point = make_points("toy", [dict(v=4, m=2, s=2, L=2)], [50], [3], n_test=300)[0]
    assert Point.make("toy", Grammar(4, 2, 2, 2), 50, 3, n_test=300) == point
    result = run_point(point)
    rhm = RHM(4, 2, 2, 2, seed=3)
    train, test = rhm.sample(50, seed=6), rhm.sample(300, seed=7)
    drawn, drawn_train, drawn_test = point.data()
    assert (drawn.rules[1] == rhm.rules[1]).all() and (drawn_train.tokens == train.tokens).all()
    assert (drawn_test.tokens == test.tokens).all() and (drawn_test.labels == test.labels).all()
    assert point.make_learner().get_params() == LeftmostToken(v=4, s=2, L=2, seed=3, n_classes=4).get_params()
    codes = LeftmostToken(v=4, s=2, L=2, seed=3, n_classes=4).fit(train.tokens, train.labels).transform(test.tokens)
    assert result.accuracy == {
        0: 1.0,
        1: level_accuracy(test.levels[1], codes[1]),
        2: float(np.mean(codes[2][:, 0] == test.labels)),
    }
    assert result.version == lpbook.__version__


def test_rerun_runs_only_missing_points(toy, tmp_path):
    db = tmp_path / "r.sqlite"
    first = sweep(db)
    assert sweep(db, executor=RefusingExecutor()) == first
    with CountingExecutor() as counting:
        extended = sweep(db, P_grid=P_GRID + [320], executor=counting)
    assert counting.submitted == len(GRAMMARS) * 2
    assert [row for row in extended if row["P"] != 320] == first
    assert count_rows(db) == len(extended) == len(first) + len(GRAMMARS) * 2


def test_point_key_is_canonical(toy):
    (one,) = make_points("toy", [Grammar(4, 2, 2, 2)], [10], [0], options={"root": True})
    (same,) = make_points("toy", [dict(v=4, m=2, s=2, L=2, n_classes=4)], [10], [0], options={"root": True})
    (other,) = make_points("toy", [Grammar(4, 2, 2, 2)], [11], [0], options={"root": True})
    assert one == same and one.key == same.key and len(one.key) == 64
    assert other.key != one.key
    ordered = Point("x", {"a": [1, 2], "b": 0}, 4, 2, 2, 2, 4, 10, 0, 100)
    assert Point("x", {"b": 0, "a": [1, 2]}, 4, 2, 2, 2, 4, 10, 0, 100).key == ordered.key


def test_results_do_not_depend_on_the_executor(toy, tmp_path):
    with ThreadPoolExecutor(1) as serial, ThreadPoolExecutor(3) as threads, ProcessPoolExecutor(2) as processes:
        pools = [serial, threads, processes]
        results = [sweep(tmp_path / f"{i}.sqlite", executor=pool) for i, pool in enumerate(pools)]
    assert deterministic(results[0]) == deterministic(results[1]) == deterministic(results[2])


def test_default_process_pool_with_a_learner_of_lpbook(tmp_path):
    pytest.importorskip("lpbook.ilc")
    if "ilc" not in REGISTRY:
        pytest.skip("no learner registered as 'ilc'")
    kwargs = dict(grammars=[dict(v=4, m=2, s=2, L=3)], P_grid=[30, 300], seeds=2)
    threads = sweep(tmp_path / "a.sqlite", learner="ilc", **kwargs)
    processes = sweep(tmp_path / "b.sqlite", learner="ilc", executor=None, workers=2, **kwargs)
    assert deterministic(threads) == deterministic(processes)


# ------------------------------------------------------------------ resume
SLOW_LEARNER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from lpbook.learners import Learner, register

    @register("slow")
    class Slow(Learner):
        def fit(self, tokens, labels=None):
            (Path(os.environ["SLOW_PIDS"]) / str(os.getpid())).touch()
            time.sleep(0.2)
            return self

        def transform(self, tokens):
            return {1: tokens[:, :: self.s]}
    """
)
SLOW_SWEEP = textwrap.dedent(
    """
    import signal, sys
    from concurrent.futures import ThreadPoolExecutor
    import slow_learner  # registers "slow"; a module, so that spawned workers can import it too
    from lpbook.sweep import run_sweep

    # A shell without job control starts background commands with SIGINT ignored, and Python keeps
    # that: restore Python's own handler so that the test's SIGINT interrupts wherever pytest runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pool = dict(executor=ThreadPoolExecutor(1)) if sys.argv[2] == "threads" else dict(workers=1)
    run_sweep("slow", [dict(v=4, m=2, s=2, L=2)], [5, 10, 20, 40], 4, sys.argv[1], n_test=50, progress=False, **pool)
    """
)


def start_slow_sweep(tmp_path, pool):
    """Run :data:`SLOW_SWEEP` (16 points of 0.2 s) into ``tmp_path/r.sqlite``; its workers leave their
    pid as a file name in ``tmp_path/pids``."""
    (tmp_path / "pids").mkdir()
    (tmp_path / "slow_learner.py").write_text(SLOW_LEARNER)
    db = tmp_path / "r.sqlite"
    argv = [sys.executable, "-c", SLOW_SWEEP, str(db), pool]
    # Keep the caller's PYTHONPATH, so that the sweep runs the lpbook under test, not an installed one.
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, SLOW_PIDS=str(tmp_path / "pids"), PYTHONPATH=path)
    return db, subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=env)


class Fast(Learner):
    """The learner of :data:`SLOW_SWEEP` without the sleep."""

    def fit(self, tokens, labels=None):
        return self

    def transform(self, tokens):
        return {1: tokens[:, :: self.s]}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_sweep_resumes_without_loss_or_duplicates(tmp_path, monkeypatch, sig):
    db, proc = start_slow_sweep(tmp_path, "threads")
    deadline = time.monotonic() + 30
    while count_rows(db) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) != 0
    before = load_results(db)
    assert 3 <= len(before) < 16

    monkeypatch.setitem(REGISTRY, "slow", Fast)
    with ThreadPoolExecutor(2) as pool:
        after = run_sweep("slow", [dict(v=4, m=2, s=2, L=2)], [5, 10, 20, 40], 4, db, n_test=50,
                          executor=pool, progress=False)
    assert count_rows(db) == len(after) == 16
    assert sorted((row["P"], row["seed"]) for row in after) == [(P, s) for P in (5, 10, 20, 40) for s in range(4)]
    by_key = {row["key"]: row for row in after}
    assert all(by_key[row["key"]] == row for row in before)


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killing_the_main_process_ends_the_default_pool_workers(tmp_path):
    db, proc = start_slow_sweep(tmp_path, "processes")
    deadline = time.monotonic() + 30
    while not any((tmp_path / "pids").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    (worker,) = {int(path.name) for path in (tmp_path / "pids").iterdir()} - {proc.pid}
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while is_running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not is_running(worker), "a worker of the killed sweep is still running"
    finally:
        if is_running(worker):
            os.kill(worker, signal.SIGKILL)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(learner="nope"), ValueError, r"registered.*toy.*'nope'"),
        (dict(grammars=[]), ValueError, "grammars must not be empty"),
        (dict(grammars=[dict(v=2, m=3, s=2, L=2)]), ValueError, r"m must be <= v\*\*\(s-1\)"),
        (dict(grammars=[dict(v=4, m=2, s=2)]), ValueError, "keys v, m, s, L"),
        (dict(grammars=dict(v=4, m=2, s=2, L=2)), TypeError, "iterable of grammars"),
        (dict(P_grid=[10, 0]), ValueError, "P_grid must be >= 1"),
        (dict(P_grid=[]), ValueError, "P_grid must not be empty"),
        (dict(P_grid=[10.5]), TypeError, "P_grid must be an integer"),
        (dict(seeds=0), ValueError, "seeds must be >= 1"),
        (dict(seeds=[0, -1]), ValueError, "seeds must be >= 0"),
        (dict(n_test=0), ValueError, "n_test must be >= 1"),
        (dict(options={"seed": 3}), ValueError, "options must not set"),
        (dict(options={"root": {1, 2}}), TypeError, "JSON-serialisable"),
        (dict(options={"bogus": 1}), TypeError, "rejects options"),
        (dict(workers=2), ValueError, "either executor or workers"),
        (dict(executor=None, workers=0), ValueError, "workers must be >= 1"),
        (dict(executor="pool"), TypeError, "concurrent.futures.Executor"),
    ],
)
def test_bad_sweep_arguments_raise_before_any_work(toy, tmp_path, kwargs, error, match):
    kwargs = dict(executor=RefusingExecutor()) | kwargs
    with pytest.raises(error, match=match):
        sweep(tmp_path / "r.sqlite", **kwargs)
    assert not (tmp_path / "r.sqlite").exists()


def test_a_failing_point_names_itself(toy, tmp_path, monkeypatch):
    def broken(self, tokens, labels=None):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(LeftmostToken, "fit", broken)
    with pytest.raises(RuntimeError, match=r"Point\(learner='toy'.*ZeroDivisionError: boom"):
        sweep(tmp_path / "r.sqlite")


# --------------------------------------------------------- one writer, db errors
def test_a_second_sweep_into_a_database_in_use_is_refused(tmp_path, monkeypatch):
    db, proc = start_slow_sweep(tmp_path, "threads")  # another process, writing db
    try:
        deadline = time.monotonic() + 30
        while count_rows(db) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the first sweep finished before the second could start"
        monkeypatch.setitem(REGISTRY, "slow", Fast)
        with pytest.raises(DatabaseError, match=rf"db '{db}' is being written by another sweep \(pid {proc.pid} on "):
            run_sweep("slow", [dict(v=4, m=2, s=2, L=2)], [5, 10, 20, 40], 4, db, n_test=50,
                      executor=RefusingExecutor(), progress=False)
        assert load_results(db)  # reading is allowed meanwhile
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # The lock went with the killed process: the rerun takes over and finishes.
    with ThreadPoolExecutor(2) as pool:
        rows = run_sweep("slow", [dict(v=4, m=2, s=2, L=2)], [5, 10, 20, 40], 4, db, n_test=50,
                         executor=pool, progress=False)
    assert len(rows) == count_rows(db) == 16


def test_where_the_lock_is_missing_writing_is_refused_and_reading_allowed(toy, tmp_path, monkeypatch):
    db = tmp_path / "r.sqlite"
    rows = sweep(db)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: import fcntl fails
    assert sweep(db, executor=RefusingExecutor()) == rows  # every point stored: no lock needed
    with pytest.raises(DatabaseError, match="cannot be written here: a sweep locks its database with fcntl.flock"):
        sweep(db, P_grid=P_GRID + [320], executor=RefusingExecutor())
    assert load_results(db) == rows


def test_database_errors_name_the_path_before_any_work(toy, tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database, but long enough to be read as a header " * 4)
    with pytest.raises(DatabaseError, match=rf"db '{junk}' is not a sweep database: file is not a database"):
        sweep(junk, executor=RefusingExecutor())
    folder = tmp_path / "folder.sqlite"
    folder.mkdir()
    with pytest.raises(DatabaseError, match=rf"db '{folder}' is a folder"):
        sweep(folder, executor=RefusingExecutor())
    foreign = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE points (key TEXT PRIMARY KEY, value REAL)")
        conn.commit()
    with pytest.raises(DatabaseError, match=rf"db '{foreign}' is not a sweep database: its table 'points' has the columns \['key', 'value'\]"):
        sweep(foreign, executor=RefusingExecutor())
    with pytest.raises(DatabaseError, match="its table 'points' has the columns"):
        load_results(foreign)


def test_a_learner_that_recovers_no_level_is_refused_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"learner 'ilc' recovers no level of Grammar\(v=4, m=2, s=2, L=1, n_classes=4\)"):
        sweep(tmp_path / "r.sqlite", learner="ilc", grammars=[dict(v=4, m=2, s=2, L=2), dict(v=4, m=2, s=2, L=1)],
              executor=RefusingExecutor())
    assert not (tmp_path / "r.sqlite").exists()


class Chatty(Fast):
    """A learner with a progress bar of its own, shown by default."""

    runtime_params = frozenset({"progress"})

    def __init__(self, v, s, L, seed=0, progress=True):
        super().__init__(v, s, L, seed)
        self.progress = progress

    def fit(self, tokens, labels=None):
        if self.progress:
            raise AssertionError("a learner showed its own progress bar inside a sweep")
        return self


def test_learners_never_show_bars_of_their_own_in_a_sweep(tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "chatty", Chatty)
    rows = sweep(tmp_path / "r.sqlite", learner="chatty", grammars=[dict(v=4, m=2, s=2, L=2)],
                 options={"progress": True})
    assert len(rows) == 2 * len(P_GRID) and rows[0]["options"] == {}  # a runtime option: no part of the point


class Placed(LeftmostToken):
    """:class:`LeftmostToken` with a runtime option ``device``, as the neural learners have."""

    runtime_params = frozenset({"device"})

    def __init__(self, v, s, L, seed=0, *, n_classes=None, root=True, device="cpu"):
        super().__init__(v, s, L, seed, n_classes=n_classes, root=root)
        self.device = device


def test_runtime_options_are_no_part_of_a_points_identity(monkeypatch):
    monkeypatch.setitem(REGISTRY, "placed", Placed)
    plain = make_points("placed", GRAMMARS, P_GRID, 2, options={"root": True})
    placed = make_points("placed", GRAMMARS, P_GRID, 2, options={"root": True, "device": "cuda"})
    assert [p.key for p in plain] == [p.key for p in placed] and plain == placed
    assert all(p.options == {"root": True} and p.runtime == {"device": "cuda"} for p in placed)
    assert make_points("placed", GRAMMARS, P_GRID, 2, options={"root": False})[0].key != plain[0].key
    ilc = make_points("ilc", GRAMMARS[:1], [50], 1)
    assert make_points("ilc", GRAMMARS[:1], [50], 1, options={"progress": False}) == ilc  # what chapters pass
    assert make_points("ilc", GRAMMARS[:1], [50], 1, options={"progress": True})[0].key == ilc[0].key
    if importlib.util.find_spec("torch") is not None:
        net = dict(d_model=8, n_heads=2, max_steps=5)
        keys = {make_points("masked-token", GRAMMARS[1:], [50], 1, options=net | runtime)[0].key
                for runtime in ({}, {"device": "cuda", "threads": 4}, {"progress": False})}
        assert len(keys) == 1


def test_a_sweep_started_on_a_gpu_resumes_on_the_cpu(tmp_path, monkeypatch):
    """A runtime option reaches the learner, and a rerun with another value resumes the sweep instead of redoing it."""
    devices = []

    def fit(self, tokens, labels=None):
        devices.append(self.device)
        return LeftmostToken.fit(self, tokens, labels)

    monkeypatch.setattr(Placed, "fit", fit)
    monkeypatch.setitem(REGISTRY, "placed", Placed)
    db = tmp_path / "r.sqlite"
    started = sweep(db, learner="placed", P_grid=P_GRID[:2], options={"device": "cuda"})  # then interrupted, say
    assert set(devices) == {"cuda"} and all(row["options"] == {} for row in started)
    devices.clear()
    with CountingExecutor() as counting:
        rows = sweep(db, learner="placed", options={"device": "cpu"}, executor=counting)
    assert counting.submitted == len(GRAMMARS) * 2 and set(devices) == {"cpu"}  # only the sizes not stored
    assert [row for row in rows if row["P"] in P_GRID[:2]] == started
    assert count_rows(db) == len(GRAMMARS) * len(P_GRID) * 2


def test_scaled_grid_gives_each_grammar_its_own_grid(toy):
    grid = scaled_grid(0.5, 50, 3, lambda g: g.v * g.m**2)
    points = make_points("toy", [dict(v=4, m=2, s=2, L=2), dict(v=4, m=3, s=2, L=3)], grid, 1)
    assert sorted({p.P for p in points if p.m == 2}) == [8, 80, 800]
    assert sorted({p.P for p in points if p.m == 3}) == [18, 180, 1800]
    with pytest.raises(ValueError, match="low must be <= high"):
        scaled_grid(5, 1, 3, lambda g: 1)
    with pytest.raises(ValueError, match="scale must be a positive number"):
        make_points("toy", [dict(v=4, m=2, s=2, L=2)], scaled_grid(1, 2, 2, lambda g: -1.0), 1)


def test_load_results_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "missing.sqlite")
    (tmp_path / "junk.sqlite").write_text("not a database")
    with pytest.raises(ValueError, match="not a sweep database"):
        load_results(tmp_path / "junk.sqlite")
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    with pytest.raises(ValueError, match="not a sweep database"):
        load_results(tmp_path / "empty.sqlite")
    with pytest.raises(ValueError, match="filters must be among"):
        load_results(tmp_path / "empty.sqlite", accuracy=1)


def test_log_grid():
    assert log_grid(10, 1000, 3) == [10, 100, 1000]
    assert log_grid(1, 3, 10) == [1, 2, 3]
    grid = log_grid(100, 10**6, 13)
    assert grid == sorted(set(grid)) and grid[0] == 100 and grid[-1] == 10**6 and len(grid) == 13
    assert all(isinstance(P, int) for P in grid)
    with pytest.raises(ValueError, match="P_max must be >= 10"):
        log_grid(10, 5, 3)
    with pytest.raises(ValueError, match="P_min must be >= 1"):
        log_grid(0, 5, 3)
    with pytest.raises(ValueError, match="n must be >= 1"):
        log_grid(1, 5, 0)


# ------------------------------------------------------- grammars with a production law, and reading caches
from lpbook.storage import _COLUMNS, OPTIONAL_COLUMNS  # noqa: E402, I001
from lpbook.sweep import cached_sweep  # noqa: E402


def test_uniform_points_keep_the_keys_they_had_before_laws_were_stored():
    (point,) = make_points("ilc", [dict(v=8, m=2, s=2, L=3)], [64], [1], n_test=300)
    before = dict(learner="ilc", options={}, v=8, m=2, s=2, L=3, n_classes=8, P=64, seed=1, n_test=300)
    assert point.key == hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert point.rule_probs == "uniform" and point.zipf_a is None
    with pytest.raises(ValueError, match="zipf_a is only used with rule_probs='zipf'"):  # a uniform law has no exponent
        Grammar(8, 2, 2, 3, zipf_a=2.0)


def test_grammars_with_a_production_law_are_checked_and_keyed_apart():
    zipf = Grammar(8, 3, 2, 3, rule_probs="zipf")
    assert zipf.zipf_a == 1.0 and zipf.as_dict()["rule_probs"] == "zipf"
    assert "rule_probs" not in Grammar(8, 3, 2, 3).as_dict()
    keys = {p.key for g in (dict(v=8, m=3, s=2, L=3), dict(v=8, m=3, s=2, L=3, rule_probs="zipf", zipf_a=1.0),
                            dict(v=8, m=3, s=2, L=3, rule_probs="zipf", zipf_a=2.0))
            for p in make_points("ilc", [g], [64], [0])}
    assert len(keys) == 3
    with pytest.raises(ValueError, match="zipf_a"):
        make_points("ilc", [dict(v=8, m=3, s=2, L=3, rule_probs="zipf", zipf_a=-1.0)], [64], [0])
    with pytest.raises(ValueError, match="rule_probs"):
        make_points("ilc", [dict(v=8, m=3, s=2, L=3, rule_probs="pareto")], [64], [0])


def test_a_zipf_sweep_is_stored_with_its_law_and_runs_on_the_skewed_grammar(tmp_path):
    db = tmp_path / "s.sqlite"
    flat, skewed = dict(v=8, m=3, s=2, L=3), dict(v=8, m=3, s=2, L=3, rule_probs="zipf", zipf_a=2.0)
    rows = {name: run_sweep("ilc", [g], [200], [0], db, n_test=300, workers=1, progress=False)
            for name, g in (("flat", flat), ("skewed", skewed))}
    assert rows["skewed"][0]["rule_probs"] == "zipf" and rows["skewed"][0]["zipf_a"] == 2.0
    assert rows["flat"][0]["rule_probs"] == "uniform" and rows["flat"][0]["zipf_a"] is None
    assert rows["flat"][0]["accuracy"] != rows["skewed"][0]["accuracy"]
    (point,) = make_points("ilc", [skewed], [200], [0], n_test=300)
    assert point.rhm().production_probs[1].max() > 0.6  # the law reaches the grammar: 1 / (1 + 1/4 + 1/9)
    assert run_point(point).accuracy == rows["skewed"][0]["accuracy"]
    assert load_results(db, rule_probs="zipf") == rows["skewed"]
    assert load_results(db, zipf_a=None) == rows["flat"]
    assert len(group_results(load_results(db))) == 2  # two curves
    assert cached_sweep("ilc", [skewed], [200], [0], db, n_test=300) == rows["skewed"]


def test_a_database_from_before_laws_were_stored_reads_as_uniform_and_resumes(tmp_path):
    db = tmp_path / "old.sqlite"
    grammar = dict(v=8, m=2, s=2, L=3)
    (point,) = make_points("ilc", [grammar], [64], [0], n_test=300)
    result = run_point(point)
    old = [name for name in _COLUMNS if name not in OPTIONAL_COLUMNS]  # before laws and measures were stored
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"CREATE TABLE points ({', '.join(old)}, PRIMARY KEY (key))")
        values = dict(key=point.key, learner="ilc", options="{}", v=8, m=2, s=2, L=3, n_classes=8, P=64, seed=0,
                      n_test=300, accuracy=json.dumps(result.accuracy), seconds=0.0, version="old", finished="then")
        conn.execute(f"INSERT INTO points VALUES ({', '.join('?' * len(old))})", [values[name] for name in old])
        conn.commit()
    (row,) = load_results(db)
    assert row["rule_probs"] == "uniform" and row["zipf_a"] is None and row["version"] == "old" and row["extra"] is None
    assert load_results(db, rule_probs="zipf") == []
    rows = run_sweep("ilc", [grammar], [64, 128], [0], db, n_test=300, workers=1, progress=False)
    assert [r["version"] for r in rows] == ["old", lpbook.__version__]  # the old point is kept, not recomputed
    run_sweep("ilc", [dict(grammar, rule_probs="zipf")], [64], [0], db, n_test=300, workers=1, progress=False)
    assert {r["rule_probs"] for r in load_results(db)} == {"uniform", "zipf"}


def test_cached_sweep_reads_only_complete_sweeps(tmp_path):
    db = tmp_path / "s.sqlite"
    grammar = dict(v=8, m=2, s=2, L=3)
    assert cached_sweep("ilc", [grammar], [64, 128], [0], db) is None  # no file
    run_sweep("ilc", [grammar], [64], [0], db, n_test=300, workers=1, progress=False)
    assert cached_sweep("ilc", [grammar], [64, 128], [0], db, n_test=300) is None  # half of it
    rows = run_sweep("ilc", [grammar], [64, 128], [0], db, n_test=300, workers=1, progress=False)
    assert cached_sweep("ilc", [grammar], [64, 128], [0], db, n_test=300) == rows


# ------------------------------------------------------------- Ctrl-C, refusals, read-only
NAPPING_LEARNER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from lpbook.learners import Learner, register

    @register("napping")
    class Napping(Learner):
        '''Sleeps NAP seconds in fit at P >= 20 (none below), leaving its pid in NAPPING_PIDS.'''

        def fit(self, tokens, labels=None):
            if len(tokens) >= 20:
                (Path(os.environ["NAPPING_PIDS"]) / str(os.getpid())).touch()
                time.sleep(float(os.environ["NAP"]))
            return self

        def transform(self, tokens):
            return {1: tokens[:, :: self.s]}
    """
)


def napping_sweep(tmp_path, P, *extra, nap=0.0, **popen):
    """``lpbook sweep`` of the napping learner (4 seeds, 2 workers) in a process of its own, into tmp_path/r.sqlite."""
    (tmp_path / "pids").mkdir(exist_ok=True)
    (tmp_path / "napping_learner.py").write_text(NAPPING_LEARNER)
    argv = ["sweep", "--learner", "napping", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "--P", *map(str, P),
            "--seeds", "4", "--n-test", "20", "--db", str(tmp_path / "r.sqlite"), "--workers", "2", "--no-progress",
            *extra]
    # Python's own SIGINT handler, as in SLOW_SWEEP: a background command of a shell without job control
    # starts with SIGINT ignored.
    code = (f"import signal, sys, napping_learner\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            f"from lpbook.__main__ import main\nsys.exit(main({argv!r}))")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, NAPPING_PIDS=str(tmp_path / "pids"), NAP=str(nap), PYTHONPATH=path)
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_stops_a_sweep_at_once_and_says_what_it_kept_and_dropped(tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "napping", Fast)  # the napping learner's 4 points at P = 5, which do not nap
    with ThreadPoolExecutor(2) as pool:
        run_sweep("napping", [dict(v=4, m=2, s=2, L=2)], [5], 4, tmp_path / "r.sqlite", n_test=20, executor=pool,
                  progress=False)
    # The 8 points at P = 20, 40 take a minute each; Ctrl-C (SIGINT to the whole process group, as a
    # terminal sends it) once both workers are napping.
    proc = napping_sweep(tmp_path, [5, 20, 40], nap=60, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "pids").iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = {int(p.name) for p in (tmp_path / "pids").iterdir()}
    assert len(workers) == 2, "the workers did not start"
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - start
    assert proc.returncode == 130
    said = re.fullmatch(r"lpbook: interrupted: 4 points of this sweep are stored \(0 computed in this run\); "
                        r"(\d+) were in flight and are dropped, (\d+) had not started: "
                        r"rerun the same command to resume\n", err)
    assert said and int(said[1]) >= 2 and int(said[1]) + int(said[2]) == 8, err
    assert seconds < 5, f"the sweep took {seconds:.1f} s to stop"
    print(f"stopped {seconds:.2f} s after Ctrl-C")
    time.sleep(0.5)
    assert not any(is_running(pid) for pid in workers), "a worker is still running"
    assert count_rows(tmp_path / "r.sqlite") == 4


def test_a_sweep_with_nothing_to_do_needs_no_write_access(toy, tmp_path):
    from conftest import read_only

    folder = tmp_path / "results"
    folder.mkdir()
    db = folder / "r.sqlite"
    first = sweep(db)
    (folder / "r.sqlite.lock").unlink()  # a database copied or checked out without its lock file
    with read_only(folder):
        again = sweep(db, executor=RefusingExecutor())
    assert again == first and sorted(p.name for p in folder.iterdir()) == ["r.sqlite"]


def test_a_refused_db_leaves_nothing_behind(toy, tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database, but long enough to be read as a header " * 4)
    folder = tmp_path / "folder.sqlite"
    folder.mkdir()
    foreign = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE points (key TEXT PRIMARY KEY, value REAL)")
        conn.commit()
    before = sorted(p.name for p in tmp_path.iterdir())
    for db, match in [(junk, "is not a sweep database"), (folder, "is a folder"), (foreign, "is not a sweep database"),
                      (tmp_path / "nodir" / "r.sqlite", "its folder does not exist")]:
        with pytest.raises((DatabaseError, FileNotFoundError), match=match):
            sweep(db, executor=RefusingExecutor())
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_folder_as_db_gets_a_clear_message(toy, tmp_path):
    with pytest.raises(DatabaseError, match=rf"db '{tmp_path}' is a folder: give the path of a file in it, "
                                            rf"such as '{tmp_path / 'sweep.sqlite'}'"):
        sweep(tmp_path, executor=RefusingExecutor())


@pytest.mark.slow
def test_no_worker_traceback_when_a_jupyter_kernel_shuts_down_after_a_sweep(tmp_path):
    # A chapter keeps one pool of workers for its sweeps; when the notebook ends, jupyter_client
    # interrupts the kernel's whole process group (SIGINT) before shutting it down.
    jupyter_client = pytest.importorskip("jupyter_client")
    code = textwrap.dedent(
        f"""
        from lpbook.sweep import process_pool, run_sweep
        pool = process_pool(2)
        rows = run_sweep("ilc", [dict(v=4, m=2, s=2, L=3)], [20, 40], 1, {str(tmp_path / 'r.sqlite')!r},
                         n_test=20, executor=pool, progress=False)
        assert len(rows) == 2
        """
    )
    manager = jupyter_client.KernelManager(kernel_name="python3")
    with open(tmp_path / "kernel.err", "w") as err:
        manager.start_kernel(stderr=err, stdout=err, cwd=str(tmp_path))
        client = manager.client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=120)
            reply = client.execute_interactive(code, timeout=300, output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
            manager.shutdown_kernel()
    said = (tmp_path / "kernel.err").read_text()
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said
