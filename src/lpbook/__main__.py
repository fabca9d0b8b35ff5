"""The command line, ``lpbook`` or ``python -m lpbook``.

- ``lpbook sweep``: run a sample-complexity sweep into a SQLite file (see
  :mod:`lpbook.sweep`), on local worker processes or, with ``--dask ADDRESS``,
  on a Dask cluster (:mod:`lpbook.remote`); rerunning the same command resumes
  an interrupted one. ``--spec NAME`` runs an experiment of :mod:`lpbook.experiments`.
- ``lpbook fit``: fit one learner on one training set and save it with its
  sidecar; ``--spec NAME`` fits the networks of a set that ``results/`` lacks.
- ``lpbook pstar``: read that file and print ``P*`` with its bootstrap interval
  for each grammar found (as text, JSON or CSV), and with ``--fit m`` or
  ``--fit L`` the exponent in ``m`` or the growth per level.
- ``lpbook learners``: the registered learners, whether they need labels, and
  their options with defaults.
- ``lpbook rekey``: rewrite stored results (sweep databases, saved networks'
  sidecars) whose identity holds runtime options (:func:`lpbook.results.rekey`).

``lpbook --help`` prints the options of every command.

Bad arguments and failures exit with code 2 and a one-line message on stderr
(after argparse's usage line for bad arguments); Ctrl-C exits with code 130.
"""

from __future__ import annotations

import argparse
import ast
import csv
import itertools
import json
import math
import operator
import os
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn

import lpbook

from . import experiments, results, sweep
from .points import Grammar, log_grid, scaled_grid
from .pstar import PStar, estimate_pstar, exponent_fits, group_results
from .storage import DatabaseError, load_results
from ._files import check_writable
from .grammar import RULE_PROBS
from .learners import NEEDS_TORCH, available, describe, get, split_runtime, unavailable

#: Exit status after Ctrl-C, as shells report a process killed by SIGINT.
INTERRUPTED = 130


def _checked(convert, accept, what: str):
    """An argparse ``type``: ``convert(text)`` (``int`` or ``float``) when ``accept`` holds for it,
    else an error that says what the value must be."""
    noun = "an integer" if convert is int else "a number"

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


def _int_at_least(minimum: int):
    """An argparse ``type``: an integer ``>= minimum``."""
    return _checked(int, lambda x: x >= minimum, f">= {minimum}")


_at_least_1, _at_least_2 = _int_at_least(1), _int_at_least(2)
_fraction = _checked(float, lambda x: 0 < x <= 1, "in (0, 1]")
_positive = _checked(float, lambda x: 0 < x < math.inf, "a positive number")
_non_negative = _checked(float, lambda x: 0 <= x < math.inf, "a number >= 0")


#: Stands for the list of learner names in help texts; filled in when the help is shown,
#: so that torch is imported only for ``--help``.
_LEARNERS = "{learners}"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help lists the registered learners, and at the top level
    the options of every subcommand, so that ``lpbook --help`` is self-sufficient."""

    subcommands: list = []

    def format_help(self) -> str:
        text = super().format_help()
        for sub in self.subcommands:
            text += f"\n{'=' * 70}\nlpbook {sub.prog.split()[-1]}\n\n{sub.format_help()}"
        return text.replace(_LEARNERS, ", ".join(available()))


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``lpbook`` with its subcommands ``sweep``, ``pstar``, ``fit``, ``learners`` and ``rekey``."""
    parser = _Parser(
        prog="lpbook",
        description="Sample-complexity sweeps of the RHM learners. The options of every command follow.",
        epilog=f"learners: {_LEARNERS} (see 'lpbook learners')",
    )
    parser.add_argument("--version", action="version", version=f"lpbook {lpbook.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    parser.subcommands = []
    for name, add, handler, summary in [
        ("sweep", _add_sweep, _run_sweep, "run a sweep (resumes an interrupted one)"),
        ("pstar", _add_pstar, _run_pstar, "print P* for each grammar of a sweep database, or fit exponents"),
        ("fit", _add_fit, _run_fit, "fit one learner on one training set and save it (a network too costly to train live)"),
        ("learners", lambda p: None, _run_learners, "list the learners, whether they need labels, and their options"),
        ("rekey", _add_rekey, _run_rekey,
         "take runtime options (device, threads, progress) out of the keys and sidecars of stored results"),
    ]:
        subparser = commands.add_parser(name, allow_abbrev=False, help=summary, description=summary)
        add(subparser)
        subparser.set_defaults(handler=handler, subparser=subparser)
        parser.subcommands.append(subparser)
    return parser


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}
_SCALE_NAMES = ("v", "m", "s", "L", "n_classes")


def _scale(text: str):
    """An argparse ``type``: an arithmetic expression in v, m, s, L, n_classes, as a function of a grammar.

    Its form is checked when it is parsed; it is evaluated on the sweep's own grammars only, so that an
    error names the grammar that caused it.
    """
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise argparse.ArgumentTypeError(f"must be an arithmetic expression such as 'v*m**3', got {text!r}") from None

    def evaluate(node, grammar):
        """The value of ``node`` for ``grammar``; with ``grammar=None``, only the check of its form."""
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = evaluate(node.left, grammar), evaluate(node.right, grammar)
            return None if grammar is None else _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = evaluate(node.operand, grammar)
            return None if grammar is None else -operand
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in _SCALE_NAMES:
            return None if grammar is None else getattr(grammar, node.id)
        raise argparse.ArgumentTypeError(
            f"may use numbers, + - * / ** and the names {', '.join(_SCALE_NAMES)}, got {ast.unparse(node)!r}"
        )

    def scale(grammar) -> float:
        try:
            return float(evaluate(tree, grammar))
        except (ArithmeticError, TypeError) as exc:  # TypeError: a complex value, such as (-1)**0.5
            raise ValueError(f"--scale {text!r} cannot be evaluated for {grammar}: {exc}") from None

    evaluate(tree, None)  # reject bad expressions at parse time
    return scale


def _add_learner_and_grammar(parser: argparse.ArgumentParser, *, many: bool) -> None:
    """``--learner`` and the grammar's ``--v --m --s --L --n-classes``: lists of values when ``many``, else one each.

    They are required unless ``--spec`` names the experiment instead (checked by :func:`_required`).
    """
    nargs, plural = ({"nargs": "+"}, "s") if many else ({}, "")
    parser.add_argument("--learner", help=f"registered name of the learner: {_LEARNERS} (required without --spec)")
    parser.add_argument("--v", type=_at_least_2, help=f"alphabet size{plural} (required without --spec)", **nargs)
    parser.add_argument("--m", type=_at_least_1, help="productions per symbol (required without --spec)", **nargs)
    parser.add_argument("--s", type=_at_least_2, help=f"branching factor{plural} (required without --spec)", **nargs)
    parser.add_argument("--L", type=_at_least_1, help=f"{'depths' if many else 'depth'} (required without --spec)",
                        **nargs)
    parser.add_argument("--n-classes", type=_at_least_1, help="root alphabet size (default: v)")


def _given(args, names: tuple[str, ...]) -> list[str]:
    """Which of the options ``names`` (``--n-classes``...) the command line gave."""
    return [name for name in names if getattr(args, name.lstrip("-").replace("-", "_")) is not None]


def _required(parser: argparse.ArgumentParser, args, names: tuple[str, ...]) -> None:
    """Without ``--spec``, the options ``names`` are required."""
    missing = [name for name in names if name not in _given(args, names)]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)} (or name an experiment with --spec)")


def _fixed_by_spec(parser: argparse.ArgumentParser, args, names: tuple[str, ...], what: str) -> None:
    """With ``--spec``, the options ``names`` are refused: the spec fixes ``what``."""
    given = _given(args, names)
    if given:
        parser.error(f"--spec {args.spec} fixes {what}: leave out {', '.join(given)}")


def _add_sweep(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The database gets one row per point; its 'seconds' column is the wall time of the learner's fit "
        "and transform only (not sampling the data, not scoring). A database takes one sweep at a time: "
        "a second 'lpbook sweep' into it is refused while the first runs. "
        "With --spec NAME, the experiment NAME of lpbook.experiments gives the learner, its options, the grammars, "
        "the sizes, the seeds and the test-set size (at the scale LPBOOK_SCALE names, for a chapter's sweep), "
        "and --db defaults to results/NAME.sqlite for a recorded sweep, else to the chapter's cache folder; "
        "--option then sets runtime options only (device, threads, progress)."
    )
    parser.add_argument("--spec", metavar="NAME",
                        help="run the experiment NAME of lpbook.experiments.SWEEPS instead of giving the sweep here")
    _add_learner_and_grammar(parser, many=True)
    parser.add_argument(
        "--rule-probs", choices=RULE_PROBS, default=None,
        help="how a symbol picks its productions: uniformly (the paper's grammars, the default) or with Zipf "
        "probabilities k**(-a); stored with each point",
    )
    parser.add_argument(
        "--zipf-a", type=_non_negative, nargs="+", metavar="A",
        help="Zipf exponents a >= 0, one sweep grammar each (needs --rule-probs zipf; default 1)",
    )
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument("--P", type=_at_least_1, nargs="+", help="training-set sizes")
    grid.add_argument(
        "--P-range", type=_at_least_1, nargs=3, metavar=("MIN", "MAX", "N"), help="N log-spaced sizes from MIN to MAX"
    )
    grid.add_argument(
        "--P-range-scaled", type=_positive, nargs=3, metavar=("LO", "HI", "N"),
        help="per grammar, N log-spaced sizes from LO*SCALE to HI*SCALE, SCALE given by --scale "
        "(e.g. --P-range-scaled 0.5 50 12 --scale 'v*m**3': one command for every m)",
    )
    parser.add_argument(
        "--scale", type=_scale, metavar="EXPR",
        help="with --P-range-scaled: an expression in v, m, s, L, n_classes, e.g. 'v*m**3' or 'n_classes*m**L'",
    )
    parser.add_argument("--seeds", type=_at_least_1, help="number of seeds, 0..N-1 (default 5)")
    parser.add_argument("--n-test", type=_at_least_1, help="test-set size (default 2000)")
    parser.add_argument("--db", help="SQLite file of results (created if missing; required without --spec)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_at_least_1, help="worker processes, one thread each (default: every CPU, os.cpu_count())")
    where.add_argument(
        "--dask", metavar="ADDRESS",
        help="run the points on the Dask scheduler at ADDRESS (tcp://host:8786) instead; needs lpbook[cluster]",
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="learner option, VALUE parsed as JSON when possible (repeatable)",
    )
    parser.add_argument(
        "--no-progress", action="store_true",
        help="hide the sweep's progress bar (the learners never show bars of their own in a sweep)",
    )
    parser.add_argument(
        "--record", action="store_true",
        help="write the sidecar DB.json (command, version, git commit, hardware, wall time; see lpbook.results)",
    )


def _level(text: str):
    """An argparse ``type``: ``top``, ``root``, or an integer (negative ones count from the root)."""
    if text in ("top", "root"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, 'top' or 'root', got {text!r}") from None


def _resolve_level(level, L: int) -> int:
    """The absolute level that ``--level`` names in a grammar of depth ``L``."""
    if level == "top":
        return L - 1
    if level == "root":
        return L
    return level if level >= 0 else L + level


def _add_pstar(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "P* is where the median accuracy over seeds first reaches the threshold (linear in log P); "
        "(P, seed) pairs missing from a grid are left out and listed on stderr. "
        "JSON and CSV give null/empty bounds where the interval leaves the grid."
    )
    parser.add_argument("--db", required=True, help="SQLite file written by 'lpbook sweep'")
    parser.add_argument("--learner", required=True, help=f"registered name of the learner: {_LEARNERS}")
    parser.add_argument(
        "--level", type=_level, required=True,
        help="level whose accuracy defines P*: an integer, negative ones counted from the root "
        "(-1 is L-1), 'top' (L-1, the highest latent level) or 'root' (L)",
    )
    parser.add_argument("--threshold", type=_fraction, default=0.9, help="accuracy that defines P* (default 0.9)")
    parser.add_argument("--n-boot", type=_at_least_1, default=1000, help="bootstrap draws (default 1000)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the bootstrap (default 0)")
    filters = parser.add_argument_group("filters (keep the settings that match)")
    filters.add_argument("--v", type=_at_least_2, nargs="+", help="alphabet sizes")
    filters.add_argument("--m", type=_at_least_1, nargs="+", help="productions per symbol")
    filters.add_argument("--s", type=_at_least_2, nargs="+", help="branching factors")
    filters.add_argument("--L", type=_at_least_1, nargs="+", help="depths")
    filters.add_argument("--n-classes", type=_at_least_1, nargs="+", help="root alphabet sizes")
    filters.add_argument("--n-test", type=_at_least_1, nargs="+", help="test-set sizes")
    filters.add_argument("--rule-probs", choices=RULE_PROBS, nargs="+", help="production laws (uniform, zipf)")
    filters.add_argument("--zipf-a", type=_non_negative, nargs="+", metavar="A", help="Zipf exponents")
    filters.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="keep settings whose learner option KEY equals VALUE (parsed as JSON when possible; repeatable)",
    )
    parser.add_argument(
        "--fit", choices=("m", "L"),
        help="also fit log P* against log m (the exponent in m) or against L (the growth per level), "
        "over the settings that differ only in that parameter, with a bootstrap interval",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of text")
    output.add_argument("--csv", action="store_true", help="print CSV instead of text")


def _add_rekey(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "A learner's runtime options (device, threads, progress) say how a fit runs, not what it computes, so "
        "they are no part of a point's key or of a sidecar's settings. This rewrites, in place, results stored "
        "with them: the keys and options of a database's points and its sidecar's settings, or a saved network's "
        "sidecar. Each sidecar's command stays as it was run. Rerunning it changes nothing."
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="sweep databases (.sqlite) or saved networks (.npz), each with or without a sidecar")


def _run_rekey(parser: argparse.ArgumentParser, args) -> None:
    for path in args.paths:
        try:
            done = results.rekey(path)
        except (ValueError, OSError, sqlite3.Error) as exc:
            _fail(exc)
        points = (f"{done['rekeyed']} of {done['points']} points rekeyed, {done['merged']} merged; "
                  if "points" in done else "")
        print(f"{path}: {points}sidecar {'rewritten' if done['sidecar'] else 'unchanged'}")


def _run_learners(parser: argparse.ArgumentParser, args) -> None:
    for entry in describe():
        labels = "needs labels" if entry["labels"] else "no labels"
        print(f"{entry['name']} ({entry['cls']}, {labels})")
        for name, option in entry["options"].items():
            print(f"    --option {name}=...  (default {option['default']}; {option['values']})")
    for name, cls in unavailable().items():
        print(f"{name} ({cls}): unavailable, {NEEDS_TORCH}")


def _fail(message) -> NoReturn:
    """Exit with status 2 and ``message`` on one line of stderr."""
    print(f"lpbook: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------- sweep
def _parse_options(parser: argparse.ArgumentParser, items: list[str]) -> dict:
    """``--option KEY=VALUE`` items as a dict; values are JSON when they parse, else strings."""
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            parser.error(f"--option must be KEY=VALUE with KEY a Python identifier, got {item!r}")
        if key in options:
            parser.error(f"--option {key} is given twice")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def _grammars(parser: argparse.ArgumentParser, args) -> list[Grammar]:
    """The grid v x m x s x L (x zipf_a), every combination checked."""
    args.rule_probs = args.rule_probs or "uniform"
    if args.zipf_a is not None and args.rule_probs != "zipf":
        parser.error("--zipf-a needs --rule-probs zipf")
    grammars = []
    for v, m, s, L, a in itertools.product(args.v, args.m, args.s, args.L, args.zipf_a or [None]):
        try:
            grammars.append(Grammar(v, m, s, L, n_classes=args.n_classes, rule_probs=args.rule_probs, zipf_a=a))
        except ValueError as exc:
            law = "" if args.rule_probs == "uniform" else f" rule_probs={args.rule_probs} zipf_a={a}"
            parser.error(f"invalid grammar v={v} m={m} s={s} L={L} n_classes={args.n_classes}{law}: {exc}")
    return grammars


def _P_grid(parser: argparse.ArgumentParser, args):
    """The sizes of ``--P`` or ``--P-range``, or a function of the grammar for ``--P-range-scaled``."""
    if (args.scale is None) != (args.P_range_scaled is None):
        parser.error("--P-range-scaled and --scale go together")
    if args.P is None and args.P_range is None and args.P_range_scaled is None:
        parser.error("one of the arguments --P --P-range --P-range-scaled is required (or name an experiment with --spec)")
    if args.P is not None:
        return args.P
    if args.P_range_scaled is not None:
        low, high, n = args.P_range_scaled
        if n != int(n) or n < 1:
            parser.error(f"--P-range-scaled needs N a positive integer, got {n:g}")
        try:
            return scaled_grid(low, high, int(n), args.scale)
        except ValueError as exc:
            parser.error(f"--P-range-scaled: {exc}")
    P_min, P_max, n = args.P_range
    if P_min > P_max:
        parser.error(f"--P-range needs MIN <= MAX, got MIN={P_min} MAX={P_max}")
    return log_grid(P_min, P_max, n)


def _check_learner(parser: argparse.ArgumentParser, name: str) -> None:
    try:
        get(name)
    except (ValueError, ModuleNotFoundError) as err:  # an unknown name, or a neural learner without torch
        parser.error(f"--{err}")


@contextmanager
def _executor(address: str | None):
    """The Dask cluster's executor at ``address``, or ``None`` (the sweep's own process pool)."""
    if address is None:
        yield None
        return
    from .remote import dask_executor

    with dask_executor(address) as executor:
        yield executor


def _sweep_of_arguments(parser: argparse.ArgumentParser, args, options: dict) -> SimpleNamespace:
    """The sweep that the options describe: learner, grammars, P_grid, seeds, options, n_test, db, measure."""
    _required(parser, args, ("--learner", "--v", "--m", "--s", "--L", "--db"))
    grammars = _grammars(parser, args)
    P_grid = _P_grid(parser, args)
    _check_learner(parser, args.learner)
    return SimpleNamespace(learner=args.learner, grammars=grammars, P_grid=P_grid,
                           seeds=5 if args.seeds is None else args.seeds, options=options,
                           n_test=2000 if args.n_test is None else args.n_test, db=args.db, measure=None)


def _sweep_of_spec(parser: argparse.ArgumentParser, args, options: dict) -> SimpleNamespace:
    """The sweep of the experiment ``--spec`` names, with ``options`` as its runtime options."""
    _fixed_by_spec(parser, args, ("--learner", "--v", "--m", "--s", "--L", "--n-classes", "--rule-probs", "--zipf-a",
                                  "--P", "--P-range", "--P-range-scaled", "--scale", "--seeds", "--n-test"),
                   "the learner, the grammars, the sizes, the seeds and the test-set size")
    try:
        spec = experiments.sweep_spec(args.spec)
    except ValueError as exc:
        parser.error(f"--{exc}")
    _check_learner(parser, spec.learner)
    identity, runtime = split_runtime(get(spec.learner), options)
    if identity:
        parser.error(f"--spec {spec.name} fixes the learner's options: --option may set runtime options only "
                     f"({', '.join(sorted(get(spec.learner).runtime_params))}), got {', '.join(identity)}")
    plan = spec.plan()
    db = args.db or (os.path.join(results.RESULTS_DIR, f"{spec.name}.sqlite") if spec.recorded else spec.database)
    return SimpleNamespace(learner=spec.learner, grammars=plan.grammars, P_grid=plan.P_grid, seeds=plan.seeds,
                           options={**spec.learner_options(), **runtime}, n_test=plan.n_test, db=db,
                           measure=spec.measure)


def _run_sweep(parser: argparse.ArgumentParser, args) -> None:
    options = _parse_options(parser, args.option)
    job = (_sweep_of_arguments if args.spec is None else _sweep_of_spec)(parser, args, options)
    if args.record:
        try:
            settings = results.sweep_settings(job.learner, job.grammars, job.P_grid, job.seeds, options=job.options,
                                              n_test=job.n_test)
            results.check_sidecar_settings(job.db, settings)
        except (ValueError, TypeError) as exc:
            parser.error(str(exc))
    started, clock, source = datetime.now(timezone.utc), time.perf_counter(), results.source_state()
    try:
        # nothing to do (every point stored): no cluster, no lock, nothing written, so a read-only folder will do
        rows = done = sweep.cached_sweep(job.learner, job.grammars, job.P_grid, job.seeds, job.db, options=job.options,
                                         n_test=job.n_test)
        if done is None:
            with _executor(args.dask) as executor:
                rows = sweep.run_sweep(
                    job.learner, job.grammars, job.P_grid, job.seeds, job.db, options=job.options, n_test=job.n_test,
                    executor=executor, workers=args.workers, progress=not args.no_progress, measure=job.measure,
                )
    except DatabaseError as exc:
        _fail(exc)
    except (ValueError, TypeError) as exc:  # checks that run before any point
        parser.error(str(exc))
    except (RuntimeError, OSError, ImportError, sqlite3.Error) as exc:
        _fail(exc)
    if args.record and (done is None or not results.sidecar_path(job.db).exists()):
        try:
            path = results.write_sidecar(
                job.db, args.argv, settings, source, started, time.perf_counter() - clock
            )
        except (ValueError, OSError) as exc:
            _fail(exc)
        print(f"its sidecar is {path}")
    print(f"{len(rows)} points of this sweep are stored in {job.db}")


# --------------------------------------------------------------------- fit
def _add_fit(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The training set is the one a sweep point of the same grammar, P and seed uses (grammar seed SEED, "
        "sample seed 2*SEED), so the point's test set (sample seed 2*SEED+1) measures the saved learner. "
        "Load it with lpbook.learners.Learner.load; lpbook.results.check_network checks it against its sidecar. "
        "OUT (and its sidecar) must be writable: that is checked before training. A network (masked-token, data2vec) "
        "keeps its training's state in OUT.checkpoint at every evaluation: rerunning an interrupted command goes on "
        "from there and ends with the bytes of an uninterrupted fit; the file is deleted once OUT is saved. "
        "With --spec NAME, every network of the set NAME of lpbook.experiments.NETWORKS that the repository's "
        "results/ lacks is fitted and saved where the set says (run it from the repository); --option then sets "
        "runtime options only (device, threads, progress)."
    )
    parser.add_argument("--spec", metavar="NAME",
                        help="fit the networks of the set NAME of lpbook.experiments.NETWORKS that are not saved yet")
    _add_learner_and_grammar(parser, many=False)
    parser.add_argument("--P", type=_at_least_2, help="training-set size (required without --spec)")
    parser.add_argument("--seed", type=_int_at_least(0), help="seed of the grammar and the samples (default 0)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="learner option, VALUE parsed as JSON when possible (repeatable)",
    )
    parser.add_argument("--out", help="file to save the fitted learner to (.npz; required without --spec)")
    parser.add_argument(
        "--record", action="store_true",
        help="write the sidecar OUT.json (command, settings, version, git commit, hardware, wall time)",
    )


def _run_fit(parser: argparse.ArgumentParser, args) -> None:
    options = _parse_options(parser, args.option)
    if args.spec is not None:
        return _fit_spec(parser, args, options)
    _required(parser, args, ("--learner", "--v", "--m", "--s", "--L", "--P", "--out"))
    _check_learner(parser, args.learner)
    try:
        grammar = Grammar(args.v, args.m, args.s, args.L, n_classes=args.n_classes)
        settings = results.network_settings(args.learner, grammar, args.P, args.seed or 0, options)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    _fit_one(parser, args, settings, split_runtime(get(args.learner), options)[1], args.out)


def _fit_spec(parser: argparse.ArgumentParser, args, options: dict) -> None:
    """Fit, save and (with ``--record``) record every network of the set ``--spec`` names that is not saved yet."""
    _fixed_by_spec(parser, args, ("--learner", "--v", "--m", "--s", "--L", "--n-classes", "--P", "--seed", "--out"),
                   "the learners, grammars, sizes, seeds, options and files")
    try:
        networks = experiments.network_set(args.spec)
    except ValueError as exc:
        parser.error(f"--{exc}")
    found = results.find_results_dir()
    if found is None:
        _fail(f"no results folder here or above: run 'lpbook fit --spec {networks.name}' from the repository")
    missing = networks.missing(found.parent)
    print(f"{len(networks.fits) - len(missing)} of the {len(networks.fits)} networks of {networks.name} are saved")
    for fit in missing:
        _check_learner(parser, fit.learner)
        identity, runtime = split_runtime(get(fit.learner), options)
        if identity:
            parser.error(f"--spec {networks.name} fixes the learners' options: --option may set runtime options "
                         f"only, got {', '.join(identity)}")
        _fit_one(parser, args, fit.settings(), runtime, str(found.parent / fit.path))


def _fit_one(parser: argparse.ArgumentParser, args, settings: dict, runtime: dict, out: str) -> None:
    """Fit the network of ``settings`` with ``runtime`` options, save it to ``out`` and, with ``--record``, its sidecar."""
    try:  # before training, so that a fit is never lost for want of a place to save it
        check_writable(out, f"--out {out!r}")
        if args.record:
            check_writable(results.sidecar_path(out), f"the sidecar of --out {out!r}, {str(results.sidecar_path(out))!r},")
            results.check_sidecar_settings(out, settings, kind="fit", option="--out")
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    started, clock, source = datetime.now(timezone.utc), time.perf_counter(), results.source_state()
    checkpoint = Path(f"{out}.checkpoint")
    if checkpoint.is_file():
        print(f"going on from the checkpoint {checkpoint}")
    try:
        learner = results.fit_network(settings, runtime, checkpoint=checkpoint)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    except (RuntimeError, OSError, ImportError) as exc:
        _fail(exc)
    _save_fit(learner, out)
    checkpoint.unlink(missing_ok=True)
    if args.record:  # a refit replaces the sidecar (a sweep's adds its time, since it resumes)
        try:
            results.sidecar_path(out).unlink(missing_ok=True)
            path = results.write_sidecar(out, args.argv, settings, source, started, time.perf_counter() - clock)
        except OSError as exc:
            _fail(f"saved the fitted {type(learner).__name__} to {out}, but not its sidecar: {exc}")
        print(f"its sidecar is {path}")
    print(f"saved the fitted {type(learner).__name__} to {out}")


def _save_fit(learner, out: str) -> None:
    """Save ``learner`` to ``out``; if that fails (``out`` was checked before training, but a disk can fill
    or a folder vanish meanwhile), save it to a temporary file instead, say where, and exit with status 2."""
    try:
        learner.save(out)
        return
    except OSError as exc:
        failure = exc
    try:
        fd, rescue = tempfile.mkstemp(prefix="lpbook-fit-", suffix=".npz")
        os.close(fd)
        learner.save(rescue)
    except OSError as exc:
        _fail(f"could not save the fitted {type(learner).__name__} to {out!r} ({failure}), nor to a temporary "
              f"file ({exc}): the fit is lost")
    _fail(f"could not save the fitted {type(learner).__name__} to {out!r} ({failure}); it is saved at {rescue!r} "
          "instead, without a sidecar: move it to its place")


# ------------------------------------------------------------------- pstar
def _bound(value: float, P_grid: tuple) -> str:
    """A P* or interval bound; ``0`` and ``inf`` (censored draws) as off-grid bounds."""
    if value == 0:
        return f"<{P_grid[0]}"
    if value == float("inf"):
        return f">{P_grid[-1]}"
    return f"{value:.4g}"


def _describe(pstar: PStar) -> str:
    interval = f"[{_bound(pstar.low, pstar.P_grid)}, {_bound(pstar.high, pstar.P_grid)}]"
    if pstar.censored == "below":
        value = f"P* < {pstar.P_grid[0]} (median already >= {pstar.threshold} there)"
    elif pstar.censored == "above":
        value = f"P* > {pstar.P_grid[-1]} (median never reaches {pstar.threshold})"
    else:
        value = f"P* = {pstar.value:.4g}"
    return f"{value} {interval} ({pstar.confidence:.0%} interval, {pstar.n_seeds} seeds)"


def _setting_label(row: dict) -> str:
    fields = ("v", "m", "s", "L", "n_classes", "n_test")
    uniform = row.get("rule_probs", "uniform") == "uniform"
    law = "" if uniform else f" rule_probs={row['rule_probs']} zipf_a={row['zipf_a']:g}"
    return " ".join(f"{name}={row[name]}" for name in fields) + law + f" options={json.dumps(row['options'])}"


def _row_filters(parser: argparse.ArgumentParser, args):
    """A predicate on rows from the filter options of ``pstar``."""
    wanted = {name: set(values) for name in ("v", "m", "s", "L", "n_classes", "n_test", "rule_probs", "zipf_a")
              if (values := getattr(args, name)) is not None}
    options = _parse_options(parser, args.option)

    def keep(row: dict) -> bool:
        return all(row[name] in values for name, values in wanted.items()) and all(
            key in row["options"] and row["options"][key] == value for key, value in options.items()
        )

    return keep


def _bound_value(value: float):
    """A P* bound for JSON and CSV: ``None`` where it leaves the grid (0 or inf)."""
    return None if value == 0 or math.isinf(value) else value


def _pstar_record(row: dict, pstar: PStar) -> dict:
    return {
        "learner": row["learner"],
        **{name: row[name] for name in ("v", "m", "s", "L", "n_classes", "n_test", "rule_probs", "zipf_a")},
        "options": row["options"], "level": pstar.level, "threshold": pstar.threshold,
        "pstar": None if pstar.censored else pstar.value, "low": _bound_value(pstar.low),
        "high": _bound_value(pstar.high), "censored": pstar.censored, "confidence": pstar.confidence,
        "n_seeds": pstar.n_seeds, "P_min": pstar.P_grid[0], "P_max": pstar.P_grid[-1],
        "missing": [list(pair) for pair in pstar.missing],
    }


def _fits(records: list, pstars: list, variable: str, args) -> list[dict]:
    """:func:`lpbook.pstar.exponent_fits` over the settings that differ only in ``variable`` (``m`` or ``L``), as records."""
    entries = []
    for fit in exponent_fits(records, pstars, variable, n_boot=args.n_boot, seed=args.seed):
        entry = fit.setting | {"fit": variable, variable: sorted(fit.x)}
        if fit.exponent is None:
            entry |= {"slope": None, "low": None, "high": None, "n_points": fit.n_points}
        else:
            exponent = fit.exponent
            entry |= {"slope": exponent.slope, "low": exponent.low, "high": exponent.high, "n_points": fit.n_points}
            if fit.growth is not None:  # the growth of P* per level
                entry |= dict(zip(("growth", "growth_low", "growth_high"), fit.growth))
        entries.append(entry)
    return entries


def _describe_fit(fit: dict) -> str:
    label = " ".join(f"{k}={fit[k]}" for k in ("v", "m", "s", "L", "n_classes", "n_test") if k != fit["fit"])
    label += f" options={json.dumps(fit['options'])} {fit['fit']} in {fit[fit['fit']]}"
    if fit["slope"] is None:
        return f"{label}: not measured (fewer than 2 uncensored P*)"
    if fit["fit"] == "m":
        return f"{label}: P* ~ m^{fit['slope']:.3g} [{fit['low']:.3g}, {fit['high']:.3g}] ({fit['n_points']} P*)"
    return (f"{label}: P* grows x{fit['growth']:.3g} [{fit['growth_low']:.3g}, {fit['growth_high']:.3g}] "
            f"per level ({fit['n_points']} P*)")


def _run_pstar(parser: argparse.ArgumentParser, args) -> None:
    keep = _row_filters(parser, args)
    try:
        rows = load_results(args.db, learner=args.learner)
    except (ValueError, OSError, sqlite3.Error) as exc:
        _fail(exc)
    if not rows:
        _fail(f"{args.db} holds no points of learner {args.learner!r}")
    rows = [row for row in rows if keep(row)]
    if not rows:
        _fail(f"{args.db} holds no points of learner {args.learner!r} that match the filters")
    records, pstars, failed = [], [], False
    for group in group_results(rows).values():
        row = group[0]
        try:
            pstar = estimate_pstar(group, _resolve_level(args.level, row["L"]), args.threshold,
                                         n_boot=args.n_boot, seed=args.seed)
        except ValueError as exc:
            print(f"lpbook: error: {_setting_label(row)}: {exc}", file=sys.stderr)
            failed = True
            continue
        if pstar.missing:
            shown = ", ".join(f"(P={P}, seed={seed})" for P, seed in pstar.missing[:10])
            more = f" and {len(pstar.missing) - 10} more" if len(pstar.missing) > 10 else ""
            print(f"lpbook: note: {_setting_label(row)}: {len(pstar.missing)} (P, seed) pairs missing, "
                  f"left out: {shown}{more}", file=sys.stderr)
        records.append(_pstar_record(row, pstar))
        pstars.append(pstar)
    fits = _fits(records, pstars, args.fit, args) if args.fit else []
    if args.json:
        print(json.dumps({"pstar": records, "fits": fits} if args.fit else {"pstar": records}, indent=1))
    elif args.csv:
        table = fits if args.fit else records
        if table:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(table[0]), lineterminator="\n")
            writer.writeheader()
            for entry in table:
                writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in entry.items()})
    else:
        print(f"P* of level {args.level} at accuracy {args.threshold}, learner {args.learner!r}:")
        relative = not (isinstance(args.level, int) and args.level >= 0)
        for record, pstar in zip(records, pstars):
            level = f" level={pstar.level}" if relative else ""
            print(f"{_setting_label(record)}{level}: {_describe(pstar)}")
        if args.fit:
            print(f"Fits of log P* against {'log m' if args.fit == 'm' else 'L'} (95% bootstrap intervals):")
            for fit in fits:
                print(_describe_fit(fit))
    if failed:
        sys.exit(2)


#: What Ctrl-C leaves behind, by command (a sweep says it itself, with its counts: see lpbook.sweep.SweepInterrupted).
_AFTER_INTERRUPT = {
    "fit": "the fit was not saved; a network's training goes on from its last checkpoint (OUT.checkpoint) when the "
           "command is run again, other learners fit from the start",
}


def main(argv=None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args.handler(args.subparser, args)
    except KeyboardInterrupt as interrupt:
        said = _AFTER_INTERRUPT.get(args.command) or str(interrupt)
        print(f"lpbook: interrupted: {said}" if said else "lpbook: interrupted", file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
