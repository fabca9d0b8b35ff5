"""The book's experiments, each defined once: every sweep and every set of trained networks that a chapter shows.

A :class:`SweepSpec` names one sweep: its learner and options, the chapter
whose cache folder holds it, and, for each scale, its :class:`Plan` (the
grammars, the sizes ``P`` as a function of the grammar, the seeds and the
test-set size). It gives the sweep's rows three ways:

- :meth:`SweepSpec.rows`: run into the chapter's folder
  (:func:`lpbook.storage.cache_dir`), resuming what is stored;
- :meth:`SweepSpec.stored`: read from that folder, never running anything
  (``None`` while a point is missing), as another chapter reads it;
- :meth:`SweepSpec.committed`: the database recorded under ``results/`` with
  its sidecar, for the specs that have one (``recorded``), whose plan is the
  same at every scale and is what ``lpbook sweep --spec NAME --record`` runs.

A spec with a ``measure`` (:func:`lpbook.sweep.run_point`) makes single
neural fits sweep points that also store what the measure records, such as
a network's excess loss over the Bayes floor (:func:`lpbook.neural.measure.sweep_record`).

A :class:`NetworkSet` names networks trained past a chapter's budget and
committed under ``results/networks`` or ``results/search``: each
:class:`Fit` is one ``lpbook fit`` (learner, grammar, ``P``, seed, options,
file), and ``lpbook fit --spec NAME --record`` fits the ones missing.

:data:`SWEEPS` and :data:`NETWORKS` hold every spec by name; :func:`sweep_spec`
and :func:`network_set` look one up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import results, scale
from .points import Grammar, Point, log_grid, make_points, scaled_grid
from .storage import cache_dir


@dataclass(frozen=True)
class Plan:
    """One scale of a sweep: ``grammars`` (a tuple of :class:`~lpbook.points.Grammar`), ``P_grid`` (sizes, or a
    function of the grammar that gives them), ``seeds`` (a count or the seeds) and ``n_test``, as
    :func:`lpbook.points.make_points` reads them."""

    grammars: tuple
    P_grid: object
    seeds: object
    n_test: int = 2000


def _measure_networks(point, model, data) -> dict:
    """The measure of the neural sweeps (:func:`lpbook.neural.measure.sweep_record`), importing torch only when run."""
    from .neural.measure import sweep_record

    return sweep_record(point, model, data)


@dataclass(frozen=True)
class SweepSpec:
    """One sweep of the book (see the module docstring).

    ``plans`` maps a scale (``"smoke"``, ``"book"``, ``"full"``) to its
    :class:`Plan`; ``options`` are the learner's, a mapping or a function of
    the scale that gives one (runtime options, such as ``device``, are given
    when it runs); ``db`` is the database's file name in
    the chapter's folder (default ``NAME.sqlite``); ``recorded``: the sweep is
    committed as ``results/NAME.sqlite``; ``measure``: see :func:`lpbook.sweep.run_point`.
    """

    name: str
    learner: str
    chapter: str
    plans: Callable[[str], Plan]
    options: Mapping | Callable[[str], Mapping] = field(default_factory=dict, hash=False)
    db: str | None = None
    recorded: bool = False
    measure: Callable | None = None

    def plan(self, scale_name: str | None = None, **where) -> Plan:
        """The plan at ``scale_name`` (default: :func:`lpbook.scale.current`), its grammars narrowed to those
        whose fields equal ``where`` (e.g. ``L=3``)."""
        plan = self.plans(scale.current() if scale_name is None else scale_name)
        grammars = tuple(g if isinstance(g, Grammar) else Grammar(**g) for g in plan.grammars)
        kept = tuple(g for g in grammars if all(getattr(g, name) == value for name, value in where.items()))
        if not kept:
            raise ValueError(f"spec {self.name!r} has no grammar with {where} at this scale")
        return Plan(kept, plan.P_grid, plan.seeds, plan.n_test)

    def learner_options(self, scale_name: str | None = None) -> dict:
        """The learner's options at ``scale_name`` (default: :func:`lpbook.scale.current`)."""
        if callable(self.options):
            return dict(self.options(scale.current() if scale_name is None else scale_name))
        return dict(self.options)

    def points(self, scale_name: str | None = None, **where) -> list[Point]:
        """Every point of the plan, checked (:func:`lpbook.points.make_points`)."""
        plan = self.plan(scale_name, **where)
        return make_points(self.learner, plan.grammars, plan.P_grid, plan.seeds,
                           options=self.learner_options(scale_name), n_test=plan.n_test)

    def settings(self, scale_name: str | None = None) -> dict:
        """The sweep's settings as a sidecar records them (:func:`lpbook.results.sweep_settings`)."""
        plan = self.plan(scale_name)
        return results.sweep_settings(self.learner, plan.grammars, plan.P_grid, plan.seeds,
                                      options=self.learner_options(scale_name), n_test=plan.n_test)

    @property
    def database(self) -> Path:
        """The sweep's database in its chapter's folder."""
        return cache_dir(self.chapter) / (self.db or f"{self.name}.sqlite")

    def run(self, db, scale_name: str | None = None, *, executor=None, workers=None, progress=False,
            runtime: Mapping | None = None, **where) -> list[dict]:
        """Run (or resume) the plan into ``db``; ``runtime`` holds runtime options (``device``, ...)."""
        from .sweep import run_sweep

        plan = self.plan(scale_name, **where)
        return run_sweep(self.learner, plan.grammars, plan.P_grid, plan.seeds, db,
                         options={**self.learner_options(scale_name), **(runtime or {})}, n_test=plan.n_test,
                         executor=executor,
                         workers=workers, progress=progress, measure=self.measure)

    def rows(self, scale_name: str | None = None, *, executor=None, workers=None, progress=False,
             runtime: Mapping | None = None, **where) -> list[dict]:
        """The sweep's rows, run into (or read from) the chapter's folder (:attr:`database`): a rerun resumes.

        ``where`` narrows the grammars (e.g. ``L=3``); the other arguments go
        to :func:`lpbook.sweep.run_sweep`.
        """
        return self.run(self.database, scale_name, executor=executor, workers=workers, progress=progress,
                        runtime=runtime, **where)

    def stored(self, scale_name: str | None = None, **where) -> list[dict] | None:
        """The sweep's rows if the chapter's folder holds every point (of the grammars ``where`` selects), else ``None``.

        Runs nothing: another chapter reads a sweep this way.
        """
        from .storage import stored_rows

        points = self.points(scale_name, **where)
        return stored_rows(points, self.database) if self.database.is_file() else None

    def committed_database(self, start=None) -> Path | None:
        """``results/NAME.sqlite`` in the ``results`` folder :func:`lpbook.results.find_results_dir` finds from
        ``start``, for :func:`lpbook.notebook.how_computed`; ``None`` where it or its sidecar is missing."""
        if not self.recorded:
            raise ValueError(f"spec {self.name!r} is not recorded under results/")
        folder = results.find_results_dir(start)
        db = None if folder is None else folder / f"{self.name}.sqlite"
        return db if db is not None and db.is_file() and results.sidecar_path(db).is_file() else None

    def committed(self, start=None) -> tuple[list[dict], str] | None:
        """The rows and the provenance of ``results/NAME.sqlite`` (:func:`lpbook.results.committed_sweep`), or
        ``None`` where it is missing (on Colab, say)."""
        if not self.recorded:
            raise ValueError(f"spec {self.name!r} is not recorded under results/")
        return results.committed_sweep(self.name, start)


@dataclass(frozen=True)
class Fit:
    """One network fitted by ``lpbook fit``: ``learner`` with ``options`` on ``grammar`` (a mapping of
    :class:`~lpbook.points.Grammar` fields) at ``P`` and ``seed``, saved to ``path`` (relative to the
    repository, under ``results/``)."""

    learner: str
    grammar: Mapping = field(hash=False)
    P: int
    seed: int
    options: Mapping = field(hash=False)
    path: str

    def settings(self) -> dict:
        """The fit's settings as its sidecar records them (:func:`lpbook.results.network_settings`)."""
        return results.network_settings(self.learner, Grammar(**self.grammar), self.P, self.seed, dict(self.options))


@dataclass(frozen=True)
class NetworkSet:
    """A set of networks trained past a chapter's budget and committed under ``results/`` (see the module docstring)."""

    name: str
    chapter: str
    fits: tuple

    def paths(self, root) -> list[Path]:
        """Where each fit's network lies under the repository ``root``."""
        return [Path(root) / fit.path for fit in self.fits]

    def missing(self, root) -> list[Fit]:
        """The fits whose network is not saved under ``root`` yet."""
        return [fit for fit, path in zip(self.fits, self.paths(root)) if not path.is_file()]

    def committed(self, root=None, select: Callable[[Fit], bool] | None = None) -> list[tuple[Fit, object]]:
        """``(fit, learner)`` for every network of the set saved under ``root`` (default: the repository that
        :func:`lpbook.results.find_results_dir` finds), each loaded and checked against its sidecar; with
        ``select``, only the fits for which ``select(fit)`` is true are loaded."""
        folder = results.find_results_dir() if root is None else Path(root) / results.RESULTS_DIR
        if folder is None:
            return []
        return [(fit, results.check_network(folder.parent / fit.path)) for fit in self.fits
                if (select is None or select(fit)) and (folder.parent / fit.path).is_file()]


# ------------------------------------------------------------------ helpers of the plans
def _fixed(plan: Plan) -> Callable[[str], Plan]:
    """The same plan at every scale (a recorded sweep)."""
    return lambda scale_name: plan


def _grammars(v, m, s, L, **law) -> tuple[Grammar, ...]:
    """Every combination of ``v, m, s, L`` (sequences), in the order of ``lpbook sweep``'s options."""
    return tuple(Grammar(vv, mm, ss, LL, **law) for vv in v for mm in m for ss in s for LL in L)


def _around(low: Callable, high: Callable, points: int) -> Callable[[Grammar], list[int]]:
    """The chapters' grid: ``log_grid(max(int(low(g)), 8), int(high(g)), points)`` for each grammar ``g``."""
    return lambda g: log_grid(max(int(low(g)), 8), int(high(g)), points)


def _settings(chapter: str) -> Callable[[str], object]:
    return lambda scale_name: scale.settings(chapter, scale_name)


def _scaled(chapter: str, make: Callable) -> Callable[[str], Plan]:
    """A plan read off ``chapter``'s parameters at each scale: ``make(cfg)``."""
    settings = _settings(chapter)
    return lambda scale_name: make(settings(scale_name))


# ------------------------------------------------------------------ the recorded sweeps (results/)
_CPU_NET = {"d_model": 32, "n_layers": 2, "n_heads": 2, "lr": 0.003, "max_steps": 2000, **scale.PAIR}
_CPU = Plan(_grammars([8], [2], [2], [3]), (1000, 16000), 1, 2000)
_V16 = dict(P_grid=scaled_grid(0.25, 16, 8, lambda g: g.v * g.m**3), seeds=5, n_test=4000)
_V16_M23, _V16_M4 = Plan(_grammars([16], [2, 3], [2], [3, 4, 5]), **_V16), Plan(_grammars([16], [4], [2], [3, 4, 5]), **_V16)
_GPU_NET = {"d_model": 128, "n_layers": 4, "n_heads": 4, "max_steps": 20000, "batch_size": 256}
_GPU_DEPTH = Plan(_grammars([16], [3], [2], [3, 4, 5]), log_grid(1000, 1000000, 10), 4, 4000)
_DEPTH_PAIR = Plan(_grammars([16], [3], [2], [3, 4]), tuple(125 * 2**k for k in range(12)), 8, 2000)


def _pstar_test(L: int, high: int) -> Plan:
    return Plan(_grammars([24, 48], [3, 5, 7], [2], [L]), scaled_grid(1, high, 20, lambda g: g.v * g.m**2), 8, 2000)


_RECORDED = [
    # Chapter 3: ILC to L = 8, and its exponent in m at v = 16, 32, 64; Chapter 2: TokenClustering's at v = 32.
    SweepSpec("ilc-depth", "ilc", "ilc", _fixed(Plan(_grammars([16], [3], [2], range(3, 9)),
                                                     log_grid(288, 86400, 20), 16, 2000)), recorded=True),
    SweepSpec("ilc-exponents", "ilc", "ilc", _fixed(Plan(_grammars([16, 32, 64], [2, 3, 4, 6, 8, 12], [2], [3]),
                                                         scaled_grid(1, 256, 20, lambda g: g.v * g.m**2), 10, 2000)),
              recorded=True),
    SweepSpec("tc-exponents", "token-clustering", "tokens",
              _fixed(Plan(_grammars([32], [2, 3, 4, 6, 8], [2], [3]), scaled_grid(1, 1024, 20, lambda g: g.v * g.m**2),
                          8, 2000)), recorded=True),
    # Chapter 4's grid at v = 16: SLC (400 steps per stage, 4 restarts) and ILC on the same points.
    SweepSpec("slc-v16", "slc", "slc", _fixed(_V16_M23), {"steps": 400, "restarts": 4}, recorded=True),
    SweepSpec("slc-v16-m4", "slc", "slc", _fixed(_V16_M4), {"steps": 400, "restarts": 4}, recorded=True),
    # Its appendix: SLC without the place term of its loss, at m = 2.
    SweepSpec("slc-v16-no-place", "slc", "slc", _fixed(Plan(_grammars([16], [2], [2], [3, 4, 5]), **_V16)),
              {"steps": 400, "restarts": 4, "place_weight": 0}, recorded=True),
    SweepSpec("ilc-v16", "ilc", "slc", _fixed(_V16_M23), recorded=True),
    SweepSpec("ilc-v16-m4", "ilc", "slc", _fixed(_V16_M4), recorded=True),
    # The depth experiment of Chapters 2, 5 and 6: ILC, TokenClustering and SLC at L = 3 and 4 on the same grammars.
    SweepSpec("ilc-depth-pair", "ilc", "synthesis", _fixed(_DEPTH_PAIR), recorded=True),
    SweepSpec("tc-depth-pair", "token-clustering", "synthesis", _fixed(_DEPTH_PAIR), recorded=True),
    SweepSpec("slc-depth-pair", "slc", "synthesis", _fixed(_DEPTH_PAIR), {"steps": 400, "restarts": 4}, recorded=True),
    # The out-of-sample test of lpbook.theory's P*, on alphabets no fit sees (Chapter 3's appendix, Chapter 2).
    SweepSpec("pstar-test-ilc-L3", "ilc", "ilc", _fixed(_pstar_test(3, 256)), recorded=True),
    SweepSpec("pstar-test-ilc-L4", "ilc", "ilc", _fixed(_pstar_test(4, 256)), recorded=True),
    SweepSpec("pstar-test-tc", "token-clustering", "ilc", _fixed(_pstar_test(3, 1024)), recorded=True),
    # The depth experiment extended on a GPU (make results): both networks, ILC and SLC at L = 3, 4 and 5 on the
    # depth pair's grammars (seeds 0-3 are its strings), over P = 1,000 to 1,000,000; the networks measured.
    # data2vec takes the targets of the recipe that converges on CPU (d2v-search): every block, the teacher of the
    # hidden tokens, masks of 40 to 95% of the tokens.
    *(SweepSpec(f"gpu-{learner}", learner, "synthesis", _fixed(_GPU_DEPTH), options, recorded=True,
                measure=_measure_networks if learner in ("data2vec", "masked-token") else None)
      for learner, options in (("data2vec", _GPU_NET), ("masked-token", _GPU_NET), ("ilc", {}), ("slc", {}))),
    # Chapter 5's small sweeps from a CPU run.
    SweepSpec("data2vec-cpu", "data2vec", "data2vec", _fixed(_CPU),
              {**_CPU_NET, **scale.PAIR_DATA2VEC, "probe_steps": 1000}, recorded=True),
    SweepSpec("masked-token-cpu", "masked-token", "data2vec", _fixed(_CPU), {**_CPU_NET, **scale.PAIR_MASKED_TOKEN},
              recorded=True),
    SweepSpec("ilc-cpu", "ilc", "data2vec", _fixed(_CPU), recorded=True),
]


# ------------------------------------------------------------------ the chapters' sweeps (their cache folders)
def _tokens_tc(cfg) -> Plan:
    v, m = cfg.tc_v, cfg.tc_m
    wanted = [(v, m, L) for L in cfg.tc_L] + [(v, mm, cfg.tc_L_m) for mm in cfg.tc_m_grid]
    wanted.append((cfg.mlm_grammar["v"], cfg.mlm_grammar["m"], cfg.mlm_grammar["L"]))
    grammars = tuple(dict.fromkeys(Grammar(vv, mm, 2, L) for vv, mm, L in wanted))
    return Plan(grammars, _around(lambda g: g.v * g.m**2 / 4, lambda g: 4 * g.v * g.m ** (g.L + 1), cfg.tc_points),
                cfg.seeds)


def _ilc_ilc(cfg) -> Plan:
    depths, m0 = cfg.ilc_L, cfg.ilc_L_all_m
    grammars = tuple(Grammar(cfg.v, m, 2, L) for m in cfg.ilc_m
                     for L in (depths if m == m0 else (min(depths), max(depths))))
    return Plan(grammars, _around(lambda g: g.v * g.m**3 / 30, lambda g: 30 * g.v * g.m**3, cfg.points), cfg.seeds)


def _slc_sizes(cfg) -> Callable[[Grammar], list[int]]:
    return lambda g: log_grid(g.v * g.m**2, 16 * g.v * g.m**3, cfg.points)


def _slc_grid(cfg) -> Plan:
    return Plan(_grammars([cfg.v], cfg.m, [2], cfg.L), _slc_sizes(cfg), cfg.seeds)


def _slc_ablation(cfg) -> Plan:
    """The largest ``abl_points`` sizes of Chapter 4's grid, on its first ``m`` and ``L``."""
    return Plan(_grammars([cfg.v], cfg.m[:1], [2], cfg.L[:1]), lambda g: _slc_sizes(cfg)(g)[-cfg.abl_points:],
                cfg.seeds)


#: The choices of SLC that Chapter 4's appendix removes one at a time (a change to the chapter's options).
SLC_ABLATIONS = {"local": {"mode": "local"}, "no-balance": {"balance": 0.0}, "no-place": {"place_weight": 0.0}}


def _pipeline(cfg) -> Plan:
    return Plan(_grammars([cfg.pipe_v], [cfg.pipe_m], [2], cfg.pipe_L),
                lambda g: log_grid(16, 8 * g.v * g.m**g.L, cfg.pipe_points), cfg.seeds)


def _zipf(exponents, shape: Mapping, depths) -> tuple[Grammar, ...]:
    """The grammars of ``shape`` (``v, m, s``) at each depth under each Zipf exponent, exponent first."""
    return tuple(Grammar(**shape, L=L, rule_probs="zipf", zipf_a=a) for a in exponents for L in depths)


def _auto(cfg) -> Plan:
    return Plan(_zipf(cfg.ext_a, cfg.auto, cfg.auto_L),
                _around(lambda g: g.v * g.m**3 / 4, lambda g: 64 * g.v * g.m**3, cfg.ext_points), cfg.seeds)


def _data2vec_fits(cfg) -> Plan:
    return Plan(_grammars([cfg.v], [cfg.m], [2], sorted(cfg.sc_P)), lambda g: cfg.sc_P[g.L], 1, cfg.n_test)


def _chapter_options(chapter: str, make: Callable) -> Callable[[str], Mapping]:
    """Options that ``chapter`` sets per scale: ``make(cfg)`` of its parameters at each scale."""
    return lambda scale_name: make(scale.settings(chapter, scale_name))


_CHAPTERS = [
    # Chapter 2 (tokens): TokenClustering over L and m (and on the masked-token networks' grammar),
    # SupervisedClustering over L, the supervised CNN over L, and the masked-token networks, measured.
    SweepSpec("tokens-token-clustering", "token-clustering", "tokens", _scaled("tokens", _tokens_tc),
              db="token-clustering.sqlite"),
    SweepSpec("tokens-supervised-clustering", "supervised-clustering", "tokens", _scaled("tokens", lambda cfg: Plan(
        _grammars([cfg.tc_v], [cfg.tc_m], [2], cfg.sc_L),
        _around(lambda g: g.v * g.m / 4, lambda g: 4 * g.v * g.m**g.L, cfg.tc_points), cfg.seeds)),
        db="supervised-clustering.sqlite"),
    SweepSpec("tokens-cnn", "supervised-cnn", "tokens", _scaled("tokens", lambda cfg: Plan(
        _grammars([cfg.cnn_v], [cfg.cnn_m], [2], cfg.cnn_L),
        _around(lambda g: g.v * g.m**g.L / 4, lambda g: 16 * g.v * g.m**g.L, cfg.cnn_points), cfg.seeds)),
        db="cnn.sqlite"),
    # Chapter 3 (ilc): ILC over m and L, TokenClustering over L, single linkage, the ILC + probe pipeline
    # against the supervised CNN.
    SweepSpec("ilc-ilc", "ilc", "ilc", _scaled("ilc", _ilc_ilc), db="ilc.sqlite"),
    SweepSpec("ilc-token-clustering", "token-clustering", "ilc", _scaled("ilc", lambda cfg: Plan(
        _grammars([cfg.v], [cfg.ilc_L_all_m], [2], cfg.tc_L),
        _around(lambda g: g.v * g.m**2 / 4, lambda g: 4 * g.v * g.m ** (g.L + 1), cfg.points), cfg.seeds)),
        db="token-clustering.sqlite"),
    SweepSpec("ilc-single-linkage", "ilc", "ilc", _scaled("ilc", lambda cfg: Plan(
        _grammars([cfg.v], cfg.single_m, [2], [min(cfg.ilc_L)]),
        _around(lambda g: g.v * g.m**3 / 30, lambda g: 30 * g.v * g.m**3, cfg.points), cfg.seeds)),
        {"method": "single"}, db="ilc.sqlite"),
    SweepSpec("ilc-pipeline", "ilc-probe", "ilc", _scaled("ilc", _pipeline), db="pipe.sqlite"),
    SweepSpec("ilc-pipeline-cnn", "supervised-cnn", "ilc", _scaled("ilc", _pipeline), db="cnn.sqlite"),
    # Its appendix (kmeans): ILC with each context of its clustering step, over m at the depth ctx_L.
    *(SweepSpec(f"kmeans-context-{context.replace('_', '-')}", "ilc", "kmeans", _scaled("ilc", lambda cfg: Plan(
        _grammars([cfg.v], cfg.ctx_m, [2], [cfg.ctx_L]),
        _around(lambda g: g.v * g.m**3 / 30, lambda g: 30 * g.v * g.m**3, cfg.points), cfg.seeds)),
        {"context": context}, db="contexts.sqlite")
      for context in ("cousin_tuples", "cousin_symbols", "great_grandparent_tuples")),
    # Chapter 4 (slc): SLC over m and L, and ILC on the same points.
    SweepSpec("slc-slc", "slc", "slc", _scaled("slc", _slc_grid), _chapter_options("slc", lambda cfg: dict(cfg.fit)),
              db="slc.sqlite"),
    SweepSpec("slc-ilc", "ilc", "slc", _scaled("slc", _slc_grid), db="ilc.sqlite"),
    # Its appendix: the chapter's SLC at the largest sizes, as it is and without each choice of SLC_ABLATIONS.
    SweepSpec("slc-ablation", "slc", "slc", _scaled("slc", _slc_ablation),
              _chapter_options("slc", lambda cfg: dict(cfg.fit)), db="slc.sqlite"),
    *(SweepSpec(f"slc-ablation-{name}", "slc", "slc", _scaled("slc", _slc_ablation),
                _chapter_options("slc", lambda cfg, change=change: dict(cfg.fit, **change)), db="slc.sqlite")
      for name, change in SLC_ABLATIONS.items()),
    # Chapter 6 (synthesis): ILC and TokenClustering under Zipf production laws, and the two further conditions,
    # wider trees (s = 3) and ILC that estimates the alphabet (n_clusters="auto") against ILC told v.
    SweepSpec("synthesis-robust-ilc", "ilc", "synthesis", _scaled("synthesis", lambda cfg: Plan(
        _zipf(cfg.zipf_a, dict(v=cfg.v, m=cfg.m, s=2), cfg.robust_L),
        _around(lambda g: g.v * g.m**3 / 10, lambda g: 20 * g.v * g.m**3, cfg.points), cfg.seeds)), db="ilc.sqlite"),
    SweepSpec("synthesis-robust-token-clustering", "token-clustering", "synthesis", _scaled("synthesis", lambda cfg: Plan(
        _zipf(cfg.zipf_a, dict(v=cfg.v, m=cfg.m, s=2), [min(cfg.robust_L)]),
        _around(lambda g: g.v * g.m**3 / 10, lambda g: 4 * g.v * g.m**4, cfg.points), cfg.seeds)),
        db="token-clustering.sqlite"),
    SweepSpec("synthesis-wide-ilc", "ilc", "synthesis", _scaled("synthesis", lambda cfg: Plan(
        _zipf(cfg.ext_a, cfg.wide, cfg.wide_L), _around(lambda g: 1, lambda g: 20 * g.v * g.m**3, cfg.ext_points),
        cfg.seeds)), db="ilc.sqlite"),
    SweepSpec("synthesis-wide-token-clustering", "token-clustering", "synthesis", _scaled("synthesis", lambda cfg: Plan(
        _zipf(cfg.ext_a, cfg.wide, [min(cfg.wide_L)]),
        _around(lambda g: 1, lambda g: 20 * g.v * g.m**3, cfg.ext_points), cfg.seeds)), db="token-clustering.sqlite"),
    SweepSpec("synthesis-auto-told-v", "ilc", "synthesis", _scaled("synthesis", _auto), db="ilc.sqlite"),
    SweepSpec("synthesis-auto", "ilc", "synthesis", _scaled("synthesis", _auto), {"n_clusters": "auto"},
              db="ilc.sqlite"),
    # Chapter 5 (data2vec): ILC on the depths of the comparison.
    SweepSpec("data2vec-ilc", "ilc", "data2vec", _scaled("data2vec", lambda cfg: Plan(
        _grammars([cfg.v], [cfg.m], [2], sorted(cfg.sc_P)), lambda g: log_grid(g.v * g.m, 64 * g.v * g.m**3,
                                                                                 cfg.ilc_points), cfg.seeds, cfg.n_test)),
        db="ilc.sqlite"),
    # ... and Chapter 4's explicit stack SLC on the networks' training strings.
    SweepSpec("data2vec-slc", "slc", "data2vec", _scaled("data2vec", _data2vec_fits),
              _chapter_options("data2vec", lambda cfg: dict(cfg.slc)), db="slc.sqlite"),
]


_MEASURED = [
    # Chapter 2: one masked-token network per (P, seed), measured against the Bayes floor.
    SweepSpec("tokens-masked-token", "masked-token", "tokens", _scaled("tokens", lambda cfg: Plan(
        (Grammar(**cfg.mlm_grammar),), cfg.mlm_P, cfg.mlm_seeds, 2000)),
        _chapter_options("tokens", lambda cfg: dict(cfg.mlm_options)), measure=_measure_networks),
    # Chapter 5: data2vec against masked-token prediction with the same backbone and budget, seed 0.
    SweepSpec("data2vec-data2vec", "data2vec", "data2vec", _scaled("data2vec", _data2vec_fits),
              _chapter_options("data2vec", lambda cfg: dict(cfg.net, **cfg.d2v, max_steps=cfg.steps,
                                                             probe_steps=cfg.probe_steps)),
              measure=_measure_networks),
    SweepSpec("data2vec-masked-token", "masked-token", "data2vec", _scaled("data2vec", _data2vec_fits),
              _chapter_options("data2vec", lambda cfg: dict(cfg.net, **cfg.mtm, max_steps=cfg.steps)),
              measure=_measure_networks),
]

#: Every sweep of the book by name.
SWEEPS: dict[str, SweepSpec] = {spec.name: spec for spec in _RECORDED + _CHAPTERS + _MEASURED}


# ------------------------------------------------------------------ the committed networks
_MLM_LONG = {"d_model": 32, "n_heads": 2, "n_layers": 3, "batch_size": 128, "lr": 0.003, "schedule": "cosine",
             "warmup": 300, "max_steps": 30000, "eval_every": 500, "patience": 10}
# data2vec's own targets (the top two of three blocks, a teacher that reads every token) at Chapter 2's mask rates,
# at a constant learning rate (_D2V_LONG) or with the masked-token network's budget and schedule (_D2V_MATCHED).
_D2V_OWN = {"K": 2, "teacher_input": "all", "mask_range": [0.2, 0.95]}
_D2V_LONG = {"d_model": 32, "n_heads": 2, "n_layers": 3, "batch_size": 128, "lr": 0.003, "schedule": "constant",
             "warmup": 0, "max_steps": 8000, "probe_steps": 6000, "n_init": 2, **_D2V_OWN}
_D2V_MATCHED = {"d_model": 32, "n_heads": 2, "n_layers": 3, "batch_size": 128, "lr": 0.003, "schedule": "cosine",
                "warmup": 300, "max_steps": 30000, "probe_steps": 6000, "n_init": 2, **_D2V_OWN}


def _fit(learner: str, v: int, m: int, L: int, P: int, seed: int, options: Mapping, name: str | None = None,
         folder: str = results.NETWORKS_DIR) -> Fit:
    file = name or f"{learner}-v{v}-m{m}-L{L}-P{P}-seed{seed}"
    return Fit(learner, {"v": v, "m": m, "s": 2, "L": L}, P, seed, options,
               f"{results.RESULTS_DIR}/{folder}/{file}.npz")


_D2V_SEARCH = {  # a candidate's changes to the controlled pair's recipe (Chapter 5)
    "K3-all": {"K": 3},
    "K3-hidden": {"K": 3, "teacher_input": "hidden"},
    "K3-hidden-ema9999": {"K": 3, "teacher_input": "hidden", "ema": [0.99, 0.9999]},
    "K3-all-ema9999": {"K": 3, "ema": [0.99, 0.9999]},
    "K3-hidden-mask40": {"K": 3, "teacher_input": "hidden", "mask_range": [0.4, 0.95]},
    "K3-all-60k": {"K": 3, "max_steps": 60000},
    "K3-hidden-w64": {"K": 3, "teacher_input": "hidden", "d_model": 64, "n_heads": 4},
}

#: The data2vec recipe that converges at L = 3 (Chapter 5's appendix).
_D2V_RECIPE = {**_D2V_MATCHED, **_D2V_SEARCH["K3-hidden-mask40"]}

#: Every set of committed networks by name.
NETWORKS: dict[str, NetworkSet] = {
    # Chapter 2's masked-token networks and Chapter 5's data2vec networks (with its controlled pair and the
    # variant whose teacher reads only the hidden tokens).
    "networks": NetworkSet("networks", "tokens", (
        *(_fit("masked-token", 16, 3, 3, P, 0, _MLM_LONG) for P in (1000, 4000, 16000)),
        *(_fit("data2vec", 8, 2, L, P, 0, _D2V_LONG) for L, P in ((3, 1000), (3, 4000), (4, 4000))),
        *(_fit("data2vec", 16, 3, 3, P, 0, _D2V_MATCHED) for P in (16000, 4000, 1000)),
        _fit("data2vec", 8, 2, 3, 4000, 0, {**_D2V_LONG, "teacher_input": "hidden"},
             "data2vec-hidden-v8-m2-L3-P4000-seed0"),
        _fit("data2vec", 16, 3, 3, 16000, 0, {**_D2V_MATCHED, "teacher_input": "hidden"},
             "data2vec-hidden-v16-m3-L3-P16000-seed0"),
    )),
    # The depth experiment: masked-token networks at the sizes that bracket the top level's P* (twice the steps at L = 4).
    "depth-networks": NetworkSet("depth-networks", "synthesis", tuple(
        _fit("masked-token", 16, 3, L, P, seed, _MLM_LONG if L == 3 else {**_MLM_LONG, "max_steps": 60000})
        for L, P, seed in ((3, 2000, 0), (3, 8000, 0), (3, 2000, 1), (3, 4000, 1), (3, 8000, 1), (3, 16000, 1),
                           (4, 64000, 0), (4, 32000, 0), (4, 16000, 0), (4, 8000, 0), (4, 64000, 1), (4, 32000, 1),
                           (4, 16000, 1), (4, 8000, 1)))),
    # The depth experiment again with twice the width and a fourth block (four heads), the larger network that moves
    # the masked-token network furthest at L = 4: the same sizes and seeds as depth-networks, the recipe's budget at
    # L = 3, and at L = 4 four times it (at twice it, the network stops 0.057 nats above the floor) with a patience
    # of 40 evaluations (at 10, the validation loss's noise stops it while its training loss still falls):
    # mlm-depth-blocks.
    "depth-networks-w64": NetworkSet("depth-networks-w64", "synthesis", tuple(
        _fit("masked-token", 16, 3, L, P, seed,
             {**_MLM_LONG, "d_model": 64, "n_heads": 4, "n_layers": 4,
              **({"max_steps": 30000} if L == 3 else {"max_steps": 120000, "patience": 40})},
             f"masked-token-w64-4blocks{'' if L == 3 else '-120k-p40'}-v16-m3-L{L}-P{P}-seed{seed}")
        for L, P, seed in ((3, 16000, 0), (3, 16000, 1), (3, 8000, 0), (3, 8000, 1), (3, 4000, 0), (3, 4000, 1),
                           (3, 2000, 0), (3, 2000, 1), (4, 64000, 0), (4, 64000, 1), (4, 32000, 0), (4, 32000, 1),
                           (4, 16000, 0), (4, 16000, 1), (4, 8000, 0), (4, 8000, 1)))),
    # A bounded search for a data2vec recipe that converges, on Chapter 2's grammar and strings (Chapter 5).
    "d2v-search": NetworkSet("d2v-search", "data2vec", tuple(
        _fit("data2vec", 16, 3, 3, 16000, 0, {**_D2V_MATCHED, **change}, f"data2vec-{name}-v16-m3-L3-P16000-seed0",
             results.SEARCH_DIR)
        for name, change in _D2V_SEARCH.items())),
    # The depth experiment for data2vec, with the recipe the search found (twice the steps at L = 4, whose top
    # level needs more), one set per grammar seed, so that two can be fitted side by side; the search's own
    # network is the point at L = 3, P = 16,000, seed 0.
    **{f"d2v-depth-seed{seed}": NetworkSet(f"d2v-depth-seed{seed}", "synthesis", tuple(
        _fit("data2vec", 16, 3, L, P, seed, _D2V_RECIPE if L == 3 else {**_D2V_RECIPE, "max_steps": 60000},
             f"data2vec-K3-hidden-mask40-v16-m3-L{L}-P{P}-seed{seed}",
             results.SEARCH_DIR if (L, P, seed) == (3, 16000, 0) else results.NETWORKS_DIR)
        for L, P in order)) for seed, order in (
            (0, ((3, 4000), (3, 2000), (3, 8000), (3, 16000), (4, 32000), (4, 64000), (3, 32000), (4, 16000),
                 (4, 8000), (4, 4000))),
            (1, ((3, 16000), (3, 4000), (3, 8000), (3, 2000), (3, 32000), (4, 32000), (4, 64000), (4, 16000),
                 (4, 8000), (4, 4000))))},
    # The masked-token network at L = 4 with twice and four times the width, the one change that moves data2vec
    # there (four heads at both widths, as the gpu-* experiments).
    "mlm-depth-width": NetworkSet("mlm-depth-width", "synthesis", tuple(
        _fit("masked-token", 16, 3, 4, 64000, 0, {**_MLM_LONG, "max_steps": 60000, "d_model": width, "n_heads": 4},
             f"masked-token-w{width}-v16-m3-L4-P64000-seed0") for width in (64, 128))),
    # The masked-token network at L = 4 with a fourth block (one per level of the tree), at the base width and at
    # twice it, at the same size and budget; at twice the width, twice the budget too (up to 2 hours on one core,
    # which a checkpoint spreads over sessions), on both grammars, and at half the size on grammar 0.
    "mlm-depth-blocks": NetworkSet("mlm-depth-blocks", "synthesis", tuple(
        _fit("masked-token", 16, 3, 4, P, seed, {**_MLM_LONG, "max_steps": steps, "n_layers": 4, **wider},
             f"masked-token-{name}4blocks{'' if steps == 60000 else '-120k'}-v16-m3-L4-P{P}-seed{seed}")
        for name, wider, steps, P, seed in (
            ("", {}, 60000, 64000, 0), ("w64-", {"d_model": 64, "n_heads": 4}, 60000, 64000, 0),
            *(("w64-", {"d_model": 64, "n_heads": 4}, 120000, P, seed)
              for P, seed in ((64000, 0), (64000, 1), (32000, 0)))))),
    # What the recipe lacks at L = 4, where it does not converge, at the depth sets' largest P but one: four times
    # the steps of L = 3, or a fourth block (its targets averaged over all four) with twice the steps.
    "d2v-depth-steps": NetworkSet("d2v-depth-steps", "synthesis", (
        _fit("data2vec", 16, 3, 4, 32000, 0, {**_D2V_RECIPE, "max_steps": 120000},
             "data2vec-K3-hidden-mask40-120k-v16-m3-L4-P32000-seed0"),)),
    "d2v-depth-blocks": NetworkSet("d2v-depth-blocks", "synthesis", (
        _fit("data2vec", 16, 3, 4, 32000, 0, {**_D2V_RECIPE, "max_steps": 60000, "n_layers": 4, "K": 4},
             "data2vec-K4-hidden-mask40-4blocks-v16-m3-L4-P32000-seed0"),)),
    # Further axes at L = 4, P = 32,000, seed 0, with twice the steps of L = 3: masks of whole level-2 blocks (four
    # tokens), whose targets need the level-3 parent, at rates that leave two of the four blocks visible on
    # average; twice the width; four times the width (four heads, as the gpu-* experiments) with the steps of L = 3
    # (a network that costs 2.5 hours on one core at 60,000 steps); a third of the learning rate.
    "d2v-depth-axes": NetworkSet("d2v-depth-axes", "synthesis", tuple(
        _fit("data2vec", 16, 3, 4, 32000, 0, {**_D2V_RECIPE, "max_steps": 60000, **change},
             f"data2vec-K3-hidden-mask40-{name}-v16-m3-L4-P32000-seed0")
        for name, change in (("level2", {"mask_level": 2, "mask_range": [0.25, 0.75]}),
                             ("w64", {"d_model": 64, "n_heads": 4}), ("lr1e-3", {"lr": 0.001}),
                             ("w128-30k", {"d_model": 128, "n_heads": 4, "max_steps": 30000})))),
}


def sweep_spec(name: str) -> SweepSpec:
    """The sweep named ``name`` (a key of :data:`SWEEPS`); ``ValueError`` listing the names otherwise."""
    if name not in SWEEPS:
        raise ValueError(f"spec must be one of {', '.join(SWEEPS)}, got {name!r}")
    return SWEEPS[name]


def network_set(name: str) -> NetworkSet:
    """The set of networks named ``name`` (a key of :data:`NETWORKS`); ``ValueError`` listing the names otherwise."""
    if name not in NETWORKS:
        raise ValueError(f"spec must be one of {', '.join(NETWORKS)}, got {name!r}")
    return NETWORKS[name]
