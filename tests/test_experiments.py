"""Tests of lpbook.experiments: each experiment of the book defined once, and the same as what it recorded."""

from __future__ import annotations

import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import git_tracked

import lpbook
import lpbook.__main__ as cli
from lpbook import experiments, results, scale
from lpbook.experiments import NETWORKS, SWEEPS, Fit, NetworkSet, Plan, SweepSpec
from lpbook.learners import neural_learners
from lpbook.points import Grammar
from lpbook.storage import load_results

ROOT = Path(__file__).resolve().parents[1]


RECORDED = [spec for spec in SWEEPS.values() if spec.recorded]
TORCH = importlib.util.find_spec("torch") is not None  # the core install of make test-compat has none


def needs_missing_torch(learner: str) -> bool:
    """A neural learner's points and settings check its options against its class, which needs torch."""
    return not TORCH and learner in neural_learners()
DATABASES = git_tracked(results.committed_databases(ROOT))
NETWORK_FILES = git_tracked(results.committed_networks(ROOT) + results.committed_networks(ROOT, results.SEARCH_DIR))


@pytest.mark.parametrize("spec", RECORDED, ids=lambda spec: spec.name)
def test_a_recorded_spec_is_the_sweep_its_committed_database_holds(spec):
    db = ROOT / "results" / f"{spec.name}.sqlite"
    if db not in DATABASES:
        pytest.skip(f"{db.name} is not committed")
    assert all(spec.plan(name) == spec.plan("full") for name in scale.SCALES)  # the same at every scale
    if needs_missing_torch(spec.learner):
        pytest.skip(f"the points and settings of {spec.learner} need torch, which is not installed")
    assert {p.key for p in spec.points()} == {row["key"] for row in load_results(db)}
    assert spec.settings() == results.read_sidecar(db)["settings"]


def test_every_committed_database_and_network_has_its_spec():
    assert {db.stem for db in DATABASES} <= {spec.name for spec in RECORDED}
    fits = {ROOT / fit.path: fit for networks in NETWORKS.values() for fit in networks.fits}
    assert set(NETWORK_FILES) <= fits.keys()
    unchecked = [path.name for path in NETWORK_FILES if needs_missing_torch(fits[path].learner)]
    for path in NETWORK_FILES:
        if path.name not in unchecked:
            assert fits[path].settings() == results.read_sidecar(path)["settings"], path.name
    if unchecked:
        pytest.skip(f"the settings of {len(unchecked)} networks need torch, which is not installed")


@pytest.mark.parametrize("name", scale.SCALES)
def test_every_spec_gives_its_points_at_every_scale(name):
    for spec in SWEEPS.values():
        if importlib.util.find_spec("torch") is None and spec.learner in ("slc", "masked-token", "data2vec",
                                                                           "supervised-cnn"):
            continue
        points = spec.points(name)
        assert points and len({p.key for p in points}) == len(points), spec.name
    by_path = {}
    for networks in NETWORKS.values():
        assert len({fit.path for fit in networks.fits}) == len(networks.fits)
        for fit in networks.fits:  # a network that two sets share is the same fit in both
            assert by_path.setdefault(fit.path, fit) == fit, fit.path


def test_a_spec_runs_into_its_chapters_folder_reads_it_back_and_reproduces_its_committed_database(tmp_path, monkeypatch):
    monkeypatch.setenv("LPBOOK_CACHE", str(tmp_path))
    spec = experiments.sweep_spec("ilc-cpu")
    assert spec.stored() is None and not spec.database.exists()  # stored() runs nothing
    with ThreadPoolExecutor(2) as pool:
        rows = spec.rows(executor=pool)
    assert spec.database == tmp_path / lpbook.__version__ / "data2vec" / "ilc-cpu.sqlite"
    assert spec.stored() == rows and spec.stored(L=3) == rows
    committed = spec.committed(ROOT)
    if committed is not None:  # same seeds, same bytes
        assert [(r["P"], r["accuracy"]) for r in rows] == [(r["P"], r["accuracy"]) for r in committed[0]]
    with pytest.raises(ValueError, match="no grammar with"):
        spec.stored(L=9)
    with pytest.raises(ValueError, match="is not recorded"):
        experiments.sweep_spec("ilc-ilc").committed()
    with pytest.raises(ValueError, match="spec must be one of"):
        experiments.sweep_spec("nope")


def leftmost_codes(point, model, data) -> dict:
    """A measure: the point's P and how many distinct training strings it saw."""
    _, train, _ = data
    return {"P": point.P, "distinct": len({row.tobytes() for row in train.tokens}), "learner": type(model).__name__}


def test_a_measure_stores_json_beside_each_point(tmp_path, monkeypatch):
    monkeypatch.setenv("LPBOOK_CACHE", str(tmp_path))
    spec = SweepSpec("measured", "ilc", "test", lambda name: Plan((Grammar(4, 2, 2, 3),), (20, 80), 2, 50),
                     {"n_init": 2}, measure=leftmost_codes)
    with ThreadPoolExecutor(2) as pool:
        rows = spec.rows(executor=pool)
    assert len(rows) == 4 and all(row["extra"]["P"] == row["P"] and row["extra"]["learner"] == "ILC" for row in rows)
    assert all(1 <= row["extra"]["distinct"] <= row["P"] for row in rows)
    assert load_results(spec.database) == rows
    plain = SweepSpec("plain", "ilc", "test", spec.plans, {"n_init": 2})
    with ThreadPoolExecutor(2) as pool:
        assert all(row["extra"] is None for row in plain.rows(executor=pool))

    def broken(point, model, data):
        return {1: "not a str key"}

    with pytest.raises(RuntimeError, match="must return a dict with str keys"), ThreadPoolExecutor(1) as pool:
        SweepSpec("broken", "ilc", "test", spec.plans, measure=broken).rows(executor=pool)


def test_a_neural_fit_is_a_sweep_point_with_its_loss_against_the_floor(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from lpbook.neural.measure import MaskedTokenPoint

    monkeypatch.setenv("LPBOOK_CACHE", str(tmp_path))
    options = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10, n_init=1)
    spec = SweepSpec("mlm", "masked-token", "test", lambda name: Plan((Grammar(4, 2, 2, 3),), (200,), 1, 100),
                     options, measure=experiments._measure_networks)
    with ThreadPoolExecutor(1) as pool:
        (row,) = spec.rows(executor=pool)
    measured = MaskedTokenPoint.from_record(row["extra"])
    assert measured.P == 200 and measured.accuracy == row["accuracy"]
    assert row["extra"]["excess_loss"] == pytest.approx(measured.test_loss - measured.bayes_loss)
    assert sorted(measured.floors) == [0, 1, 2, 3] and measured.floors[3] == measured.bayes_loss


def test_sweep_spec_from_the_command_line_records_the_committed_settings(tmp_path, capsys):
    db = tmp_path / "ilc-cpu.sqlite"
    argv = ["sweep", "--spec", "ilc-cpu", "--db", str(db), "--workers", "1", "--no-progress", "--record"]
    assert cli.main(argv) == 0
    assert "2 points of this sweep are stored" in capsys.readouterr().out
    sidecar = results.check_database(db)
    assert sidecar["settings"] == experiments.sweep_spec("ilc-cpu").settings()
    assert sidecar["command"] == "lpbook " + " ".join(argv)
    for extra, message in [(["--learner", "ilc"], "fixes the learner, the grammars"),
                           (["--seeds", "2"], "leave out --seeds"),
                           (["--option", "n_init=2"], "--option may set runtime options only"),
                           (["--spec", "nope"], "spec must be one of")]:
        with pytest.raises(SystemExit):
            cli.main(["sweep", "--spec", "ilc-cpu", "--db", str(tmp_path / "x.sqlite"), *extra])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--learner", "ilc", "--v", "4", "--m", "2", "--s", "2", "--L", "3", "--P", "50"])
    assert "the following arguments are required: --db" in capsys.readouterr().err


def test_fit_spec_fits_the_networks_not_saved_yet(tmp_path, capsys, monkeypatch):
    fits = tuple(Fit("ilc", {"v": 4, "m": 2, "s": 2, "L": 3}, P, 1, {"n_init": 2}, f"results/networks/ilc-P{P}.npz")
                 for P in (100, 300))
    monkeypatch.setitem(NETWORKS, "tiny", NetworkSet("tiny", "test", fits))
    (tmp_path / "results" / "networks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", "--spec", "tiny", "--record"]) == 0
    assert "0 of the 2 networks of tiny are saved" in capsys.readouterr().out
    for fit in fits:
        assert results.read_sidecar(tmp_path / fit.path)["settings"] == fit.settings()
        results.check_network(tmp_path / fit.path)
    assert [fit for fit, _ in NETWORKS["tiny"].committed(tmp_path)] == list(fits)
    (tmp_path / fits[0].path).unlink()
    assert cli.main(["fit", "--spec", "tiny", "--record", "--option", "progress=false"]) == 0
    out = capsys.readouterr().out
    assert "1 of the 2 networks of tiny are saved" in out and out.count("saved the fitted ILC") == 1
    assert json.loads((tmp_path / "results/networks/ilc-P100.json").read_text())["command"].startswith(
        "lpbook fit --spec tiny")
    with pytest.raises(SystemExit):
        cli.main(["fit", "--spec", "tiny", "--P", "300"])
    assert "leave out --P" in capsys.readouterr().err
