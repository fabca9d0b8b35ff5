"""The three scales of the book, read from the environment variable ``LPBOOK_SCALE``.

- ``smoke``: every chapter well under a minute, for the notebook tests (nbval);
- ``book`` (the default): the rendered book, each chapter at most 3 minutes on
  2 CPU cores while still showing the scaling clearly;
- ``full``: publication-size sweeps, for a GPU or a cluster.

This is the only place that reads ``LPBOOK_SCALE``; each chapter asks
:func:`settings` for its parameter set.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

SCALES = ("smoke", "book", "full")
DEFAULT = "book"
VARIABLE = "LPBOOK_SCALE"

# Chapter name -> scale -> parameters. Keep each chapter's three sets side by
# side, so that what changes between scales is visible at a glance.
_CHAPTERS: dict[str, dict[str, dict]] = {
    # Chapter 1. syn_*: synonym against non-synonym context distances over a
    # grid of nested sample sizes; corr_*: token correlations against tree
    # distance; gap_*: exact parent gaps against the number of random steps.
    "grammar": {
        "smoke": dict(
            syn_grammar=dict(v=8, m=3, s=2, L=3),
            syn_P=(10, 30, 100, 300, 1000, 3000),
            corr_grammar=dict(v=8, m=3, s=2, L=4),
            corr_P=(10**3, 10**4),
            gap_v=16,
            gap_m=(2, 3),
            gap_L=4,
        ),
        "book": dict(
            syn_grammar=dict(v=16, m=4, s=2, L=3),
            syn_P=tuple(int(round(10 ** (e / 3))) for e in range(6, 19)),  # 1e2 .. 1e6
            corr_grammar=dict(v=8, m=3, s=2, L=5),
            corr_P=(10**3, 10**4, 10**5, 10**6),
            gap_v=32,
            gap_m=(2, 3, 4, 6),
            gap_L=5,
        ),
        "full": dict(
            syn_grammar=dict(v=32, m=4, s=2, L=3),
            syn_P=tuple(int(round(10 ** (e / 3))) for e in range(6, 22)),  # 1e2 .. 1e7
            corr_grammar=dict(v=8, m=3, s=2, L=6),
            corr_P=(10**3, 10**4, 10**5, 10**6, 10**7),
            gap_v=64,
            gap_m=(2, 3, 4, 6, 8),
            gap_L=6,
        ),
    },
}


def current() -> str:
    """The scale named by ``LPBOOK_SCALE`` (``book`` when unset)."""
    scale = os.environ.get(VARIABLE, DEFAULT).strip().lower() or DEFAULT
    if scale not in SCALES:
        raise ValueError(f"{VARIABLE} must be one of {', '.join(SCALES)}, got {os.environ[VARIABLE]!r}")
    return scale


def settings(chapter: str, scale: str | None = None) -> SimpleNamespace:
    """The parameter set of ``chapter`` at ``scale`` (default: :func:`current`).

    The returned namespace also carries ``scale`` itself.
    """
    if chapter not in _CHAPTERS:
        raise ValueError(f"chapter must be one of {', '.join(sorted(_CHAPTERS))}, got {chapter!r}")
    scale = current() if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    return SimpleNamespace(scale=scale, **_CHAPTERS[chapter][scale])
