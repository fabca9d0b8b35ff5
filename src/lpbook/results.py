"""Precomputed results: sweep databases too large to compute live, each with a sidecar that says how it was made.

A chapter computes its ``book``-scale figures while it runs; figures at the
``full`` scale come from SQLite databases written by ``lpbook sweep`` and
committed under ``results/`` (``make results`` regenerates them). Next to each
``NAME.sqlite`` lies ``NAME.json``, its *sidecar*, written by
``lpbook sweep ... --record`` (:func:`write_sidecar`) with

- ``command``: the exact command line, and ``settings``: the sweep it defines
  (learner, options, grammars, ``P_grid`` or one grid per grammar ``P_grids``,
  seeds, ``n_test``);
- ``version``: :data:`lpbook.__version__`; ``git_commit`` and ``git_dirty``:
  the source tree when the (last) run started (``None`` outside a git checkout);
- ``hardware``: platform, processor, CPU count, Python, torch and accelerator;
- ``started``, ``finished`` (UTC) and ``wall_seconds``, summed over the runs
  that built the database (a resumed sweep adds its time).

:func:`check_database` verifies that a database holds exactly the points its
sidecar's settings define, each computed by the recorded version.

Trained networks too costly to train live are kept the same way: ``lpbook fit
... --out results/networks/NAME.npz --record`` fits one learner
(:func:`fit_network`), saves it with :meth:`lpbook.learners.Learner.save` and
writes ``NAME.json`` beside it, whose ``settings`` (:func:`network_settings`)
say which grammar, ``P``, seed and options made it; :func:`check_network`
loads it and checks it against them.
"""

from __future__ import annotations

import inspect
import json
import os
import platform
import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import lpbook

from . import storage
from .points import Grammar, Point, make_points, misplaced_keys
from ._files import atomic_write
from ._validate import check_int

#: Where the committed databases live, relative to the repository root.
RESULTS_DIR = "results"

#: The keys every sidecar has.
SIDECAR_KEYS = frozenset(
    {"command", "settings", "version", "git_commit", "git_dirty", "hardware", "started", "finished", "wall_seconds"}
)


def sidecar_path(db) -> Path:
    """The sidecar of database ``db``: the same path with the suffix ``.json``."""
    return Path(db).with_suffix(".json")


def sweep_settings(learner, grammars, P_grid, seeds, *, options=None, n_test=2000) -> dict:
    """The canonical description of a sweep, as :func:`lpbook.points.make_points` reads its arguments.

    Returns a JSON-compatible dict with keys ``learner``, ``options``,
    ``grammars`` (list of ``{v, m, s, L, n_classes}``, plus ``rule_probs`` and
    ``zipf_a`` for a grammar whose production law is not uniform), ``seeds``,
    ``n_test``, and the sizes: ``P_grid`` when every grammar has the same
    ones, else ``P_grids``, one sorted list per grammar in the order of
    ``grammars`` (a ``P_grid`` that is a function of the grammar, e.g.
    :func:`~lpbook.points.scaled_grid`). Raises what
    :func:`~lpbook.points.make_points` raises.
    """
    points = make_points(learner, grammars, P_grid, seeds, options=options, n_test=n_test)
    first = points[0]
    grids: dict[Grammar, set[int]] = {}
    for p in points:
        grids.setdefault(p.grammar, set()).add(p.P)
    settings = {
        "learner": first.learner,
        "options": first.options,
        "grammars": [g.as_dict() for g in grids],
        "seeds": sorted({p.seed for p in points}),
        "n_test": first.n_test,
    }
    if len({frozenset(grid) for grid in grids.values()}) == 1:
        settings["P_grid"] = sorted(next(iter(grids.values())))
    else:
        settings["P_grids"] = [sorted(grid) for grid in grids.values()]
    return settings


def settings_points(settings: dict) -> list[Point]:
    """Every point of the sweep that ``settings`` (from :func:`sweep_settings`) describes."""
    if "P_grids" in settings:
        by_grammar = {Grammar(**g): grid for g, grid in zip(settings["grammars"], settings["P_grids"], strict=True)}
        P_grid = by_grammar.__getitem__
    else:
        P_grid = settings["P_grid"]
    return make_points(
        settings["learner"], settings["grammars"], P_grid, settings["seeds"],
        options=settings["options"], n_test=settings["n_test"],
    )


def _git(*args: str, cwd=None) -> str | None:
    """Output of ``git args`` run in ``cwd`` (default: this package's folder), or ``None`` when git or the checkout is missing."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).parent if cwd is None else cwd, capture_output=True, text=True,
            timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def hardware() -> dict:
    """What ran the sweep: platform, processor, CPU count, Python, and torch with its accelerator if installed."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": None,
        "accelerator": None,
    }
    try:
        import torch
    except ModuleNotFoundError:
        return info
    info["torch"] = torch.__version__
    if torch.cuda.is_available():
        info["accelerator"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return info


#: The paths of a checkout that make its code: a change elsewhere (a sidecar a sweep rewrote, a chapter) leaves the
#: source clean.
SOURCE_PATHS = (":/src", ":/pyproject.toml")


def source_state(cwd=None) -> dict:
    """The source tree that runs now: ``{"git_commit": sha or None, "git_dirty": bool or None}``.

    ``git_dirty`` says whether a tracked file under :data:`SOURCE_PATHS` differs
    from the commit. ``cwd`` is a folder of the checkout (default: this
    package's). Call it when the sweep starts (the code is loaded then), and
    pass it to :func:`write_sidecar` at the end.
    """
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no", "--",
                                                   *SOURCE_PATHS, cwd=cwd))
    return {"git_commit": commit, "git_dirty": dirty}


def write_sidecar(db, argv: list[str], settings: dict, source: dict, started: datetime, wall_seconds: float) -> Path:
    """Write (or update) the sidecar of ``db`` after a sweep of ``settings`` run by ``lpbook argv``.

    ``source`` is :func:`source_state` taken when the sweep started. An
    existing sidecar of the same settings keeps its ``started`` time and adds
    ``wall_seconds`` to its own; one of other settings raises ``ValueError``
    (a database holds one sweep). Returns the sidecar's path.
    """
    path = sidecar_path(db)
    previous = check_sidecar_settings(db, settings)
    if previous is not None:
        started = datetime.fromisoformat(previous["started"])
        wall_seconds += previous["wall_seconds"]
    record = {
        "command": shlex.join(["lpbook", *argv]),
        "settings": settings,
        "version": lpbook.__version__,
        **source,
        "hardware": hardware(),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(float(wall_seconds), 1),
    }
    with atomic_write(path, "w") as file:
        file.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def check_sidecar_settings(db, settings: dict, *, kind: str = "sweep", option: str = "--db") -> dict | None:
    """The existing sidecar of ``db`` (``None`` if there is none); ``ValueError`` if it records other settings.

    ``kind`` and ``option`` name, in the message, what the file holds and the command-line option that chose it.
    """
    if not sidecar_path(db).exists():
        return None
    previous = read_sidecar(db)
    if previous["settings"] != settings:
        hint = ""
        if _without_runtime(previous["settings"]) == settings:
            hint = f" (its settings hold runtime options: 'lpbook rekey {os.fspath(db)}' rewrites them)"
        raise ValueError(f"{sidecar_path(db)} records another {kind}{hint}; use another {option} for this one")
    return previous


def _without_runtime(settings: dict) -> dict:
    """``settings`` (of a sweep or a fit) with its learner's runtime options left out of ``options``."""
    from .learners import get, split_runtime

    return {**settings, "options": split_runtime(get(settings["learner"]), settings["options"])[0]}


def rekey(path) -> dict:
    """Take runtime options out of the identity of the results at ``path``, in place; return what changed.

    ``path`` is a sweep database (``.sqlite``: its keys and options are
    rewritten by :func:`lpbook.storage.rekey`) or a saved network (``.npz``);
    either way the ``settings`` of its sidecar, if it has one, lose the
    learner's runtime options (``device``, ``threads``, ``progress``), which
    :func:`sweep_settings` and :func:`network_settings` leave out. The
    sidecar's ``command`` stays as it was run. Rerunning it changes nothing.
    Returns ``{"points": ..., "rekeyed": ..., "merged": ...}`` for a database
    (see :func:`lpbook.storage.rekey`) and ``{"sidecar": True or False}``, whether the sidecar was rewritten.
    """
    path = Path(path)
    if path.suffix not in (".sqlite", ".npz"):
        raise ValueError(f"path must be a sweep database (.sqlite) or a saved network (.npz), got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    done = storage.rekey(path) if path.suffix == ".sqlite" else {}
    rewritten = False
    if sidecar_path(path).is_file():
        record = read_sidecar(path)
        settings = _without_runtime(record["settings"])
        if settings != record["settings"]:
            record["settings"] = settings
            with atomic_write(sidecar_path(path), "w") as file:
                file.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
            rewritten = True
    return done | {"sidecar": rewritten}


def read_sidecar(db) -> dict:
    """The sidecar of ``db`` as a dict; ``FileNotFoundError`` if missing, ``ValueError`` if it lacks keys."""
    path = sidecar_path(db)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: every results database needs its sidecar")
    record = json.loads(path.read_text())
    missing = SIDECAR_KEYS - record.keys()
    if missing:
        raise ValueError(f"{path} lacks the keys {sorted(missing)}")
    return record


def provenance(path) -> str:
    """How the database or network at ``path`` was made, as one Markdown sentence for a figure's caption.

    Read from its sidecar: the exact command, the package version and commit,
    the hardware and the wall time, so that a chapter can label a precomputed
    figure without repeating that text.
    """
    record = read_sidecar(path)
    hw = record["hardware"]
    commit = (record["git_commit"] or "outside a git checkout")[:10]
    torch_text = f", torch {hw['torch']}" if hw.get("torch") else ""
    wall = record["wall_seconds"]
    wall_text = f"{wall / 60:.0f} minutes" if wall >= 60 else f"{wall:.0f} seconds"
    return (f"`{Path(path).name}`: precomputed by `{record['command']}` (lpbook {record['version']}, commit {commit}) "
            f"on {hw['cpu_count']} CPU cores ({hw['processor']}, accelerator: {hw['accelerator'] or 'none'}{torch_text}) "
            f"in {wall_text} of wall time, finished {record['finished'][:10]}.")


def check_database(db) -> dict:
    """Check that ``db`` holds exactly the points of its sidecar's sweep, computed by its recorded version.

    Returns the sidecar. Raises ``ValueError`` naming the first mismatch:
    points stored under keys that are not theirs (runtime options in their
    identity: :func:`rekey` rewrites them), points missing or extra, or rows
    of another version.
    """
    record = read_sidecar(db)
    rows = storage.load_results(db)
    misplaced = misplaced_keys(rows)
    if misplaced:
        raise ValueError(f"{db}: {len(misplaced)} points are stored under keys that hold runtime options "
                         f"(e.g. {misplaced[0][:12]}...); rewrite them with 'lpbook rekey {db}'")
    expected = {p.key for p in settings_points(record["settings"])}
    stored = {row["key"] for row in rows}
    if stored != expected:
        raise ValueError(
            f"{db} does not match its sidecar: {len(expected - stored)} points missing, "
            f"{len(stored - expected)} points not in the recorded sweep"
        )
    versions = {row["version"] for row in rows}
    if versions != {record["version"]}:
        raise ValueError(f"{db} holds rows of versions {sorted(versions)}, its sidecar records {record['version']}")
    return record


def committed_databases(root) -> list[Path]:
    """The ``*.sqlite`` files under ``root/results``, sorted."""
    return sorted((Path(root) / RESULTS_DIR).glob("*.sqlite"))


def find_results_dir(start=None) -> Path | None:
    """The nearest ``results`` folder at ``start`` (default: the working directory) or above it, or ``None``.

    Chapters run from ``book/``, so this finds the repository's ``results/``;
    in a session without the repository (e.g. Colab) there is none.
    """
    start = Path.cwd() if start is None else Path(start)
    for folder in (start, *start.resolve().parents):
        if (folder / RESULTS_DIR).is_dir():
            return folder / RESULTS_DIR
    return None


def committed_sweep(name: str, start=None) -> tuple[list[dict], str] | None:
    """The rows (:func:`lpbook.storage.load_results`) and the :func:`provenance` of ``results/NAME.sqlite``.

    The ``results`` folder is the one :func:`find_results_dir` finds from
    ``start``. ``None`` when there is none (e.g. on Colab), or when the
    database or its sidecar is missing (a sweep still running has no
    sidecar yet): a chapter then says so instead of drawing the figure.
    """
    folder = find_results_dir(start)
    db = None if folder is None else folder / f"{name}.sqlite"
    if db is None or not db.is_file() or not sidecar_path(db).is_file():
        return None
    return storage.load_results(db), provenance(db)


# ---------------------------------------------------------------- networks
#: Where committed trained networks live, inside :data:`RESULTS_DIR`.
NETWORKS_DIR = "networks"


def network_settings(learner: str, grammar: Grammar, P: int, seed: int, options: dict | None = None) -> dict:
    """The canonical description of one fit: ``learner``, ``options``, ``grammar`` (as sweeps store it), ``P``, ``seed``.

    ``options`` leave out the learner's runtime options (``device``,
    ``threads``, ``progress``), which change how a fit runs, not what it is.
    Raises ``ValueError`` for an unknown learner, or ``P < 2``, ``seed < 0``.
    """
    from .learners import get, split_runtime

    cls = get(learner)
    if not isinstance(grammar, Grammar):
        raise TypeError(f"grammar must be an lpbook.Grammar, got {type(grammar).__name__}")
    P, seed = check_int("P", P, minimum=2), check_int("seed", seed, minimum=0)
    options = split_runtime(cls, options)[0]
    return {"learner": learner, "options": options, "grammar": grammar.as_dict(), "P": P, "seed": seed}


def fit_network(settings: dict, runtime: dict | None = None, checkpoint=None):
    """The learner of ``settings`` (from :func:`network_settings`), fitted on its ``P`` training samples.

    The learner and the samples are those of the sweep point of the same
    learner, options, grammar, ``P`` and seed (:meth:`lpbook.Point.make_learner`,
    ``n_classes`` included, and :meth:`lpbook.Point.data`), so that its
    test set is that point's. ``runtime`` holds the learner's runtime
    options (e.g. ``{"device": "cuda"}``), which the settings leave out.
    ``checkpoint``, a file, is where a learner whose ``fit`` takes one (the
    encoder learners of :mod:`lpbook.neural`) keeps its training's state, and
    resumes from it; other learners, which fit in minutes, ignore it.
    """
    point = network_point(settings, runtime)
    _, train, _ = point.data()
    learner = point.make_learner()
    resumable = checkpoint is not None and "checkpoint" in inspect.signature(learner.fit).parameters
    return learner.fit(train.tokens, train.labels if learner.uses_labels else None,
                       **({"checkpoint": checkpoint} if resumable else {}))


def network_point(settings: dict, runtime: dict | None = None, n_test: int = 2000) -> Point:
    """The sweep point of the fit that ``settings`` (from :func:`network_settings`) describe, with
    ``runtime`` options and a test set of ``n_test`` strings."""
    options = {**settings["options"], **(runtime or {})}
    return Point.make(settings["learner"], settings["grammar"], settings["P"], settings["seed"],
                            options=options, n_test=n_test)


#: Where the networks of a recipe search live, inside :data:`RESULTS_DIR`: kept apart from the networks the chapters show.
SEARCH_DIR = "search"


def committed_networks(root, folder: str = NETWORKS_DIR) -> list[Path]:
    """The saved learners (``*.npz``) under ``root/results/<folder>`` (:data:`NETWORKS_DIR` or :data:`SEARCH_DIR`), sorted."""
    if folder not in (NETWORKS_DIR, SEARCH_DIR):
        raise ValueError(f"folder must be {NETWORKS_DIR!r} or {SEARCH_DIR!r}, got {folder!r}")
    return sorted((Path(root) / RESULTS_DIR / folder).glob("*.npz"))


def find_networks(root, learner: str, options: dict | None = None, folder: str = NETWORKS_DIR,
                  **grammar) -> list[tuple[Path, dict]]:
    """The committed networks of ``learner`` on a grammar family, as ``(path, settings)`` sorted by ``(L, P, seed)``.

    ``grammar`` narrows the family (e.g. ``v=16, m=3, s=2``); ``options``
    keeps only the networks whose recorded options hold these values, an
    option left out of a sidecar counting as the learner's default.
    ``root`` is the repository (the folder holding ``results/``), ``folder``
    as for :func:`committed_networks`.
    """
    import inspect

    from .learners import get

    defaults = {name: p.default for name, p in inspect.signature(get(learner)).parameters.items()
                if p.default is not inspect.Parameter.empty}
    found = []
    for path in committed_networks(root, folder):
        settings = read_sidecar(path)["settings"]
        recorded = {**defaults, **settings["options"]}
        if (settings["learner"] == learner
                and all(settings["grammar"].get(key) == value for key, value in grammar.items())
                and all(json.loads(json.dumps(recorded.get(key))) == json.loads(json.dumps(value))
                        for key, value in (options or {}).items())):
            found.append((path, settings))
    return sorted(found, key=lambda item: (item[1]["grammar"]["L"], item[1]["P"], item[1]["seed"]))


def check_network(path):
    """Load the learner saved at ``path`` and check it against its sidecar; return it.

    The sidecar's settings must name the learner's registered class, its
    grammar's ``v, s, L``, its seed, and options equal to the learner's
    parameters; the learner's runtime options (``device``, ``threads``,
    ``progress``) are not compared, whether or not the sidecar records them.
    ``ValueError`` names the first mismatch.
    """
    from .learners import Learner, get

    record = read_sidecar(path)
    settings = _without_runtime(record["settings"])
    learner = Learner.load(path)
    if type(learner) is not get(settings["learner"]):
        raise ValueError(f"{path} holds a {type(learner).__name__}, its sidecar says {settings['learner']!r}")
    params = learner.get_params()
    grammar = settings["grammar"]
    expected = {"v": grammar["v"], "s": grammar["s"], "L": grammar["L"], "seed": settings["seed"], **settings["options"]}
    for name, value in expected.items():
        if json.loads(json.dumps(params.get(name))) != json.loads(json.dumps(value)):
            raise ValueError(f"{path}: parameter {name} is {params.get(name)!r}, its sidecar says {value!r}")
    return learner
