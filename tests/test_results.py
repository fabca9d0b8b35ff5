"""Tests of lpbook.results: sidecars of precomputed sweeps, and every committed database against its sidecar."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import git_tracked

import lpbook
import lpbook.__main__ as cli
from lpbook import results
from lpbook.learners import available
from lpbook.sweep import load_results

ROOT = Path(__file__).resolve().parents[1]


COMMITTED = git_tracked(results.committed_databases(ROOT))


def record(db, *extra) -> int:
    """``lpbook sweep --record`` of ILC on one small grammar, 2 sizes x 2 seeds, in this process."""
    return cli.main([
        "sweep", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2", "--L", "3", "--P", "50", "200",
        "--seeds", "2", "--n-test", "50", "--db", str(db), "--workers", "1", "--no-progress", "--record", *extra,
    ])


def test_record_writes_a_sidecar_that_matches(tmp_path, capsys):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    assert "its sidecar is" in capsys.readouterr().out
    sidecar = results.check_database(db)
    assert sidecar.keys() >= results.SIDECAR_KEYS
    assert sidecar["command"].startswith("lpbook sweep --learner ilc ")
    assert sidecar["version"] == lpbook.__version__
    assert sidecar["settings"]["P_grid"] == [50, 200] and sidecar["settings"]["seeds"] == [0, 1]
    assert sidecar["settings"]["grammars"] == [dict(v=4, m=2, s=2, L=3, n_classes=4)]
    assert sidecar["hardware"]["cpu_count"] >= 1 and sidecar["wall_seconds"] >= 0
    assert sidecar["git_commit"] is None or len(sidecar["git_commit"]) == 40


def test_provenance_names_the_command_commit_and_hardware(tmp_path):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    sidecar = results.read_sidecar(db)
    text = results.provenance(db)
    assert text.startswith("`ilc.sqlite`: precomputed by `lpbook sweep --learner ilc ")
    assert f"lpbook {lpbook.__version__}" in text and f"{sidecar['hardware']['cpu_count']} CPU cores" in text
    assert (sidecar["git_commit"] or "outside a git checkout")[:10] in text
    assert f"in {sidecar['wall_seconds']:.0f} seconds of wall time" in text  # a sweep of seconds, not "0 minutes"
    with pytest.raises(FileNotFoundError, match="sidecar"):
        results.provenance(tmp_path / "other.sqlite")


def test_how_computed_is_one_collapsed_block_per_result(tmp_path):
    from lpbook.notebook import how_computed

    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert record(first) == 0 and record(second) == 0
    html = how_computed(first, second).data
    assert html.startswith("<details") and "<details open" not in html and "How this was computed" in html
    assert html.count("<pre") == 2 and "lpbook sweep --learner ilc " in html
    assert f"lpbook {lpbook.__version__}" in html and "seconds of wall time" in html
    with pytest.raises(ValueError, match="at least one path"):
        how_computed()
    with pytest.raises(FileNotFoundError, match="sidecar"):
        how_computed(tmp_path / "other.sqlite")


def test_committed_sweep_reads_rows_and_caption_or_says_none(tmp_path, monkeypatch):
    folder = tmp_path / "repo" / "results"
    folder.mkdir(parents=True)
    (tmp_path / "repo" / "book").mkdir()
    assert results.committed_sweep("ilc", tmp_path / "repo" / "book") is None  # no database
    assert record(folder / "ilc.sqlite") == 0
    rows, caption = results.committed_sweep("ilc", tmp_path / "repo" / "book")
    assert rows == load_results(folder / "ilc.sqlite") and len(rows) == 4
    assert caption == results.provenance(folder / "ilc.sqlite")
    results.sidecar_path(folder / "ilc.sqlite").unlink()
    assert results.committed_sweep("ilc", tmp_path / "repo" / "book") is None  # a sweep without its sidecar
    monkeypatch.chdir(tmp_path)
    assert results.committed_sweep("ilc") is None  # no results folder above the working directory


def test_a_scaled_grid_is_recorded_per_grammar_and_checks(tmp_path):
    """--P-range-scaled gives each grammar its own sizes: the sidecar lists them per grammar, and the check passes."""
    db = tmp_path / "scaled.sqlite"
    assert cli.main([
        "sweep", "--learner", "ilc", "--v", "4", "--m", "2", "3", "--s", "2", "--L", "3", "--P-range-scaled", "2", "8", "2",
        "--scale", "v*m", "--seeds", "1", "--n-test", "50", "--db", str(db), "--workers", "1", "--no-progress", "--record",
    ]) == 0
    settings = results.check_database(db)["settings"]
    assert "P_grid" not in settings and settings["P_grids"] == [[16, 64], [24, 96]]
    assert [g["m"] for g in settings["grammars"]] == [2, 3]
    assert len(results.settings_points(settings)) == 4
    one_grid = results.sweep_settings("ilc", [dict(v=4, m=2, s=2, L=3), dict(v=4, m=3, s=2, L=3)], [50, 100], 1)
    assert one_grid["P_grid"] == [50, 100] and "P_grids" not in one_grid  # as every sidecar written before


def test_resuming_adds_wall_time_and_keeps_the_start(tmp_path):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    first = results.read_sidecar(db)
    assert record(db) == 0
    second = results.read_sidecar(db)
    assert second["started"] == first["started"] and second["wall_seconds"] >= first["wall_seconds"]


def test_another_sweep_into_a_recorded_database_is_refused(tmp_path, capsys):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    with pytest.raises(SystemExit) as info:
        record(db, "--option", "n_init=2")
    assert info.value.code == 2
    assert "records another sweep" in capsys.readouterr().err


def test_check_database_finds_missing_and_foreign_points(tmp_path):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM points WHERE P = 200 AND seed = 1")
    with pytest.raises(ValueError, match="1 points missing, 0 points not in the recorded sweep"):
        results.check_database(db)
    sidecar = json.loads(results.sidecar_path(db).read_text())
    sidecar["settings"]["P_grid"] = [50]
    results.sidecar_path(db).write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="0 points missing, 1 points not in the recorded sweep"):
        results.check_database(db)


def test_check_database_finds_another_version(tmp_path):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE points SET version = '0.0.1' WHERE P = 50")
    with pytest.raises(ValueError, match=r"versions \['0.0.1', .*\], its sidecar records"):
        results.check_database(db)


def stored_the_old_way(db, runtime: dict) -> None:
    """Give every point of ``db`` and its sidecar's settings the runtime options ``runtime``, as sweeps stored
    them when runtime options were part of a point's identity (its key hashed them)."""
    import hashlib

    from lpbook.points import _without_uniform_law, canonical_json

    with sqlite3.connect(db) as conn:
        for row in load_results(db):
            options = row["options"] | runtime
            fields = {name: row[name] for name in ("learner", "v", "m", "s", "L", "n_classes", "P", "seed", "n_test",
                                                   "rule_probs", "zipf_a")} | {"options": options}
            key = hashlib.sha256(canonical_json(_without_uniform_law(fields)).encode()).hexdigest()
            conn.execute("UPDATE points SET key = ?, options = ? WHERE key = ?", (key, canonical_json(options), row["key"]))
    sidecar = json.loads(results.sidecar_path(db).read_text())
    sidecar["settings"]["options"] |= runtime
    results.sidecar_path(db).write_text(json.dumps(sidecar))


def test_check_database_catches_a_key_that_holds_runtime_options_and_rekey_rewrites_it(tmp_path, capsys):
    db = tmp_path / "ilc.sqlite"
    assert record(db, "--option", "progress=false") == 0
    clean = results.check_database(db)
    assert clean["settings"]["options"] == {} and "--option progress=false" in clean["command"]
    rows = load_results(db)
    stored_the_old_way(db, {"progress": False})
    with pytest.raises(ValueError, match=r"4 points are stored under keys that hold runtime options.*lpbook rekey"):
        results.check_database(db)
    assert results.rekey(db) == {"points": 4, "rekeyed": 4, "merged": 0, "sidecar": True}
    assert results.check_database(db) == clean  # the command as it was run, the settings without progress
    assert load_results(db) == rows
    assert results.rekey(db) == {"points": 4, "rekeyed": 0, "merged": 0, "sidecar": False}  # nothing left to do
    # one missed key is caught: a row put back the old way after the rewrite
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE points SET options = '{\"progress\":false}' WHERE P = 50 AND seed = 0")
    with pytest.raises(ValueError, match="1 points are stored under keys that hold runtime options"):
        results.check_database(db)
    assert cli.main(["rekey", str(db)]) == 0
    assert capsys.readouterr().out.endswith("1 of 4 points rekeyed, 0 merged; sidecar unchanged\n")
    assert results.check_database(db) == clean


def test_rekey_merges_points_stored_with_and_without_runtime_options(tmp_path):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    first = load_results(db)
    other = tmp_path / "other.sqlite"
    assert record(other) == 0
    stored_the_old_way(other, {"progress": True})
    with sqlite3.connect(db) as conn:
        conn.execute(f"ATTACH DATABASE '{other}' AS other")
        conn.execute("INSERT INTO points SELECT * FROM other.points WHERE P = 200")
    assert len(load_results(db)) == 6
    assert results.rekey(db)["merged"] == 2 and load_results(db) == first  # the first finished is kept
    results.check_database(db)


def test_a_sweep_recorded_with_runtime_options_resumes_from_a_sidecar_without_them(tmp_path, capsys):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    assert record(db, "--option", "progress=true") == 0  # the same sweep: its sidecar accepts it
    stored_the_old_way(db, {"progress": False})
    with pytest.raises(SystemExit):
        record(db, "--option", "progress=false")
    assert "its settings hold runtime options: 'lpbook rekey" in capsys.readouterr().err


def test_a_database_without_sidecar_is_refused(tmp_path):
    db = tmp_path / "ilc.sqlite"
    assert record(db) == 0
    results.sidecar_path(db).unlink()
    with pytest.raises(FileNotFoundError, match="needs its sidecar"):
        results.check_database(db)


@pytest.mark.parametrize("db", COMMITTED, ids=lambda p: p.name)
def test_every_committed_database_matches_its_sidecar(db):
    missing = {row["learner"] for row in load_results(db)} - set(available())
    if missing and importlib.util.find_spec("torch") is None:
        pytest.skip(f"{db.name} holds points of {sorted(missing)}, which need torch")
    sidecar = results.check_database(db)
    assert load_results(db), f"{db.name} is empty"
    assert sidecar["command"].startswith("lpbook sweep ") and f"--db results/{db.name}" in sidecar["command"]


@pytest.mark.parametrize("name", ["ilc-cpu", "tc-depth-pair", "ilc-depth"])
def test_committed_points_are_reproduced_by_this_library(name):
    """Same seeds, same bytes: the smallest points of committed sweeps, rerun now, give the stored accuracies."""
    from lpbook.points import point_of
    from lpbook.sweep import run_point

    db = ROOT / "results" / f"{name}.sqlite"
    if db not in COMMITTED:
        pytest.skip(f"{db.name} is not committed")
    for row in sorted(load_results(db), key=lambda row: (row["P"], row["L"], row["seed"]))[:2]:
        assert run_point(point_of(row)).accuracy == row["accuracy"], row


# ---------------------------------------------------------------- networks
def fit_command(out, *extra) -> list[str]:
    """``lpbook fit`` of a tiny ILC (no torch needed) on one training set."""
    return ["fit", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2", "--L", "3", "--P", "300", "--seed", "1",
            "--option", "n_init=2", "--out", str(out), *extra]


def test_fit_saves_the_learner_of_the_sweep_points_training_set(tmp_path, capsys):
    from lpbook import ILC, RHM

    out = tmp_path / "ilc.npz"
    assert cli.main(fit_command(out, "--record")) == 0
    assert f"saved the fitted ILC to {out}" in capsys.readouterr().out
    sidecar = results.read_sidecar(out)
    assert sidecar["settings"] == {"learner": "ilc", "options": {"n_init": 2}, "P": 300, "seed": 1,
                                   "grammar": {"v": 4, "m": 2, "s": 2, "L": 3, "n_classes": 4}}
    assert sidecar["command"] == "lpbook " + " ".join(fit_command(out, "--record"))
    loaded = results.check_network(out)
    rhm = RHM(4, 2, 2, 3, seed=1)
    direct = ILC(4, 2, 3, seed=1, n_init=2).fit(rhm.sample(300, seed=2).tokens)  # the training set of seed 1
    test = rhm.sample(100, seed=3).tokens
    assert all((loaded.transform(test)[k] == c).all() for k, c in direct.transform(test).items())
    # a refit replaces the sidecar's time instead of adding to it; another fit into the same file is refused
    assert cli.main(fit_command(out, "--record")) == 0
    assert results.read_sidecar(out)["started"] >= sidecar["started"]
    with pytest.raises(SystemExit):
        cli.main(fit_command(out, "--record", "--P", "400"))  # a later --P wins
    assert "records another fit" in capsys.readouterr().err


@pytest.fixture
def no_training(monkeypatch):
    """Make ``lpbook fit`` fail the test if it starts training."""

    def fit_network(settings, runtime=None, checkpoint=None):
        raise AssertionError("lpbook fit trained before checking that it can save")

    monkeypatch.setattr(results, "fit_network", fit_network)


def test_fit_builds_the_learner_of_the_sweep_point_n_classes_included():
    from lpbook.sweep import Grammar, Point, run_point

    grammar = Grammar(4, 2, 2, 3, n_classes=2)
    settings = results.network_settings("ilc-probe", grammar, 300, 1, {"n_init": 2, "progress": False})
    assert settings["options"] == {"n_init": 2}
    fitted = results.fit_network(settings)
    point = Point.make("ilc-probe", grammar, 300, 1, options={"n_init": 2}, n_test=200)
    assert fitted.n_classes == 2 and fitted.get_params() == point.make_learner().get_params()
    _, _, test = point.data()
    codes = fitted.transform(test.tokens)
    assert run_point(point).accuracy[3] == float((codes[3][:, 0] == test.labels).mean())


def test_fit_checks_that_it_can_write_out_and_its_sidecar_before_training(tmp_path, capsys, no_training):
    from conftest import read_only

    for out, extra, message in [
        (tmp_path / "nodir" / "x.npz", [], "its folder does not exist"),
        (tmp_path, [], "it is a folder"),
        (tmp_path / "y.npz", ["--record"], "is a folder"),
    ]:
        (tmp_path / "y.json").mkdir(exist_ok=True)  # the sidecar of y.npz
        assert exit_code(fit_command(out, *extra)) == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith("lpbook fit: error: ") and message in err and str(out.name) in err, err
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro") as folder:
        assert exit_code(fit_command(folder / "x.npz")) == 2
        err = capsys.readouterr().err
        assert f"--out {str(folder / 'x.npz')!r} cannot be written" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro", "y.json"]


def test_an_interrupted_fit_says_that_nothing_was_saved(tmp_path, capsys, monkeypatch):
    def interrupted(settings, runtime=None, checkpoint=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "fit_network", interrupted)
    out = tmp_path / "x.npz"
    assert cli.main(fit_command(out, "--record")) == cli.INTERRUPTED
    err = capsys.readouterr().err
    assert err == ("lpbook: interrupted: the fit was not saved; a network's training goes on from its last "
                   "checkpoint (OUT.checkpoint) when the command is run again, other learners fit from the start\n")
    assert list(tmp_path.iterdir()) == []


def test_a_fit_that_cannot_be_saved_where_asked_is_saved_elsewhere(tmp_path, capsys, monkeypatch):
    import re
    import shutil

    from lpbook import ILC
    from lpbook.learners import Learner

    real = results.fit_network

    def fit_then_lose_the_folder(settings, runtime=None, checkpoint=None):
        learner = real(settings, runtime, checkpoint)
        shutil.rmtree(tmp_path / "gone")  # after the check, before the save
        return learner

    (tmp_path / "gone").mkdir()
    monkeypatch.setattr(results, "fit_network", fit_then_lose_the_folder)
    assert exit_code(fit_command(tmp_path / "gone" / "x.npz")) == 2
    err = capsys.readouterr().err
    saved = re.search(r"it is saved at '([^']+)' instead", err)
    assert saved and f"could not save the fitted ILC to {str(tmp_path / 'gone' / 'x.npz')!r}" in err, err
    try:
        assert isinstance(Learner.load(saved[1]), ILC)
    finally:
        Path(saved[1]).unlink()


def test_save_replaces_a_file_whole_or_not_at_all(tmp_path, monkeypatch):
    import numpy as np

    from lpbook import ILC, RHM

    learner = ILC(4, 2, 3).fit(RHM(4, 2, 2, 3).sample(100, seed=1).tokens)
    out = tmp_path / "x.npz"
    out.write_bytes(b"the previous fit")

    def failing(file, **arrays):
        file.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", failing)
    with pytest.raises(OSError, match="No space left"):
        learner.save(out)
    assert out.read_bytes() == b"the previous fit" and [p.name for p in tmp_path.iterdir()] == ["x.npz"]
    monkeypatch.undo()
    learner.save(out)
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"] and ILC.load(out).get_params() == learner.get_params()


def exit_code(argv) -> int:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    return info.value.code


def test_an_interrupted_network_fit_goes_on_from_its_checkpoint_and_deletes_it_once_saved(tmp_path, capsys,
                                                                                          monkeypatch):
    """lpbook fit of a network keeps OUT.checkpoint while it trains: killed, the command run again goes on from
    there to the network a fit never stopped gives, and the file goes once the network is saved."""
    torch = pytest.importorskip("torch")
    from lpbook.learners import Learner

    def command(out):
        return ["fit", "--learner", "masked-token", "--v", "4", "--m", "2", "--s", "2", "--L", "3", "--P", "300",
                "--option", "d_model=8", "--option", "n_layers=1", "--option", "max_steps=30",
                "--option", "eval_every=7", "--option", "n_init=1", "--option", "progress=false", "--out", str(out)]

    plain, out = tmp_path / "plain.npz", tmp_path / "resumed.npz"
    assert cli.main(command(plain)) == 0 and not Path(f"{plain}.checkpoint").exists()

    def killed_at_step_17(settings, runtime=None, checkpoint=None):  # after the evaluations at steps 7 and 14
        point = results.network_point(settings, runtime)

        def kill(step, network):
            if step == 17:
                raise KeyboardInterrupt
        return point.make_learner().fit(point.data()[1].tokens, on_step=kill, checkpoint=checkpoint)

    with monkeypatch.context() as patched:
        patched.setattr(results, "fit_network", killed_at_step_17)
        assert cli.main(command(out)) == cli.INTERRUPTED
    assert Path(f"{out}.checkpoint").is_file() and not out.exists()
    capsys.readouterr()
    assert cli.main(command(out)) == 0
    assert f"going on from the checkpoint {out}.checkpoint" in capsys.readouterr().out
    assert not Path(f"{out}.checkpoint").exists()
    a, b = Learner.load(plain), Learner.load(out)
    assert a.curve_ == b.curve_
    assert all(torch.equal(x, y) for x, y in zip(a.network_.state_dict().values(), b.network_.state_dict().values()))


def test_check_network_finds_a_learner_that_is_not_its_sidecars(tmp_path):
    out = tmp_path / "ilc.npz"
    assert cli.main(fit_command(out, "--record")) == 0
    record_ = json.loads(results.sidecar_path(out).read_text())
    record_["settings"]["options"]["n_init"] = 5
    results.sidecar_path(out).write_text(json.dumps(record_))
    with pytest.raises(ValueError, match="parameter n_init is 2, its sidecar says 5"):
        results.check_network(out)
    with pytest.raises(SystemExit):
        cli.main(fit_command(tmp_path / "x.npz", "--P", "1"))


def test_network_sidecars_leave_runtime_options_out_and_old_ones_still_check(tmp_path, capsys):
    out = tmp_path / "ilc.npz"
    assert cli.main(fit_command(out, "--option", "progress=true", "--record")) == 0
    sidecar = results.read_sidecar(out)
    assert sidecar["settings"]["options"] == {"n_init": 2} and "progress=true" in sidecar["command"]
    sidecar["settings"]["options"]["progress"] = False  # as sidecars were written with runtime options
    results.sidecar_path(out).write_text(json.dumps(sidecar))
    results.check_network(out)  # runtime options are not compared
    assert cli.main(["rekey", str(out)]) == 0
    assert capsys.readouterr().out.endswith("sidecar rewritten\n")
    rewritten = results.read_sidecar(out)
    assert rewritten["settings"]["options"] == {"n_init": 2} and rewritten["command"] == sidecar["command"]
    with pytest.raises(SystemExit):
        cli.main(["rekey", str(tmp_path / "missing.npz")])
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("path", git_tracked(results.committed_networks(ROOT) + results.committed_networks(ROOT, "search")),
                         ids=lambda p: p.name)
def test_every_committed_network_matches_its_sidecar(path):
    if importlib.util.find_spec("torch") is None and results.read_sidecar(path)["settings"]["learner"] not in available():
        pytest.skip(f"{path.name} needs torch")
    learner = results.check_network(path)
    sidecar = results.read_sidecar(path)
    assert sidecar["command"].startswith("lpbook fit ")
    assert f"--out results/{path.parent.name}/{path.name}" in sidecar["command"] or "--spec " in sidecar["command"]
    assert not sidecar["git_dirty"], f"{path.name} was trained from uncommitted code"
    assert hasattr(learner, "readout_") or not hasattr(learner, "network_")


def test_a_committed_data2vec_holds_the_strings_its_sidecar_recomputes_and_reads_its_teacher():
    """A data2vec file that holds its fit's strings holds exactly the split of the point's recipe, so reading it
    with the recomputed strings (read_network) reads it as it was fitted; loading ignores the stored strings."""
    pytest.importorskip("torch")
    from lpbook.learners import Learner, _read_saved, _unpack
    from lpbook.neural import read_network

    path = ROOT / "results" / "networks" / "data2vec-v8-m2-L3-P1000-seed0.npz"
    if path not in git_tracked([path]) or not path.is_file():
        pytest.skip(f"{path.name} is not committed")
    header, arrays, _ = _read_saved(path)
    state = _unpack(header["state"], arrays)
    _, train, test = results.network_point(results.read_sidecar(path)["settings"], n_test=300).data()
    learner = Learner.load(path)
    assert not hasattr(learner, "train_tokens_") and not hasattr(learner, "traces_")
    held = state["train_tokens_"], state["val_tokens_"]
    recomputed = learner._split_strings(train.tokens)
    assert all(np.array_equal(a, b) for a, b in zip(held, recomputed))
    teacher = read_network(learner, learner.network_, test.tokens, train.tokens, "teacher")
    assert sorted(teacher) == [1, 2] and all(codes.shape[0] == test.P for codes in teacher.values())


def test_find_networks_filters_by_learner_grammar_and_options(tmp_path):
    (tmp_path / "results" / "networks").mkdir(parents=True)
    for P, n_init in ((300, 2), (200, 2), (300, 3)):
        out = tmp_path / "results" / "networks" / f"ilc-P{P}-n{n_init}.npz"
        assert cli.main(["fit", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2", "--L", "3", "--P", str(P),
                         "--seed", "1", "--option", f"n_init={n_init}", "--out", str(out), "--record"]) == 0
    found = results.find_networks(tmp_path, "ilc", v=4, m=2)
    assert [(s["P"], s["options"]["n_init"]) for _, s in found] == [(200, 2), (300, 2), (300, 3)]
    assert [p.name for p, _ in results.find_networks(tmp_path, "ilc", options={"n_init": 3})] == ["ilc-P300-n3.npz"]
    assert results.find_networks(tmp_path, "ilc", v=8) == []
    assert len(results.find_networks(tmp_path, "ilc", options={"method": "kmeans"})) == 3  # the default counts
    assert results.find_networks(tmp_path, "ilc", options={"method": "spectral"}) == []
    assert results.find_networks(tmp_path, "ilc", folder="search") == []
    with pytest.raises(ValueError, match="folder must be"):
        results.committed_networks(tmp_path, "other")


def test_the_source_is_dirty_only_when_its_code_differs_from_the_commit(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "src").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "src" / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "sweep.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    state = results.source_state(cwd=tmp_path / "results")
    assert len(state["git_commit"]) == 40 and state["git_dirty"] is False
    (tmp_path / "results" / "sweep.json").write_text('{"finished": 1}\n')  # a sweep rewrote its sidecar
    (tmp_path / "notes.md").write_text("untracked\n")
    assert results.source_state(cwd=tmp_path)["git_dirty"] is False
    (tmp_path / "src" / "code.py").write_text("x = 2\n")
    assert results.source_state(cwd=tmp_path / "results")["git_dirty"] is True
    assert results.source_state(cwd=tmp_path.parent / "nowhere") == {"git_commit": None, "git_dirty": None}
