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

    # Chapter 2. tc_*: TokenClustering sweeps over L (at m) and over m (at tc_L_m);
    # sc_*: SupervisedClustering over L; cnn_*: SupervisedCNN over L; mlm_*: the
    # masked-token transformer. Grids of P are relative to each prediction.
    "tokens": {
        "smoke": dict(
            gap_grammars=4, gap_v=16, gap_m=(2, 4),
            tc_v=16, tc_m=2, tc_L=(3, 4), tc_m_grid=(2, 3), tc_L_m=3, tc_points=6, seeds=2,
            sc_L=(3,), cnn_v=8, cnn_m=2, cnn_L=(2, 3), cnn_points=4,
            mlm_grammar=dict(v=4, m=2, s=2, L=3), mlm_P=(300,), mlm_epochs=2,
        ),
        "book": dict(
            gap_grammars=20, gap_v=32, gap_m=(2, 3, 4, 6),
            tc_v=16, tc_m=3, tc_L=(3, 4, 5, 6), tc_m_grid=(2, 3, 4), tc_L_m=4, tc_points=10, seeds=3,
            sc_L=(3, 4), cnn_v=8, cnn_m=3, cnn_L=(2, 3), cnn_points=7,
            mlm_grammar=dict(v=8, m=2, s=2, L=3), mlm_P=(1000, 4000, 16000), mlm_epochs=30,
        ),
        "full": dict(
            gap_grammars=100, gap_v=64, gap_m=(2, 3, 4, 6, 8),
            tc_v=32, tc_m=4, tc_L=(3, 4, 5, 6, 7), tc_m_grid=(2, 3, 4, 6, 8), tc_L_m=4, tc_points=16, seeds=8,
            sc_L=(3, 4, 5), cnn_v=16, cnn_m=4, cnn_L=(2, 3, 4), cnn_points=10,
            mlm_grammar=dict(v=16, m=4, s=2, L=4), mlm_P=(10**3, 10**4, 10**5, 10**6), mlm_epochs=100,
        ),
    },

    # Chapter 3. ilc_*: ILC sweeps over m and L; tc_*: TokenClustering for the
    # headline comparison; ctx_*: context variants; sep_*: exact separations;
    # pipe_*: ILC + root probe against the supervised CNN.
    "ilc": {
        "smoke": dict(
            v=16, ilc_m=(2, 3), ilc_L=(3, 4), ilc_L_all_m=3, points=6, seeds=2,
            tc_L=(3, 4), ctx_m=(2, 3), ctx_L=3, sep_grammars=5, sep_m=(2, 3),
            pipe_v=8, pipe_m=2, pipe_L=(2, 3), pipe_points=5, probe_labels=(8, 16, 32, 64),
        ),
        "book": dict(
            v=16, ilc_m=(2, 3, 4, 6), ilc_L=(3, 4, 5, 6, 7), ilc_L_all_m=3, points=9, seeds=3,
            tc_L=(3, 4, 5, 6), ctx_m=(2, 3, 4, 6), ctx_L=4, sep_grammars=20, sep_m=(2, 3, 4, 6),
            pipe_v=16, pipe_m=2, pipe_L=(3, 4, 5, 6), pipe_points=7, probe_labels=(8, 16, 32, 64, 128, 256, 512),
        ),
        "full": dict(
            v=32, ilc_m=(2, 3, 4, 6, 8), ilc_L=(3, 4, 5, 6, 7, 8), ilc_L_all_m=4, points=16, seeds=8,
            tc_L=(3, 4, 5, 6, 7), ctx_m=(2, 3, 4, 6, 8), ctx_L=5, sep_grammars=200, sep_m=(2, 3, 4, 6, 8),
            pipe_v=16, pipe_m=3, pipe_L=(3, 4, 5, 6), pipe_points=12,
            probe_labels=(16, 32, 64, 128, 256, 512, 1024, 2048),
        ),
    },

    # Chapter 4. SLC sweeps over m and L (v fixed), the same grids for ILC;
    # fit: SLC's training options at this scale; dyn_*: one fit's training
    # dynamics; abl_*: the ablations (on the first m and L, at the last
    # abl_points values of the sweep's grid).
    "slc": {
        "smoke": dict(
            v=8, m=(2,), L=(3,), seeds=2, points=3, fit=dict(steps=40, restarts=2, batch_size=256),
            dyn_grammar=dict(v=8, m=2, s=2, L=3), dyn_P=1000, abl_points=1,
        ),
        "book": dict(
            v=8, m=(2, 3), L=(3, 4), seeds=3, points=3, fit=dict(steps=150, restarts=2, batch_size=256),
            dyn_grammar=dict(v=8, m=3, s=2, L=4), dyn_P=4000, abl_points=1,
        ),
        "full": dict(
            v=16, m=(2, 3, 4), L=(3, 4, 5), seeds=8, points=8, fit=dict(steps=750, restarts=8, batch_size=128),
            dyn_grammar=dict(v=16, m=3, s=2, L=5), dyn_P=30000, abl_points=4,
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
