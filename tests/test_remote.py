"""Sweeps on a real Dask cluster (``distributed.LocalCluster`` of worker processes), with a worker killed mid-sweep."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import textwrap
import threading
import time
from contextlib import closing

import pytest

import lpbook.__main__ as cli
from lpbook.sweep import load_results, run_sweep

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

#: A learner that marks its worker busy (a file named by its pid) while it fits.
NAPPER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from lpbook.learners import Learner, register

    @register("napper")
    class Napper(Learner):
        def __init__(self, v, s, L, seed=0, *, busy, nap=0.4):
            super().__init__(v, s, L, seed)
            self.busy, self.nap = busy, nap

        def fit(self, tokens, labels=None):
            mark = Path(self.busy) / str(os.getpid())
            mark.touch()
            time.sleep(self.nap)
            mark.unlink()
            return self

        def transform(self, tokens):
            return {1: tokens[:, :: self.s]}
    """
)
P_GRID, SEEDS = [5, 10, 20, 40], 4
N_POINTS = len(P_GRID) * SEEDS


def stored(db) -> list[tuple]:
    """The (P, seed) of every row of ``db``, duplicates included."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return sorted(conn.execute("SELECT P, seed FROM points"))
    except sqlite3.OperationalError:  # not created yet
        return []


@pytest.fixture
def napper(tmp_path, monkeypatch):
    """The module of :data:`NAPPER`, importable here and by the workers (which inherit the environment)."""
    (tmp_path / "napper_learner.py").write_text(NAPPER)
    (tmp_path / "busy").mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monkeypatch.syspath_prepend(tmp_path)
    import napper_learner  # noqa: F401  registers "napper" in this process

    return tmp_path / "busy"


def kill_a_busy_worker(db, busy, killed: list) -> None:
    """Once 2 points are stored, SIGKILL a worker process in the middle of a point."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed:
        marks = [int(path.name) for path in busy.iterdir()] if len(stored(db)) >= 2 else []
        for pid in marks:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(pid)
            return
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["retried", "left-for-rerun"])
def test_a_killed_worker_loses_no_point_and_stores_none_twice(tmp_path, napper, allowed_failures):
    db = tmp_path / "r.sqlite"
    sweep = dict(
        learner="napper", grammars=[dict(v=4, m=2, s=2, L=2)], P_grid=P_GRID, seeds=SEEDS, db=db,
        options={"busy": str(napper)}, n_test=50, progress=False,
    )
    expected = [(P, seed) for P in P_GRID for seed in range(SEEDS)]
    killed: list[int] = []
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.CRITICAL
    ) as cluster, distributed.Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        killer = threading.Thread(target=kill_a_busy_worker, args=(db, napper, killed))
        killer.start()
        try:
            if allowed_failures:  # the scheduler reruns the killed worker's point elsewhere
                rows = run_sweep(executor=client.get_executor(pure=False), **sweep)
            else:  # the points on the killed worker (running or queued there) fail at once; the others are stored
                with pytest.raises(RuntimeError, match=r"\d+ points were lost with their workers.*rerun the same sweep"):
                    run_sweep(executor=client.get_executor(pure=False), **sweep)
        finally:
            killer.join()
        assert killed and killed[0] in pids, "no worker was killed in the middle of a point"
        first = stored(db)
        assert len(set(first)) == len(first), "a point was stored twice"
        if allowed_failures:
            assert first == expected and len(rows) == N_POINTS
        else:
            assert set(first) < set(expected) and len(first) >= 2
        # The rerun, on the same cluster (its nanny has restarted the killed worker), completes the sweep.
        # pure=False: with Dask's default, resubmitting a point in the same session returns its old failure.
        after = run_sweep(executor=client.get_executor(pure=False), **sweep)
    assert stored(db) == expected and len(after) == N_POINTS
    by_key = {row["key"]: row for row in after}
    assert all(by_key[row["key"]] == row for row in load_results(db) if (row["P"], row["seed"]) in first)


def test_cli_runs_on_a_dask_scheduler(tmp_path, napper, capsys):
    db = tmp_path / "r.sqlite"
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.CRITICAL
    ) as cluster:
        argv = ["sweep", "--learner", "napper", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "--P", "5", "10",
                "--seeds", "2", "--n-test", "50", "--db", str(db), "--no-progress", "--dask", cluster.scheduler_address,
                "--option", f"busy={napper}", "--option", "nap=0"]
        assert cli.main(argv) == 0
    assert "4 points of this sweep are stored" in capsys.readouterr().out
    assert stored(db) == [(P, seed) for P in (5, 10) for seed in range(2)]


def test_cli_dask_errors(tmp_path, capsys):
    base = ["sweep", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "--P", "5",
            "--db", str(tmp_path / "r.sqlite"), "--no-progress"]
    with pytest.raises(SystemExit) as info:
        cli.main([*base, "--dask", "tcp://127.0.0.1:9", "--workers", "2"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main([*base, "--dask", "tcp://127.0.0.1:9"])  # nothing listens on port 9 (discard) here
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("lpbook: error: ") and "Traceback" not in err
    assert not (tmp_path / "r.sqlite").exists()
