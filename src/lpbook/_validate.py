"""Argument checks shared by the public entry points.

Every check raises at the public entry point with a message that names the
parameter and the constraint it broke, so that bad input never surfaces as an
``IndexError`` deep inside numpy.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .tree import Node


def check_int(name: str, value, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise.

    Booleans and non-integral numbers (``2.0`` included) raise ``TypeError``;
    values below ``minimum`` raise ``ValueError``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` as a Python bool, or raise ``TypeError``: only ``True`` and ``False`` (numpy's too) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_float(name: str, value, *, low: float = -math.inf, high: float = math.inf, closed: bool = False,
                closed_high: bool = False) -> float:
    """Return ``value`` as a Python float between ``low`` and ``high``, or raise: the one check of a real option.

    The interval is open unless ``closed`` (``low`` included) or
    ``closed_high`` (``high`` included). Booleans and non-real values raise
    ``TypeError``; values outside the interval (NaN included) raise
    ``ValueError``, which says ``must be finite`` for NaN and infinities when
    an end of the interval is infinite. Both messages name the option.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    above = value >= low if closed else value > low
    below = value <= high if closed_high else value < high
    if above and below:
        return value
    if not math.isfinite(value) and math.inf in (-low, high):
        raise ValueError(f"{name} must be finite, got {value}")
    interval = f"{'[' if closed else '('}{low}, {high}{']' if closed_high else ')'}"
    raise ValueError(f"{name} must lie in {interval}, got {value}")


def check_pair(name: str, value, *, low: float, high: float, closed: bool) -> tuple[float, float]:
    """``value`` as a pair ``(a, b)`` with ``a <= b``, both in ``[low, high]`` (``closed``) or ``(low, high)``
    (:func:`check_float` on each)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers (first, last), got {value!r}")
    a, b = (check_float(name, x, low=low, high=high, closed=closed, closed_high=closed) for x in value)
    if a > b:
        raise ValueError(f"{name} must be (first, last) with first <= last, got {value!r}")
    return a, b


def check_int_array(name: str, array, *, ndim: int | None = None) -> np.ndarray:
    """Return ``array`` as a numpy integer array, or raise.

    Accepts anything ``np.asarray`` turns into an integer (not boolean) array.
    ``ndim`` fixes the number of dimensions.
    """
    arr = np.asarray(array)
    if arr.size == 0 and arr.dtype == np.float64:  # np.asarray([]) is float
        arr = arr.astype(np.int64)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    return arr


def check_range(name: str, arr: np.ndarray, low: int, high: int) -> None:
    """Raise ``ValueError`` unless every entry of ``arr`` lies in ``[low, high)``."""
    if arr.size and (arr.min() < low or arr.max() >= high):
        bad = np.flatnonzero((arr.ravel() < low) | (arr.ravel() >= high))[0]
        index = np.unravel_index(bad, arr.shape)
        raise ValueError(
            f"{name} must hold values in [{low}, {high}), got {arr[index]} at index {tuple(int(i) for i in index)}"
        )


def check_node(rhm, name: str, node) -> Node:
    """Validate a ``(level, pos)`` pair against the grammar ``rhm``; return it as a :class:`~lpbook.tree.Node`."""
    try:
        level, pos = node
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (level, pos) pair, got {node!r}") from None
    level = check_int(f"{name}.level", level, minimum=0)
    if level > rhm.L:
        raise ValueError(f"{name}.level must be <= L = {rhm.L}, got {level}")
    pos = check_int(f"{name}.pos", pos, minimum=0)
    if pos >= rhm.n_positions(level):
        raise ValueError(f"{name}.pos must be < s**(L - level) = {rhm.n_positions(level)}, got {pos}")
    return Node(level, pos)


def memory_limit() -> int:
    """Bytes of physical memory on this machine (``2**40`` where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 40


def format_bytes(n: int) -> str:
    """``n`` bytes in readable units, e.g. ``'8.0 TiB'``; astronomically large ints as ``'10^301030 bytes'``."""
    if n >= 1 << 100:
        return f"about 10^{int(n.bit_length() * math.log10(2))} bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"):
        if n < 1024 or unit == "YiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(name: str, value, n_bytes: int, what: str) -> None:
    """Raise ``ValueError`` naming ``name=value`` when ``what`` would need more than this machine's memory.

    ``n_bytes`` (a Python int, any size) is the memory ``what`` would take;
    the limit is :func:`memory_limit`. Call it before allocating, so that an
    impossible size fails at once instead of deep inside numpy.
    """
    limit = memory_limit()
    if n_bytes > limit:
        raise ValueError(
            f"{name}={value} is too large: {what} would need {format_bytes(n_bytes)}, "
            f"more than this machine's {format_bytes(limit)} of memory"
        )
