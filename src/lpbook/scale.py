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

#: Chapter 5's controlled pair: a constant learning rate, no warmup and Chapter 2's mask rates, for both networks
#: (PAIR); data2vec's own teacher, which reads every token (PAIR_DATA2VEC); the masked-token network's early
#: stopping, a validation loss every 100 steps and a patience of 5 (PAIR_MASKED_TOKEN).
PAIR = dict(schedule="constant", warmup=0, mask_range=[0.2, 0.95])
PAIR_DATA2VEC = dict(teacher_input="all")
PAIR_MASKED_TOKEN = dict(eval_every=100, patience=5)

# Chapter name -> scale -> parameters. Keep each chapter's three sets side by
# side, so that what changes between scales is visible at a glance.
_CHAPTERS: dict[str, dict[str, dict]] = {
    # Chapter 1. syn_*: synonym against non-synonym context distances over a
    # grid of nested sample sizes; corr_*: token correlations against tree
    # distance; gap_*: exact parent gaps against the number of random steps;
    # bp_*: Bayes-optimal root accuracy against the fraction of hidden tokens.
    "grammar": {
        "smoke": dict(
            syn_grammar=dict(v=8, m=3, s=2, L=3),
            syn_P=(10, 30, 100, 300, 1000, 3000),
            corr_grammar=dict(v=8, m=3, s=2, L=4),
            corr_P=(10**3, 10**4),
            gap_v=16,
            gap_m=(2, 3),
            gap_L=4,
            bp_v=8, bp_m=(2, 4), bp_L=(2, 3, 4), bp_fractions=11, bp_P=200,
        ),
        "book": dict(
            syn_grammar=dict(v=16, m=4, s=2, L=3),
            syn_P=tuple(int(round(10 ** (e / 3))) for e in range(6, 19)),  # 1e2 .. 1e6
            corr_grammar=dict(v=8, m=3, s=2, L=5),
            corr_P=(10**3, 10**4, 10**5, 10**6),
            gap_v=32,
            gap_m=(2, 3, 4, 6),
            gap_L=5,
            bp_v=8, bp_m=(2, 4), bp_L=(2, 3, 4, 5, 6), bp_fractions=21, bp_P=1000,
        ),
        "full": dict(
            syn_grammar=dict(v=32, m=4, s=2, L=3),
            syn_P=tuple(int(round(10 ** (e / 3))) for e in range(6, 22)),  # 1e2 .. 1e7
            corr_grammar=dict(v=8, m=3, s=2, L=6),
            corr_P=(10**3, 10**4, 10**5, 10**6, 10**7),
            gap_v=64,
            gap_m=(2, 3, 4, 6, 8),
            gap_L=6,
            bp_v=8, bp_m=(2, 4), bp_L=(2, 3, 4, 5, 6, 7, 8), bp_fractions=41, bp_P=20000,
        ),
    },

    # Chapter 2. tc_*: TokenClustering sweeps over L (at m) and over m (at tc_L_m);
    # sc_*: SupervisedClustering over L; cnn_*: SupervisedCNN over L; mlm_*: the
    # masked-token transformer. Grids of P are relative to each prediction. The full-scale
    # network follows the recipe that converged at v = 16, m = 3, L = 3, P = 16,000 in our CPU
    # runs (excess 0.029 nats after 30,000 steps at batch 128 and three blocks; batches of 64
    # stayed on the plateau at the floor of the rules below the root for 12,000 steps).
    "tokens": {
        "smoke": dict(
            gap_grammars=4, gap_v=16, gap_m=(2, 4),
            tc_v=16, tc_m=2, tc_L=(3, 4), tc_m_grid=(2, 3), tc_L_m=3, tc_points=6, seeds=2,
            sc_L=(3,), cnn_v=8, cnn_m=2, cnn_L=(2, 3), cnn_points=4,
            mlm_grammar=dict(v=16, m=2, s=2, L=3), mlm_P=(300, 1000), mlm_seeds=1,
            mlm_options=dict(d_model=16, n_heads=2, n_layers=2, batch_size=128, lr=3e-3, schedule="cosine", warmup=10,
                             max_steps=100, eval_every=50, patience=2),
        ),
        "book": dict(
            gap_grammars=20, gap_v=32, gap_m=(2, 3, 4, 6),
            tc_v=16, tc_m=3, tc_L=(3, 4, 5, 6), tc_m_grid=(2, 3, 4), tc_L_m=4, tc_points=9, seeds=3,
            sc_L=(3, 4), cnn_v=8, cnn_m=3, cnn_L=(2, 3), cnn_points=5,
            mlm_grammar=dict(v=16, m=3, s=2, L=3), mlm_P=(1000, 4000, 16000), mlm_seeds=1,
            mlm_options=dict(d_model=32, n_heads=2, n_layers=2, batch_size=64, lr=3e-3, schedule="cosine", warmup=150,
                             max_steps=2000, eval_every=250, patience=3),
        ),
        "full": dict(
            gap_grammars=100, gap_v=64, gap_m=(2, 3, 4, 6, 8),
            tc_v=32, tc_m=4, tc_L=(3, 4, 5, 6, 7), tc_m_grid=(2, 3, 4, 6, 8), tc_L_m=4, tc_points=16, seeds=8,
            sc_L=(3, 4, 5), cnn_v=16, cnn_m=4, cnn_L=(2, 3, 4), cnn_points=10,
            mlm_grammar=dict(v=16, m=3, s=2, L=4), mlm_P=(1000, 3162, 10000, 31623, 100000), mlm_seeds=4,
            mlm_options=dict(d_model=64, n_heads=4, n_layers=3, batch_size=128, lr=3e-3, schedule="cosine", warmup=300,
                             max_steps=50000, eval_every=500, patience=8),
        ),
    },

    # Chapter 3 and its appendix (book/03a_kmeans). Chapter 3: ilc_*: ILC sweeps over m and L (Chapter 6
    # reads them back with these arguments); tc_*: TokenClustering for the headline; sep_*: exact
    # separations; single_m: single linkage; prop_*: error propagation; depth_*: the worst level against
    # L; pipe_*: ILC + root probe against the supervised CNN (to L = 5 at book scale, where the CNN,
    # trained longest near its P*, is most of the chapter's time); probe_labels: the root probe alone.
    # The appendix: pred_*: the grid of the P* model; search_*: k-means' search against the true centres
    # near exact recovery; seeding_*: the seeding chain against k-means++ (cases (v, m), sizes P/(v m^3),
    # runs per grammar); ctx_*: the context variants.
    "ilc": {
        "smoke": dict(
            v=16, ilc_m=(2, 3), ilc_L=(3, 4), ilc_L_all_m=3, points=6, seeds=2,
            tc_L=(3, 4), ctx_m=(2, 3), ctx_L=3, sep_grammars=5, sep_m=(2, 3),
            pred_v=(16, 32), pred_m=(2, 3, 4), pred_grammars=3, search_v=(16,), search_m=3, search_restarts=30,
            seeding_cases=((16, 3), (16, 12)), seeding_factors=(0.5, 4), seeding_runs=5,
            single_m=(2,), prop_m=2, prop_factors=(4,), prop_etas=(0.0, 0.05, 0.2), depth_L=(3, 4), depth_grammars=3,
            pipe_v=8, pipe_m=2, pipe_L=(2, 3), pipe_points=5, probe_labels=(8, 16, 32, 64),
        ),
        "book": dict(
            v=16, ilc_m=(2, 3, 4, 6), ilc_L=(3, 4, 5, 6), ilc_L_all_m=3, points=9, seeds=3,
            tc_L=(3, 4, 5, 6), ctx_m=(2, 3, 4), ctx_L=4, sep_grammars=20, sep_m=(2, 3, 4, 6),
            pred_v=(16, 32, 64), pred_m=(2, 3, 4, 6, 8, 12), pred_grammars=10, search_v=(16, 64), search_m=3, search_restarts=30,
            seeding_cases=((16, 3), (16, 12), (64, 3)), seeding_factors=(0.5, 2, 8), seeding_runs=10,
            single_m=(2, 3, 4), prop_m=3, prop_factors=(2, 8), prop_etas=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3),
            depth_L=(3, 4, 5, 6, 7, 8), depth_grammars=40,
            pipe_v=16, pipe_m=2, pipe_L=(3, 4, 5), pipe_points=5, probe_labels=(8, 16, 32, 64, 128, 256, 512),
        ),
        "full": dict(
            v=32, ilc_m=(2, 3, 4, 6, 8), ilc_L=(3, 4, 5, 6, 7, 8), ilc_L_all_m=4, points=16, seeds=8,
            tc_L=(3, 4, 5, 6, 7), ctx_m=(2, 3, 4, 6, 8), ctx_L=5, sep_grammars=200, sep_m=(2, 3, 4, 6, 8),
            pred_v=(16, 32, 64), pred_m=(2, 3, 4, 6, 8, 12), pred_grammars=40, search_v=(16, 32, 64), search_m=3, search_restarts=100,
            seeding_cases=((16, 3), (16, 12), (32, 6), (64, 3), (64, 12)), seeding_factors=(0.5, 1, 2, 4, 8),
            seeding_runs=50,
            single_m=(2, 3, 4, 6, 8), prop_m=4, prop_factors=(2, 8, 32), prop_etas=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3),
            depth_L=(3, 4, 5, 6, 7, 8), depth_grammars=200,
            pipe_v=16, pipe_m=3, pipe_L=(3, 4, 5, 6), pipe_points=12,
            probe_labels=(16, 32, 64, 128, 256, 512, 1024, 2048),
        ),
    },

    # Chapter 5. net: the backbone and optimiser shared by Data2Vec and MaskedTokenModel; d2v, mtm: the
    # options of each alone; steps: the step budget of every fit; trace_*: one run read at trace_steps; sc_P: training
    # sizes per depth for the sample-complexity comparison (on grammar v, m); abl_*: ablations;
    # ilc_points: the ILC sweep's grid; probe_steps: the data2vec token probe's budget; slc: options of
    # Chapter 4's SLC on the same training sets (fewer restarts than its default, for the CPU budget).
    # synonymy_n: strings from which target_synonymy estimates the conditional means of the teachers' targets.
    "data2vec": {
        "smoke": dict(
            v=8, m=2, net=dict(d_model=16, n_layers=2, n_heads=2, lr=3e-3, batch_size=64, n_init=1, **PAIR),
            d2v=PAIR_DATA2VEC, mtm=PAIR_MASKED_TOKEN, steps=40,
            trace_P=400, trace_steps=(0, 40), sc_P={3: (200, 400), 4: (400,)}, n_test=300,
            abl_steps=20, probe_steps=10, ilc_points=4, seeds=1, slc=dict(restarts=1, steps=50), synonymy_n=3000,
        ),
        "book": dict(
            v=8, m=2, net=dict(d_model=32, n_layers=2, n_heads=2, lr=3e-3, batch_size=64, n_init=2, **PAIR),
            d2v=PAIR_DATA2VEC, mtm=PAIR_MASKED_TOKEN, steps=800,
            trace_P=4000, trace_steps=(0, 400, 800), sc_P={3: (1000, 4000), 4: (4000,)},
            n_test=1000, abl_steps=500, probe_steps=200, ilc_points=7, seeds=1, slc=dict(restarts=2),
            synonymy_n=10000,
        ),
        "full": dict(
            v=8, m=2, net=dict(d_model=64, n_layers=2, n_heads=4, lr=1e-3, batch_size=128, **PAIR),
            d2v=PAIR_DATA2VEC, mtm=PAIR_MASKED_TOKEN, steps=12000,
            trace_P=16000, trace_steps=(0, 1000, 2000, 4000, 8000, 12000),
            sc_P={3: (1000, 4000, 16000, 64000), 4: (4000, 16000, 64000)}, n_test=4000,
            abl_steps=12000, probe_steps=2000, ilc_points=12, seeds=3, slc=dict(), synonymy_n=100000,
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
    # Chapter 6. Robustness: ILC and TokenClustering under Zipf production laws
    # (exponents zipf_a; 0 is uniform probabilities), ILC at depths robust_L,
    # TokenClustering at the smallest; pred_grammars: grammars per predicted P*.
    # The two further conditions, each at the Zipf exponents ext_a over ext_points
    # sizes: wide (s = 3, ILC at depths wide_L, TokenClustering at the smallest)
    # and auto (ILC with n_clusters="auto" against ILC told v, at depths auto_L).
    "synthesis": {
        "smoke": dict(v=8, m=2, robust_L=(3, 4), zipf_a=(0.0, 1.5), points=5, seeds=2, pred_grammars=2,
                      wide=dict(v=8, m=2, s=3), wide_L=(2, 3), auto=dict(v=8, m=2, s=2), auto_L=(3, 4),
                      ext_a=(0.0, 1.5), ext_points=4),
        "book": dict(v=16, m=3, robust_L=(3, 5), zipf_a=(0.0, 0.75, 1.5), points=7, seeds=3, pred_grammars=5,
                     wide=dict(v=8, m=3, s=3), wide_L=(3, 4), auto=dict(v=8, m=3, s=2), auto_L=(3, 4),
                     ext_a=(0.0, 1.5), ext_points=6),
        "full": dict(v=32, m=4, robust_L=(3, 5, 7), zipf_a=(0.0, 0.5, 1.0, 1.5, 2.0), points=12, seeds=8,
                     pred_grammars=40, wide=dict(v=16, m=4, s=3), wide_L=(3, 4, 5), auto=dict(v=16, m=4, s=2),
                     auto_L=(3, 4, 5), ext_a=(0.0, 0.5, 1.0, 1.5, 2.0), ext_points=12),
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
