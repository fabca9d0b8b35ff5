"""Helpers for the chapters: glue numbers into the prose, and show their results.

Every number that the prose quotes is computed by an executed cell and glued
with :func:`glue`; the book then pastes it with ``{glue:text}`` or
``{glue:md}``. In a plain Jupyter or Colab session without ``myst_nb``,
:func:`glue` only displays the value (when asked), so the chapters run anywhere.

A chapter's sweeps are the experiments of :mod:`lpbook.experiments`; each
runs into the chapter's own folder, :func:`cache_dir`
(:func:`lpbook.storage.cache_dir`), so that rerunning a chapter (after a
disconnect, say) resumes its sweeps instead of starting over, and nothing is
left in temporary folders.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import results
from .storage import CACHE_VARIABLE, cache_dir, user_cache_root  # noqa: F401  (the chapters' sweeps: lpbook.storage)

try:  # the book build
    from myst_nb import glue as _myst_glue
except ImportError:  # Colab, plain Jupyter
    _myst_glue = None


def glue(name: str, value, display: bool = False) -> None:
    """Record ``value`` under ``name`` for the book; show it too when ``display``."""
    if _myst_glue is not None:
        _myst_glue(name, value, display=display)
    elif display:
        from IPython.display import display as show

        show(value)


def sci(x: float, digits: int = 2) -> str:
    r"""``x`` in LaTeX scientific notation, e.g. ``2.5 \times 10^{58}``; plain for moderate ``x``.

    Exact Python ints of any size are accepted (``float`` would overflow past 1e308).
    """
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    if -2 <= exponent < 4:
        return f"{x:.{max(digits - 1 - exponent, 0)}f}" if isinstance(x, float) else f"{x}"
    mantissa = x / 10**exponent if isinstance(x, float) else float(x * 10**digits // 10**exponent) / 10**digits
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return rf"{mantissa:.{digits - 1}f} \times 10^{{{exponent}}}"


def glue_math(name: str, x: float, digits: int = 2) -> None:
    """Glue ``x`` as inline math in scientific notation, to paste with ``{glue:md}`name```."""
    from IPython.display import Markdown

    glue(name, Markdown(f"${sci(x, digits)}$"))


def estimate_text(fit, transform=lambda value: value):
    """A fitted slope with its interval as Markdown, ``"b (low to high)"``, after ``transform``.

    ``fit`` is an :class:`lpbook.pstar.Exponent` or ``None`` (nothing measured),
    which gives a sentence saying so instead of a number.
    """
    from IPython.display import Markdown

    if fit is None:
        return Markdown("(not measured: too few uncensored $P^*$ at this scale)")
    return Markdown(f"{transform(fit.slope):.2f} ({transform(fit.low):.2f} to {transform(fit.high):.2f})")


def pstar_text(pstar) -> str:
    """A :class:`lpbook.pstar.PStar` as text: ``"1,234"``, or where it lies when the grid censors it ("above 4,000")."""
    if pstar.censored == "above":
        return f"above {pstar.P_grid[-1]:,.0f}"
    if pstar.censored == "below":
        return f"below {pstar.P_grid[0]:,.0f}"
    return f"{pstar.value:,.0f}"


def pstar_interval_text(pstar) -> str:
    """A :class:`lpbook.pstar.PStar` with its interval: ``"7,377 (5,466 to 9,012)"``, an end the grid leaves open
    named as such (``"7,377 (5,466 to beyond the largest size, 16,000)"``); a censored one as :func:`pstar_text`."""
    if pstar.censored is not None:
        return pstar_text(pstar)
    low = f"{pstar.low:,.0f}" if math.isfinite(pstar.low) else f"below the smallest size, {pstar.P_grid[0]:,}"
    high = f"{pstar.high:,.0f}" if math.isfinite(pstar.high) else f"beyond the largest size, {pstar.P_grid[-1]:,}"
    return f"{pstar.value:,.0f} ({low} to {high})"


def span_text(values, digits: int = 2, empty: str = "(none)") -> str:
    """The range of ``values`` as ``"0.05 to 0.10"`` with ``digits`` decimals, one number where both ends read the
    same, and ``empty`` where there are none."""
    values = list(values)
    if not values:
        return empty
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low} to {high}"


def ratio_text(ratio) -> str:
    """A ratio of two ``P*`` with its interval, ``(value, low, high)`` as :func:`lpbook.pstar.pstar_ratio` gives it:
    ``"2.79 (2.12 to 3.81)"``, an open upper end as ``"∞"``; ``"not measured (a P* is censored)"`` without a value."""
    value, low, high = ratio
    if not math.isfinite(value):
        return "not measured (a P* is censored)"
    return f"{value:.2f} ({low:.2f} to {'∞' if high == math.inf else f'{high:.2f}'})"


def rows_by(rows: list[dict], *fields: str) -> dict:
    """Sweep rows split by the values of ``fields`` (e.g. ``"m", "L"``), sorted by those values.

    A spec of :mod:`lpbook.experiments` runs several grammars into one
    database; this gives each grammar's rows. With one field the keys are its
    values, with several the tuples of their values.
    """
    if not fields:
        raise ValueError("rows_by needs at least one field, e.g. rows_by(rows, 'L')")
    groups: dict = {}
    for row in rows:
        key = tuple(row[name] for name in fields)
        groups.setdefault(key[0] if len(fields) == 1 else key, []).append(row)
    return dict(sorted(groups.items()))


def how_computed(*paths, title: str = "How this was computed"):
    """A collapsed block saying how the precomputed results at ``paths`` were made, for a chapter to display.

    ``paths`` are committed databases or networks (``results/NAME.sqlite``,
    ``results/networks/NAME.npz``), each with its sidecar
    (:func:`lpbook.results.read_sidecar`). For each one the block shows the
    command in a code block, then the commit, the hardware and the wall time.
    Returns an :class:`IPython.display.HTML` (a ``<details>`` element, closed),
    which the book, Jupyter and Colab all render; ``ValueError`` without paths.
    """
    from html import escape

    from IPython.display import HTML

    from . import results

    if not paths:
        raise ValueError("how_computed needs at least one path of a committed result")
    items = []
    for path in paths:
        record = results.read_sidecar(path)
        hw = record["hardware"]
        commit = (record["git_commit"] or "outside a git checkout")[:10] + (" (with local changes)" if record["git_dirty"] else "")
        torch_text = f", torch {hw['torch']}" if hw.get("torch") else ""
        wall = record["wall_seconds"]
        wall_text = f"{wall / 3600:.1f} hours" if wall >= 3600 else f"{wall / 60:.0f} minutes" if wall >= 60 else f"{wall:.0f} seconds"
        items.append(
            f"<p><code>{escape(Path(path).name)}</code></p>"
            f"<pre style=\"white-space: pre-wrap\"><code>{escape(record['command'])}</code></pre>"
            f"<p>lpbook {escape(record['version'])}, commit <code>{escape(commit)}</code>; "
            f"{hw['cpu_count']} CPU cores ({escape(str(hw['processor']))}), accelerator: "
            f"{escape(str(hw['accelerator'] or 'none'))}{escape(torch_text)}; "
            f"{wall_text} of wall time, finished {escape(record['finished'][:10])}.</p>"
        )
    return HTML(f'<details class="lpbook-provenance"><summary>{escape(title)}</summary>{"".join(items)}</details>')


def pstars_by_depth(rows_by_depth: dict, *, root: bool = False, threshold: float = 0.9):
    """The depths whose rows are present and the ``P*`` of each one's top level, as ``(depths, pstars)``.

    ``rows_by_depth`` maps a depth ``L`` to sweep rows or ``None`` (not stored),
    as :func:`stored_sweep` returns them. The top level is ``L - 1``, the last
    one learned without labels, or the root ``L`` when ``root``.
    """
    from .pstar import estimate_pstar

    depths = sorted(L for L, rows in rows_by_depth.items() if rows is not None)
    return depths, [estimate_pstar(rows_by_depth[L], L if root else L - 1, threshold=threshold) for L in depths]


_MEASURED: dict = {}  # (network file, its mtime) -> NetworkPoint: a network is measured once per session


def _measure(fit, net, folder: Path):
    """:func:`lpbook.neural.measure.measure_network` of the committed network ``net`` of ``fit``, once per file."""
    from .neural.measure import measure_network

    path = folder.parent / fit.path
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _MEASURED:
        _MEASURED[key] = measure_network(net, dict(fit.grammar), fit.P, fit.seed)
    return _MEASURED[key]


def _committed_networks(names, select) -> dict:
    """``{fit.path: (fit, network)}`` for the committed networks of the sets ``names`` that ``select`` keeps,
    each loaded once (a network two sets share, once)."""
    from .experiments import network_set

    found = {}
    for name in ([names] if isinstance(names, str) else names):
        for fit, net in network_set(name).committed(select=lambda fit: fit.path not in found and select(fit)):
            found[fit.path] = (fit, net)
    return found


def measured_networks(names, learner: str, select=lambda fit: True, **family) -> dict:
    """Every committed network of the sets ``names`` of :data:`lpbook.experiments.NETWORKS` fitted by ``learner`` on
    grammars with ``family``'s values (e.g. ``v=16, m=3``) that ``select(fit)`` keeps, measured, by depth:
    ``{L: [NetworkPoint, ...]}``.

    Each network is loaded once (a network two sets share, once), checked
    against its sidecar and measured on its point's held-out strings
    (:func:`lpbook.neural.measure.measure_network`, once per session and file);
    within a depth the points are sorted by ``(P, seed)``. Empty when no
    results folder is found.
    """
    folder = results.find_results_dir()
    found = _committed_networks(names, lambda fit: fit.learner == learner and select(fit) and all(
        fit.grammar[key] == value for key, value in family.items()))
    by_depth = {}
    for fit, net in found.values():
        by_depth.setdefault(fit.grammar["L"], []).append(_measure(fit, net, folder))
    return {L: sorted(points, key=lambda p: (p.P, p.seed)) for L, points in sorted(by_depth.items())}


def own_and_new(names, learner: str, select=lambda fit: True) -> dict:
    """Every committed network of the sets ``names`` fitted by ``learner`` that ``select(fit)`` keeps, measured on
    new strings and on its own: ``{fit.path: (NetworkPoint, excess on its training strings)}``.

    The point is :func:`lpbook.neural.measure.measure_network`'s (its
    ``excess_loss`` on the held-out strings; shared with
    :func:`measured_networks`), the float
    :func:`lpbook.neural.measure.training_excess`. Both above the floor and
    equal say a network underfits the strings it was given; a lower one on its
    own strings, that it fits them better than it generalises.
    """
    from .neural.measure import training_excess

    folder = results.find_results_dir()
    return {path: (_measure(fit, net, folder), training_excess(net, dict(fit.grammar), fit.P, fit.seed))
            for path, (fit, net) in _committed_networks(
                names, lambda fit: fit.learner == learner and select(fit)).items()}


def gap_pairs(measured: dict, L: int) -> list[tuple[float, float]]:
    """``(excess on its own strings, excess on new strings)`` of each depth-``L`` network of ``measured`` (what
    :func:`own_and_new` returns)."""
    return [(own, point.excess_loss) for point, own in measured.values() if point.L == L]


def gap_texts(measured: dict, L: int, empty: str = "(not present in this session)") -> tuple[str, str]:
    """The ranges (:func:`span_text`) of the two excesses of :func:`gap_pairs`: on their own strings, on new ones."""
    pairs = gap_pairs(measured, L)
    return tuple(span_text([pair[i] for pair in pairs], empty=empty) for i in (0, 1))


def counted_networks(points: list, *, threshold: float = 0.9) -> list:
    """The networks of one depth whose readouts count towards the top level's ``P*``.

    A network of a size below the largest that read the top level below
    ``threshold`` and whose patience ended its training while its validation
    loss was still falling (``NetworkPoint.unfinished``) is left out: its
    readout bounds from below what its size reaches within the budget of its
    recipe, and is not a finding. Every other network counts (one that ran
    its budget, or had stopped improving), the largest size's included.
    """
    largest = max(p.P for p in points)
    return [p for p in points if p.P == largest or not (p.unfinished and p.accuracy[p.L - 1] < threshold)]


def no_pstar_reason(points: list, *, threshold: float = 0.9) -> str | None:
    """Why the networks ``points`` of one depth give no ``P*`` of the top level, or ``None`` when they give one.

    They give one when the networks that count (:func:`counted_networks`)
    span two sizes or more, and the largest size holds networks on two
    grammars or more (so that the bootstrap over grammars has something to
    resample), each converged (``NetworkPoint.converged``): a readout of an
    unconverged network is not a finding.
    """
    largest = [p for p in points if p.P == max(q.P for q in points)]
    if len({p.P for p in points}) < 2:
        return "one size only"
    if not all(p.converged for p in largest):
        return "its largest size is not converged"
    if len({p.seed for p in largest}) < 2:
        return "one grammar at its largest size"
    if len({p.P for p in counted_networks(points, threshold=threshold)}) < 2:
        return "its smaller sizes hold only unfinished networks"
    return None


def network_pstars(points_by_depth: dict, *, threshold: float = 0.9):
    """The depths whose networks give the top level's ``P*``, and that ``P*``, as ``(depths, pstars)``.

    ``points_by_depth`` is what :func:`measured_networks` returns. A depth
    gives a ``P*`` when :func:`no_pstar_reason` finds no reason against it;
    the ``P*`` is read off the networks that count (:func:`counted_networks`).
    """
    usable = {L: [p.row() for p in counted_networks(points, threshold=threshold)]
              for L, points in points_by_depth.items() if no_pstar_reason(points, threshold=threshold) is None}
    return pstars_by_depth(usable, threshold=threshold)
