"""Tests of the command line, ``lpbook`` / ``python -m lpbook``."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from contextlib import closing

import numpy as np
import pytest

import lpbook.__main__ as cli
from lpbook import RHM
from lpbook.learners import REGISTRY, Learner
from lpbook.sweep import load_results


class LeftmostToken(Learner):
    """Toy learner: codes each node by its leftmost token (level 0 is always right)."""

    def __init__(self, v, s, L, seed=0, *, scale=1):
        super().__init__(v, s, L, seed)
        self.scale = scale

    def fit(self, tokens, labels=None):
        return self

    def transform(self, tokens):
        tokens = self._check_tokens(tokens)
        return {level: tokens[:, :: self.s**level] * self.scale for level in range(self.L)}


class Broken(LeftmostToken):
    """A learner whose fit fails."""

    def fit(self, tokens, labels=None):
        raise ZeroDivisionError("boom")


class Oracle(Learner):
    """Parses with the true grammar (told ``m``) but codes only the first ``min(1, P / P0)``
    of the test rows, and -1 for the others: its accuracy at every level is that fraction."""

    uses_labels = True

    def __init__(self, v, s, L, seed=0, *, n_classes=None, m, P0):
        super().__init__(v, s, L, seed)
        self.rhm = RHM(v, m, s, L, n_classes=n_classes, seed=seed)
        self.P0 = P0

    def fit(self, tokens, labels=None):
        self.fraction_ = min(1.0, len(tokens) / self.P0)
        return self

    def transform(self, tokens):
        levels = self.rhm.parse(tokens).levels
        coded = np.arange(len(tokens)) < round(self.fraction_ * len(tokens))
        # int64 first: -1 does not fit the grammar's unsigned codes (numpy >= 2.5 raises, older ones wrapped it to 255).
        return {level: np.where(coded[:, None], codes.astype(np.int64), -1) for level, codes in enumerate(levels)}


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    """Register the toy learners of this file for each test."""
    monkeypatch.setitem(REGISTRY, "toy", LeftmostToken)
    monkeypatch.setitem(REGISTRY, "broken", Broken)
    monkeypatch.setitem(REGISTRY, "oracle", Oracle)


def sweep_args(db, *extra):
    """A small sweep of the toy learner: grammars v=4, m=2, s=2, L in {2, 3}, 2 seeds."""
    return ["sweep", "--learner", "toy", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "3",
            "--seeds", "2", "--n-test", "100", "--db", str(db), "--workers", "1", "--no-progress", *extra]


def exit_code(argv) -> int:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    return info.value.code


def test_a_sweep_under_zipf_laws_stores_each_law_apart(tmp_path, capsys):
    db = tmp_path / "z.sqlite"
    argv = sweep_args(db, "--P", "10", "100", "--rule-probs", "zipf", "--zipf-a", "0.5", "1.5")
    assert cli.main(argv) == 0
    rows = load_results(db)
    assert len(rows) == 2 * 2 * 2 * 2
    assert {(r["rule_probs"], r["zipf_a"]) for r in rows} == {("zipf", 0.5), ("zipf", 1.5)}
    assert cli.main(sweep_args(db, "--P", "10", "100")) == 0  # the uniform grammars: other points of the same file
    assert len(load_results(db, rule_probs="uniform")) == 2 * 2 * 2
    capsys.readouterr()
    pstar = ["pstar", "--db", str(db), "--learner", "toy", "--level", "0", "--n-boot", "20"]
    assert cli.main(pstar) == 0
    out = capsys.readouterr().out.splitlines()[1:]
    assert len(out) == 6 and sum("rule_probs=zipf zipf_a=1.5 " in line for line in out) == 2
    # pstar selects the curves of one law
    for filters, expected in [(["--rule-probs", "zipf", "--zipf-a", "1.5"], {"rule_probs=zipf zipf_a=1.5 "}),
                              (["--zipf-a", "0.5", "1.5"], {"rule_probs=zipf zipf_a=0.5 ", "rule_probs=zipf zipf_a=1.5 "}),
                              (["--rule-probs", "uniform"], {"options="})]:
        assert cli.main([*pstar, *filters]) == 0, filters
        out = capsys.readouterr().out.splitlines()[1:]
        assert len(out) == 2 * len(expected), (filters, out)
        assert {law for line in out for law in expected if law in line and ("zipf" in law) == ("zipf" in line)} \
            == expected, (filters, out)


def test_sweep_then_pstar(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert cli.main(sweep_args(db, "--P-range", "10", "1000", "3", "--option", "scale=1")) == 0
    rows = load_results(db)
    assert len(rows) == 2 * 3 * 2
    assert {row["P"] for row in rows} == {10, 100, 1000}
    assert {row["L"] for row in rows} == {2, 3} and {row["options"]["scale"] for row in rows} == {1}
    assert "12 points of this sweep are stored" in capsys.readouterr().out

    assert cli.main(["pstar", "--db", str(db), "--learner", "toy", "--level", "0", "--n-boot", "50"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "P* of level 0 at accuracy 0.9, learner 'toy':"
    assert len(out) == 3
    assert out[1].startswith("v=4 m=2 s=2 L=2 n_classes=4 n_test=100 options={\"scale\": 1}: P* < 10")
    assert out[2].startswith("v=4 m=2 s=2 L=3 ") and "(95% interval, 2 seeds)" in out[2]


def test_pstar_prints_the_interpolated_value(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    argv = sweep_args(db, "--P", "10", "30", "100", "--option", "m=2", "--option", "P0=50")
    argv[argv.index("toy")] = "oracle"
    assert cli.main(argv) == 0
    capsys.readouterr()
    # Accuracies 0.2, 0.6, 1 at P = 10, 30, 100: 0.9 is reached 3/4 of the way from log 30 to log 100.
    expected = 30 * (100 / 30) ** 0.75
    assert cli.main(["pstar", "--db", str(db), "--learner", "oracle", "--level", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f'v=4 m=2 s=2 L=2 n_classes=4 n_test=100 options={{"P0": 50, "m": 2}}: P* = {expected:.4g} '
        f"[{expected:.4g}, {expected:.4g}] (95% interval, 2 seeds)"
    )


def test_rerun_adds_nothing(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert cli.main(sweep_args(db, "--P", "10", "30")) == 0
    first = load_results(db)
    assert cli.main(sweep_args(db, "--P", "10", "30")) == 0
    assert load_results(db) == first


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--learner", "nope"], r"--learner must be a registered name \(registered: .*toy.*\), got 'nope'"),
        (["--m", "3", "--v", "2"], r"invalid grammar v=2 m=3 s=2 L=2 .*m must be <= v\*\*\(s-1\) = 2"),
        (["--n-classes", "9"], r"invalid grammar .*n_classes\*m must be <= v\*\*s = 16"),
        (["--zipf-a", "1"], "--zipf-a needs --rule-probs zipf"),
        (["--rule-probs", "zipf", "--zipf-a", "-1"], "argument --zipf-a: must be a number >= 0, got -1"),
        (["--rule-probs", "pareto"], "argument --rule-probs: invalid choice: 'pareto'"),
        (["--P-range", "100", "10", "3"], "--P-range needs MIN <= MAX, got MIN=100 MAX=10"),
        (["--P-range", "10", "100"], "argument --P-range: expected 3 arguments"),
        (["--P", "0"], "argument --P: must be >= 1, got 0"),
        (["--seeds", "-1"], "argument --seeds: must be >= 1, got -1"),
        (["--seeds", "two"], "argument --seeds: must be an integer, got 'two'"),
        (["--db"], "argument --db: expected one argument"),
        (["--option", "scale"], "--option must be KEY=VALUE"),
        (["--option", "=3"], "--option must be KEY=VALUE"),
        (["--option", "scale=1", "--option", "scale=2"], "--option scale is given twice"),
        (["--option", "bogus=1"], "learner 'toy' rejects options {'bogus': 1}"),
        (["--option", "seed=1"], r"options must not set \['seed'\]"),
    ],
)
def test_bad_sweep_arguments_exit_2(tmp_path, capsys, argv, message):
    grid = [] if {"--P", "--P-range"} & set(argv) else ["--P", "10"]
    assert exit_code(sweep_args(tmp_path / "r.sqlite", *grid, *argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("lpbook sweep: error: ")
    assert re.search(message, err.splitlines()[-1]), err
    assert not (tmp_path / "r.sqlite").exists()


def test_a_recorded_sweep_with_nothing_to_do_runs_in_a_read_only_folder(tmp_path, capsys):
    from conftest import read_only

    folder = tmp_path / "results"
    folder.mkdir()
    db = folder / "r.sqlite"
    argv = sweep_args(db, "--P", "10", "30", "--record")
    assert cli.main(argv) == 0
    sidecar = (folder / "r.json").read_text()
    (folder / "r.sqlite.lock").unlink()  # a database checked out without its lock file
    capsys.readouterr()
    with read_only(folder):
        assert cli.main(argv) == 0
    assert capsys.readouterr().out == f"8 points of this sweep are stored in {db}\n"
    assert (folder / "r.json").read_text() == sidecar and sorted(p.name for p in folder.iterdir()) == ["r.json", "r.sqlite"]


def test_missing_db_exits_2(capsys):
    argv = ["sweep", "--learner", "toy", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "--P", "10"]
    assert exit_code(argv) == 2
    assert "the following arguments are required: --db" in capsys.readouterr().err


def test_a_failing_point_exits_2_with_one_line(tmp_path, capsys):
    argv = sweep_args(tmp_path / "r.sqlite", "--P", "10")
    argv[argv.index("toy")] = "broken"
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("lpbook: error: Point(learner='broken'") and "ZeroDivisionError: boom" in err


def test_db_in_a_missing_folder_exits_2(tmp_path, capsys):
    assert exit_code(sweep_args(tmp_path / "no" / "r.sqlite", "--P", "10")) == 2
    assert capsys.readouterr().err == (
        f"lpbook: error: db {str(tmp_path / 'no' / 'r.sqlite')!r} cannot be created: its folder does not exist\n"
    )


def test_ctrl_c_exits_130_saying_what_the_sweep_kept(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise cli.sweep.SweepInterrupted(stored=5, computed=1, dropped=1, not_started=3)

    monkeypatch.setattr(cli.sweep, "run_sweep", interrupted)
    assert cli.main(sweep_args(tmp_path / "r.sqlite", "--P", "10")) == cli.INTERRUPTED
    assert capsys.readouterr().err == (
        "lpbook: interrupted: 5 points of this sweep are stored (1 computed in this run); 1 was in flight and is "
        "dropped, 3 had not started: rerun the same command to resume\n")


def test_pstar_errors_exit_2(tmp_path, capsys):
    pstar = ["pstar", "--learner", "toy", "--level", "1"]
    assert exit_code([*pstar, "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert capsys.readouterr().err == f"lpbook: error: db {str(tmp_path / 'missing.sqlite')!r} does not exist\n"

    db = tmp_path / "r.sqlite"
    assert cli.main(sweep_args(db, "--P", "10", "30")) == 0
    assert exit_code(["pstar", "--learner", "other", "--level", "1", "--db", str(db)]) == 2
    assert "holds no points of learner 'other'" in capsys.readouterr().err
    assert exit_code([*pstar, "--db", str(db), "--threshold", "1.5"]) == 2
    assert "argument --threshold: must be in (0, 1], got 1.5" in capsys.readouterr().err
    assert exit_code(["pstar", "--learner", "toy", "--level", "5", "--db", str(db)]) == 2
    captured = capsys.readouterr()
    assert "level must be one of the levels in the results" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"]])
def test_python_m_lpbook_help(argv):
    result = subprocess.run([sys.executable, "-m", "lpbook", *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: lpbook" in result.stdout and "sweep" in result.stdout


# ------------------------------------------------------------- bars, help, refusals, scaled grids
class ChattyToken(LeftmostToken):
    """The toy learner with a tqdm bar of its own, shown by default."""

    def __init__(self, v, s, L, seed=0, *, progress=True):
        super().__init__(v, s, L, seed)
        self.progress = progress

    def fit(self, tokens, labels=None):
        from tqdm import tqdm

        for _ in tqdm(range(3), disable=not self.progress, desc="CHATTY-BAR"):
            pass
        return self


def test_no_progress_silences_the_workers_too(tmp_path, capfd, monkeypatch):
    monkeypatch.setitem(REGISTRY, "chatty", ChattyToken)
    argv = sweep_args(tmp_path / "r.sqlite", "--P", "10", "30")
    argv[argv.index("toy")] = "chatty"
    assert cli.main(argv) == 0  # one worker process: its stderr is this test's file descriptor 2
    captured = capfd.readouterr()
    assert captured.err == "" and "CHATTY-BAR" not in captured.out


def test_help_is_self_sufficient():
    result = subprocess.run([sys.executable, "-m", "lpbook", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for option in ("--learner", "--P-range-scaled", "--scale", "--workers", "--no-progress", "--level", "--fit",
                   "--json", "--csv"):
        assert option in out, option
    assert "every CPU" in out and "'seconds' column" in out
    assert re.search(r"learners: .*ilc, ilc-probe.*token-clustering", out)
    sweep_help = subprocess.run([sys.executable, "-m", "lpbook", "sweep", "--help"], capture_output=True, text=True,
                                timeout=120).stdout
    assert re.search(r"--learner LEARNER\s+registered name of the learner: .*ilc, ilc-probe", sweep_help)


def test_learners_command_lists_names_labels_and_options(capsys):
    assert cli.main(["learners"]) == 0
    out = capsys.readouterr().out
    assert "ilc (ILC, no labels)" in out and "ilc-probe (ILCWithProbe, needs labels)" in out
    assert "--option method=...  (default 'kmeans'; one of 'kmeans', 'single', 'spectral')" in out
    assert "--option context=...  (default 'cousin_tuples'; one of 'cousin_tuples', " in out


def test_sweep_refuses_a_learner_that_recovers_no_level(tmp_path, capsys):
    argv = ["sweep", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2", "--L", "1", "--P", "10",
            "--db", str(tmp_path / "r.sqlite"), "--no-progress"]
    assert exit_code(argv) == 2
    assert "learner 'ilc' recovers no level of Grammar(v=4, m=2, s=2, L=1" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()


def test_database_errors_exit_2_naming_the_path(tmp_path, capsys):
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database, but long enough to be read as a header " * 4)
    assert exit_code(sweep_args(junk, "--P", "10")) == 2
    assert capsys.readouterr().err == f"lpbook: error: db '{junk}' is not a sweep database: file is not a database\n"
    assert exit_code(["pstar", "--db", str(junk), "--learner", "toy", "--level", "0"]) == 2
    assert f"db '{junk}' is not a sweep database" in capsys.readouterr().err
    assert exit_code(sweep_args(tmp_path, "--P", "10")) == 2  # a folder
    assert capsys.readouterr().err == (f"lpbook: error: db '{tmp_path}' is a folder: give the path of a file in it, "
                                       f"such as '{tmp_path / 'sweep.sqlite'}'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.sqlite"]  # no lock file left behind


def test_scaled_grid_from_the_command_line(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    argv = sweep_args(db, "--P-range-scaled", "0.5", "50", "3", "--scale", "v*m**2/2")
    argv[argv.index("--m") + 1] = "2"
    assert cli.main(argv) == 0
    assert sorted({row["P"] for row in load_results(db)}) == [4, 40, 400]
    capsys.readouterr()
    for extra, message in [
        (["--P-range-scaled", "1", "2", "3"], "--P-range-scaled and --scale go together"),
        (["--P-range-scaled", "1", "2", "3", "--scale", "v*k"], "may use numbers, .* got 'k'"),
        (["--P-range-scaled", "1", "2", "3", "--scale", "v/0"], "cannot be evaluated"),

        (["--P-range-scaled", "1", "2", "2.5", "--scale", "v"], "N a positive integer"),
        (["--P-range-scaled", "2", "1", "3", "--scale", "v"], "low must be <= high"),
    ]:
        assert exit_code(sweep_args(tmp_path / "s.sqlite", *extra)) == 2
        assert re.search(message, capsys.readouterr().err.splitlines()[-1]), extra


def test_scale_is_evaluated_on_the_users_grammars_only(tmp_path, capsys):
    argv = sweep_args(tmp_path / "r.sqlite", "--P-range-scaled", "1", "2", "2", "--scale", "v*m/(v-4)")
    argv[argv.index("--v") + 1] = "8"
    assert cli.main(argv) == 0  # v = 4 would divide by zero, but no grammar of this sweep has it
    assert {row["P"] for row in load_results(tmp_path / "r.sqlite")} == {4, 8}
    argv[argv.index("--scale") + 1] = "v/(m-2)"
    assert exit_code(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lpbook sweep: error: --scale 'v/(m-2)' cannot be evaluated for Grammar(v=8, m=2, s=2, L=2, n_classes=8): "
        "division by zero")


@pytest.fixture
def oracle_db(tmp_path, capsys):
    """Oracle sweeps at L = 2 and 3 with seeds 0, 1 on the grid 10, 30, 100, then seed 2 on the grid 10, 100."""
    db = tmp_path / "r.sqlite"
    base = ["sweep", "--learner", "oracle", "--v", "4", "--m", "2", "--s", "2", "--L", "2", "3", "--n-test", "100",
            "--db", str(db), "--workers", "1", "--no-progress", "--option", "m=2", "--option", "P0=50"]
    assert cli.main([*base, "--P", "10", "30", "100", "--seeds", "2"]) == 0
    with sqlite3.connect(db) as conn:  # seed 2 on another grid: (30, 2) is missing
        conn.execute("DELETE FROM points WHERE seed = 2")
    assert cli.main([*base, "--P", "10", "100", "--seeds", "3"]) == 0
    capsys.readouterr()
    return db


def test_pstar_relative_levels_filters_and_missing_pairs(oracle_db, capsys):
    pstar = ["pstar", "--db", str(oracle_db), "--learner", "oracle", "--n-boot", "50"]
    outputs = []
    for level in ("top", "-1"):
        assert cli.main([*pstar, "--level", level]) == 0
        captured = capsys.readouterr()
        lines = captured.out.splitlines()
        assert len(lines) == 3
        assert lines[1].startswith("v=4 m=2 s=2 L=2 ") and "level=1: P* = " in lines[1]
        assert lines[2].startswith("v=4 m=2 s=2 L=3 ") and "level=2: P* = " in lines[2]
        assert "1 (P, seed) pairs missing, left out: (P=30, seed=2)" in captured.err
        outputs.append(lines[1:])
    assert outputs[0] == outputs[1]
    assert cli.main([*pstar, "--level", "root", "--L", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "L=3" in lines[1] and "level=3" in lines[1]
    assert exit_code([*pstar, "--level", "top", "--m", "3"]) == 2
    assert "no points of learner 'oracle' that match the filters" in capsys.readouterr().err
    assert cli.main([*pstar, "--level", "top", "--option", "P0=50"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_pstar_json_and_csv(oracle_db, capsys):
    import csv
    import io
    import json

    pstar = ["pstar", "--db", str(oracle_db), "--learner", "oracle", "--level", "top", "--n-boot", "50"]
    assert cli.main([*pstar, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["pstar"]
    assert [(r["L"], r["level"]) for r in records] == [(2, 1), (3, 2)]
    assert 30 < records[0]["pstar"] < 100 and records[0]["missing"] == [[30, 2]]
    assert records[0]["options"] == {"P0": 50, "m": 2} and records[0]["censored"] is None
    assert cli.main([*pstar, "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["L"] for row in table] == ["2", "3"] and float(table[1]["pstar"]) == pytest.approx(records[1]["pstar"])


def test_pstar_fit_prints_the_exponent_with_its_interval(tmp_path, capsys):
    import json

    from lpbook.points import Point, PointResult
    from lpbook.storage import connect, insert

    db = tmp_path / "r.sqlite"
    with closing(connect(db)) as conn:  # accuracy 0.9 + 0.05 log(P / P*) with P* = 8 m**2 (+ a seed shift)
        for m in (2, 3, 4):
            for P in (10, 30, 100, 300, 1000):
                for seed in range(3):
                    acc = float(np.clip(0.9 + 0.05 * np.log(P / (8 * m**2)) + 0.01 * (seed - 1), 0, 1))
                    point = Point("toy", {}, 8, m, 2, 3, 8, P, seed, 100)
                    insert(conn, PointResult(point, {1: acc}, 0.1, "test", "now"))
    pstar = ["pstar", "--db", str(db), "--learner", "toy", "--level", "1", "--n-boot", "200"]
    assert cli.main([*pstar, "--fit", "m"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[4] == "Fits of log P* against log m (95% bootstrap intervals):"
    assert re.fullmatch(r"v=8 s=2 L=3 n_classes=8 n_test=100 options=\{\} m in \[2, 3, 4\]: "
                        r"P\* ~ m\^2 \[[0-9.]+, [0-9.]+\] \(3 P\*\)", out[5]), out[5]
    assert cli.main([*pstar, "--fit", "m", "--json"]) == 0
    (fit,) = json.loads(capsys.readouterr().out)["fits"]
    assert fit["slope"] == pytest.approx(2.0) and fit["low"] <= 2.0 <= fit["high"] and fit["m"] == [2, 3, 4]
    assert cli.main([*pstar, "--fit", "L"]) == 0
    assert "not measured (fewer than 2 uncensored P*)" in capsys.readouterr().out


def test_a_default_pool_sweep_exits_cleanly(tmp_path):
    argv = [sys.executable, "-m", "lpbook", "sweep", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2",
            "--L", "3", "--P", "20", "40", "80", "--seeds", "2", "--n-test", "50", "--workers", "2",
            "--db", str(tmp_path / "r.sqlite"), "--no-progress"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "6 points of this sweep are stored" in result.stdout


def test_dask_without_the_cluster_extra_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask.distributed were not installed
    argv = sweep_args(tmp_path / "r.sqlite", "--P", "10", "--dask", "tcp://127.0.0.1:8786")
    del argv[argv.index("--workers") : argv.index("--workers") + 2]
    assert exit_code(argv) == 2
    assert capsys.readouterr().err == (
        "lpbook: error: sweeps on a Dask cluster need dask.distributed: pip install 'lpbook[cluster]'\n"
    )
    assert not (tmp_path / "r.sqlite").exists()


# ------------------------------------------------------------- without torch
#: Run before the code of a subprocess: every import of torch then fails as where torch is not installed.
NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
"""


#: What a neural learner says where torch is missing: how to install lpbook's neural extra, in forms that work
#: (lpbook is on no package index).
NEEDS = ("needs torch, which is not installed: install lpbook's neural extra, lpbook[neural] "
         "(pip install '.[neural]' in lpbook's repository, or pip install 'torch>=2.2')")


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True, text=True, timeout=120)


def test_without_torch_neural_learners_say_how_to_install_it(tmp_path):
    imports = ["from lpbook import SLC", "import lpbook.neural", "from lpbook.learners import get; get('masked-token')"]
    commands = [["fit", "--learner", "slc", "--v", "4", "--m", "2", "--s", "2", "--L", "3", "--P", "10",
                 "--out", str(tmp_path / "x.npz")],
                sweep_args(tmp_path / "r.sqlite", "--P", "10")]
    commands[1][commands[1].index("--learner") + 1] = "slc"
    result = run_without_torch(
        f"for code in {imports!r}:\n"
        "    try:\n        exec(code)\n"
        "    except ModuleNotFoundError as err:\n        print('import:', err.name, err)\n"
        "from lpbook.__main__ import main\n"
        "main(['learners'])\n"
        f"for argv in {commands!r}:\n"
        "    try:\n        main(argv)\n"
        "    except SystemExit as exit:\n        print('exit:', exit.code)\n"
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    out = result.stdout.splitlines()
    failed = [line for line in out if line.startswith("import: ")]
    assert len(failed) == len(imports), result.stdout
    for line, what in zip(failed, ["SLC", "lpbook.neural", "learner 'masked-token'"]):
        assert line == f"import: torch {what} {NEEDS}", line
    # lpbook learners lists them as unavailable; fit and sweep refuse them in one line
    assert "ilc (ILC, no labels)" in out
    for name, cls in (("data2vec", "Data2Vec"), ("masked-token", "MaskedTokenModel"), ("slc", "SLC"),
                      ("supervised-cnn", "SupervisedCNN")):
        assert f"{name} ({cls}): unavailable, {NEEDS}" in out
    assert out[-2:] == ["exit: 2", "exit: 2"], result.stdout
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2, result.stderr
    for command, line in zip(("fit", "sweep"), errors):
        assert line == f"lpbook {command}: error: --learner 'slc' {NEEDS}", result.stderr
    assert not list(tmp_path.iterdir())
