"""The command line, ``lpbook`` or ``python -m lpbook``.

- ``lpbook sweep``: run a sample-complexity sweep into a SQLite file (see
  :mod:`lpbook.sweep`); rerunning the same command resumes an interrupted one.
- ``lpbook pstar``: read that file and print ``P*`` with its bootstrap interval
  for each grammar found.

Bad arguments and failures exit with code 2 and a one-line message on stderr
(after argparse's usage line for bad arguments); Ctrl-C exits with code 130.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import sys
import time
from datetime import datetime, timezone
from typing import NoReturn

import lpbook

from . import results, sweep
from .learners import get

#: Exit status after Ctrl-C, as shells report a process killed by SIGINT.
INTERRUPTED = 130


def _int_at_least(minimum: int):
    """An argparse ``type``: an integer ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    """An argparse ``type``: a number in ``(0, 1]``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``lpbook`` with its subcommands ``sweep`` and ``pstar``."""
    parser = argparse.ArgumentParser(prog="lpbook", description="Sample-complexity sweeps of the RHM learners.")
    parser.add_argument("--version", action="version", version=f"lpbook {lpbook.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add, handler, summary in [
        ("sweep", _add_sweep, _run_sweep, "run a sweep (resumes an interrupted one)"),
        ("pstar", _add_pstar, _run_pstar, "print P* for each grammar of a sweep database"),
    ]:
        subparser = commands.add_parser(name, allow_abbrev=False, help=summary)
        add(subparser)
        subparser.set_defaults(handler=handler, subparser=subparser)
    return parser


def _add_sweep(parser: argparse.ArgumentParser) -> None:
    at_least_1, at_least_2 = _int_at_least(1), _int_at_least(2)
    parser.add_argument("--learner", required=True, help="registered name of the learner")
    parser.add_argument("--v", type=at_least_2, nargs="+", required=True, help="alphabet sizes")
    parser.add_argument("--m", type=at_least_1, nargs="+", required=True, help="productions per symbol")
    parser.add_argument("--s", type=at_least_2, nargs="+", required=True, help="branching factors")
    parser.add_argument("--L", type=at_least_1, nargs="+", required=True, help="depths")
    parser.add_argument("--n-classes", type=at_least_1, help="root alphabet size (default: v)")
    grid = parser.add_mutually_exclusive_group(required=True)
    grid.add_argument("--P", type=at_least_1, nargs="+", help="training-set sizes")
    grid.add_argument(
        "--P-range", type=at_least_1, nargs=3, metavar=("MIN", "MAX", "N"), help="N log-spaced sizes from MIN to MAX"
    )
    parser.add_argument("--seeds", type=at_least_1, default=5, help="number of seeds, 0..N-1 (default 5)")
    parser.add_argument("--n-test", type=at_least_1, default=2000, help="test-set size (default 2000)")
    parser.add_argument("--db", required=True, help="SQLite file of results (created if missing)")
    parser.add_argument("--workers", type=at_least_1, help="worker processes (default: all CPUs)")
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="learner option, VALUE parsed as JSON when possible (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--record", action="store_true",
        help="write the sidecar DB.json (command, version, git commit, hardware, wall time; see lpbook.results)",
    )


def _add_pstar(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite file written by 'lpbook sweep'")
    parser.add_argument("--learner", required=True, help="registered name of the learner")
    parser.add_argument("--level", type=_int_at_least(0), required=True, help="level whose accuracy defines P*")
    parser.add_argument("--threshold", type=_fraction, default=0.9, help="accuracy that defines P* (default 0.9)")
    parser.add_argument("--n-boot", type=_int_at_least(1), default=1000, help="bootstrap draws (default 1000)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0, help="seed of the bootstrap (default 0)")


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


def _grammars(parser: argparse.ArgumentParser, args) -> list[sweep.Grammar]:
    """The grid v x m x s x L, every combination checked."""
    grammars = []
    for v, m, s, L in itertools.product(args.v, args.m, args.s, args.L):
        try:
            grammars.append(sweep.Grammar(v, m, s, L, n_classes=args.n_classes))
        except ValueError as exc:
            parser.error(f"invalid grammar v={v} m={m} s={s} L={L} n_classes={args.n_classes}: {exc}")
    return grammars


def _P_grid(parser: argparse.ArgumentParser, args) -> list[int]:
    if args.P is not None:
        return args.P
    P_min, P_max, n = args.P_range
    if P_min > P_max:
        parser.error(f"--P-range needs MIN <= MAX, got MIN={P_min} MAX={P_max}")
    return sweep.log_grid(P_min, P_max, n)


def _check_learner(parser: argparse.ArgumentParser, name: str) -> None:
    try:
        get(name)
    except ValueError as err:
        parser.error(f"--{err}")


def _run_sweep(parser: argparse.ArgumentParser, args) -> None:
    options = _parse_options(parser, args.option)
    grammars = _grammars(parser, args)
    P_grid = _P_grid(parser, args)
    _check_learner(parser, args.learner)
    if args.record:
        try:
            settings = results.sweep_settings(
                args.learner, grammars, P_grid, args.seeds, options=options, n_test=args.n_test
            )
            results.check_sidecar_settings(args.db, settings)
        except (ValueError, TypeError) as exc:
            parser.error(str(exc))
    started, clock, source = datetime.now(timezone.utc), time.perf_counter(), results.source_state()
    try:
        rows = sweep.run_sweep(
            args.learner, grammars, P_grid, args.seeds, args.db, options=options, n_test=args.n_test,
            workers=args.workers, progress=not args.no_progress,
        )
    except (ValueError, TypeError) as exc:  # checks that run before any point
        parser.error(str(exc))
    except (RuntimeError, OSError, sqlite3.Error) as exc:
        _fail(exc)
    if args.record:
        try:
            path = results.write_sidecar(
                args.db, args.argv, settings, source, started, time.perf_counter() - clock
            )
        except (ValueError, OSError) as exc:
            _fail(exc)
        print(f"its sidecar is {path}")
    print(f"{len(rows)} points of this sweep are stored in {args.db}")


# ------------------------------------------------------------------- pstar
def _bound(value: float, P_grid: tuple) -> str:
    """A P* or interval bound; ``0`` and ``inf`` (censored draws) as off-grid bounds."""
    if value == 0:
        return f"<{P_grid[0]}"
    if value == float("inf"):
        return f">{P_grid[-1]}"
    return f"{value:.4g}"


def _describe(pstar: sweep.PStar) -> str:
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
    return " ".join(f"{name}={row[name]}" for name in fields) + f" options={json.dumps(row['options'])}"


def _run_pstar(parser: argparse.ArgumentParser, args) -> None:
    try:
        rows = sweep.load_results(args.db, learner=args.learner)
    except (ValueError, OSError, sqlite3.Error) as exc:
        _fail(exc)
    if not rows:
        _fail(f"{args.db} holds no points of learner {args.learner!r}")
    print(f"P* of level {args.level} at accuracy {args.threshold}, learner {args.learner!r}:")
    failed = False
    for group in sweep.group_results(rows).values():
        try:
            pstar = sweep.estimate_pstar(group, args.level, args.threshold, n_boot=args.n_boot, seed=args.seed)
        except ValueError as exc:
            print(f"lpbook: error: {_setting_label(group[0])}: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{_setting_label(group[0])}: {_describe(pstar)}")
    if failed:
        sys.exit(2)


def main(argv=None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args.handler(args.subparser, args)
    except KeyboardInterrupt:
        print("lpbook: interrupted; finished points are saved, rerun the same command to resume", file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
