"""Helpers for the chapters: glue numbers into the prose.

Every number that the prose quotes is computed by an executed cell and glued
with :func:`glue`; the book then pastes it with ``{glue:text}`` or
``{glue:md}``. In a plain Jupyter or Colab session without ``myst_nb``,
:func:`glue` only displays the value (when asked), so the chapters run anywhere.
"""

from __future__ import annotations

import math

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

    ``fit`` is an :class:`lpbook.sweep.Exponent` or ``None`` (nothing measured),
    which gives a sentence saying so instead of a number.
    """
    from IPython.display import Markdown

    if fit is None:
        return Markdown("(not measured: too few uncensored $P^*$ at this scale)")
    return Markdown(f"{transform(fit.slope):.2f} ({transform(fit.low):.2f} to {transform(fit.high):.2f})")
