"""Measurements of trained networks against the grammar's truth.

:func:`measure_masked_token` is one measured point of a masked-token network
(latents by both readouts, and the test loss against the Bayes floor), what a
chapter maps over a grid of ``P`` (it is a module-level function, so a process
pool can run it). Its learner, grammar and samples are those of the sweep
point of the same grammar, ``P`` and seed (:meth:`lpbook.points.Point.make_learner`,
:meth:`lpbook.points.Point.data`).

:func:`target_synonymy` asks of a trained :class:`~lpbook.neural.data2vec.Data2Vec`
whether its teacher's targets are synonym-invariant, the hypothesis under
which its masked regression is one step of ILC (Chapter 5).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from sklearn.cluster import KMeans

from .. import bp
from .._validate import check_int
from ..grammar import RHM, sample_seeds
from ..points import Point
from ..metrics import level_accuracy, synonym_share
from ..tree import Node, descendants, siblings
from .data2vec import Data2Vec
from .masked import MaskedTokenModel
from .probe import LatentProbe, score_layers
from .training import LearningCurve

#: Training samples the clean-state probe's k-means sees (its cost grows with them; it is only the comparison).
PROBE_SAMPLES = 2000

#: The last evaluations of a network's curve over which :attr:`NetworkPoint.trends` fits each loss's slope.
TREND_EVALUATIONS = 20


@dataclass(frozen=True)
class MaskedTokenPoint:
    """What :func:`measure_masked_token` measured at one ``(P, seed)``.

    Attributes
    ----------
    P, seed : int
    accuracy : dict[int, float]
        Held-out accuracy of each level ``1..L-1`` read by the book's readout
        (:class:`~lpbook.neural.readout.NeighbourReadout`, candidate chosen
        without labels).
    choice : dict[int, str]
        The readout's candidate for each level.
    clean_accuracy : dict[int, float]
        The same levels read by the clean-state probe
        (:class:`~lpbook.neural.probe.LatentProbe`), at the layer that scores
        best on the held-out truth: an optimistic reading, kept for comparison.
    test_loss, bayes_loss : float
        The network's masked-token cross-entropy on the test samples, and the
        Bayes-optimal one (:func:`lpbook.bp.bayes_masked_token_loss`) for the
        same masks, in nats per hidden token.
    floors, val_floors : dict[int, float]
        The ladder of floors ``{k: bayes_masked_token_loss(..., levels=k)}``
        for ``k = 0..L`` (the loss of the predictor that knows the rules of
        levels ``1..k`` only; ``floors[L] == bayes_loss``), on the test samples
        and on the validation samples and masks of ``curve.val_loss``.
    loss_noise : float
        The noise of ``test_loss`` as a mean over the test's hidden tokens:
        two standard errors of the per-token losses of the floor below the
        root (:func:`lpbook.bp.masked_token_nll` with ``levels = L - 1``), the
        margin by which a loss counts as above or below a floor.
    curve : LearningCurve
    seconds : float
        CPU seconds of the fit (training and readout) in this process.
    """

    P: int
    seed: int
    accuracy: dict[int, float]
    choice: dict[int, str]
    clean_accuracy: dict[int, float]
    test_loss: float
    bayes_loss: float
    floors: dict[int, float]
    val_floors: dict[int, float]
    loss_noise: float
    curve: LearningCurve
    seconds: float

    @property
    def excess_loss(self) -> float:
        """``test_loss - bayes_loss``, nats per hidden token."""
        return self.test_loss - self.bayes_loss

    def to_record(self) -> dict:
        """The point as JSON values, for a sweep row's ``extra`` (:func:`sweep_record`); :meth:`from_record` reads it back.

        The fields, with ``curve`` as :meth:`LearningCurve.get_state`; JSON
        turns the integer level keys into strings.
        """
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> MaskedTokenPoint:
        """The point that :meth:`to_record` wrote (after a JSON round trip: level keys back to int; other keys ignored)."""
        by_level = ("accuracy", "choice", "clean_accuracy", "floors", "val_floors")
        values = {f.name: record[f.name] for f in fields(cls)}
        values.update({name: {int(k): v for k, v in record[name].items()} for name in by_level})
        values["curve"] = LearningCurve.from_state(record["curve"])
        return cls(**values)


def measure_masked_token(grammar: dict, P: int, seed: int = 0, n_test: int = 2000, options: dict | None = None) -> MaskedTokenPoint:
    """Fit a :class:`MaskedTokenModel` on ``P`` samples of ``RHM(**grammar, seed=seed)`` and measure it.

    ``grammar`` holds ``v, m, s, L`` (and optionally ``n_classes``);
    ``options`` are the learner's keyword options (``progress`` is off).
    The test masks are drawn from the learner's own scheme
    (:meth:`MaskedTokenModel.sample_mask`, seed ``2 * seed + 1``).
    """
    point = Point.make(MaskedTokenModel.name, grammar, P, seed, options=options, n_test=n_test)
    _, train, _ = point.data()
    model = point.make_learner(progress=False)
    start = time.process_time()
    model.fit(train.tokens)
    return measure_fitted(model, grammar, P, seed, n_test, seconds=time.process_time() - start)


def _data(model, grammar: dict, P: int, seed: int, n_test: int):
    """``(rhm, train, test)`` of the sweep point of ``model``'s learner on ``grammar`` at ``P`` and ``seed``,
    after checking that ``model`` was built for that grammar and seed."""
    point = Point.make(type(model).name, grammar, check_int("P", P, minimum=2), seed, n_test=n_test)
    if (model.v, model.s, model.L, model.seed) != (point.v, point.s, point.L, point.seed):
        raise ValueError(f"model was built for v={model.v}, s={model.s}, L={model.L}, seed={model.seed}; "
                         f"grammar and seed give v={point.v}, s={point.s}, L={point.L}, seed={seed}")
    return point.data()


def measure_fitted(model: MaskedTokenModel, grammar: dict, P: int, seed: int = 0, n_test: int = 2000,
                   seconds: float | None = None) -> MaskedTokenPoint:
    """Measure a :class:`MaskedTokenModel` already fitted on the ``P`` training samples of ``RHM(**grammar, seed=seed)``.

    The measurements of :func:`measure_masked_token`, for a network trained
    elsewhere, e.g. loaded from ``results/networks`` (:func:`lpbook.results.check_network`).
    ``seconds`` defaults to the CPU seconds of its training loop (``model.curve_.seconds[-1]``).
    """
    return _measure_masked(model, *_data(model, grammar, P, seed, n_test), P, seed, seconds)


def _measure_masked(model: MaskedTokenModel, rhm: RHM, train, test, P: int, seed: int,
                    seconds: float | None) -> MaskedTokenPoint:
    """:func:`measure_fitted` on the point's grammar ``rhm`` and its ``train`` and ``test`` samples."""
    test_seed = sample_seeds(seed)[1]
    seconds = model.curve_.seconds[-1] if seconds is None else seconds
    levels = range(1, rhm.L)
    codes = model.transform(test.tokens)
    probe = LatentProbe(rhm.v, rhm.s, rhm.L, seed=seed).fit(model.hidden_states(train.tokens[:PROBE_SAMPLES]))
    clean = score_layers(probe.transform(model.hidden_states(test.tokens)), test.levels)
    mask = model.sample_mask(test.P, seed=test_seed)
    val_tokens, val_mask = model.validation_split(train.tokens)
    floors = {k: bp.bayes_masked_token_loss(rhm, test.tokens, mask, levels=k) for k in range(rhm.L + 1)}
    below_root = bp.masked_token_nll(rhm, test.tokens, mask, levels=rhm.L - 1)[mask]
    return MaskedTokenPoint(
        P=P,
        seed=seed,
        accuracy={level: level_accuracy(test.levels[level], codes[level]) for level in levels},
        choice=dict(model.readout_.choice_),
        clean_accuracy={level: clean.accuracy[level][clean.best_layer[level]] for level in levels},
        test_loss=model.masked_token_loss(test.tokens, mask),
        bayes_loss=floors[rhm.L],
        floors=floors,
        val_floors={k: bp.bayes_masked_token_loss(rhm, val_tokens, val_mask, levels=k) for k in range(rhm.L + 1)},
        loss_noise=float(2 * below_root.std() / np.sqrt(below_root.size)),
        curve=model.curve_,
        seconds=seconds,
    )


@dataclass(frozen=True)
class NetworkPoint:
    """What :func:`measure_network` measured of one fitted network at ``(L, P, seed)``.

    Attributes
    ----------
    L, P, seed : int
    accuracy : dict[int, float]
        Held-out accuracy of each level ``1..L-1`` read by the network's own
        readout (its ``transform``, candidate chosen without labels).
    test_loss, bayes_loss : float
        The network's masked-token cross-entropy on the test strings (for
        data2vec, its token probe's), and the Bayes-optimal one on the same
        strings and masks, in nats per hidden token.
    steps : int
        Training steps run.
    seconds : float
        CPU seconds of the training loop (``curve_.seconds[-1]``).
    trends : dict[str, tuple[float, float]]
        For the training (``"train"``) and validation (``"val"``) losses, the
        slope per step over the last :data:`TREND_EVALUATIONS` evaluations
        and its 95% half-width (:meth:`LearningCurve.trend`); a loss with fewer
        evaluations (data2vec records no validation loss) has none.
    stopped : str
        Why training ended (:attr:`LearningCurve.stopped`): ``"patience"``,
        ``"target"`` or ``"budget"``.
    """

    L: int
    P: int
    seed: int
    accuracy: dict[int, float]
    test_loss: float
    bayes_loss: float
    steps: int
    seconds: float
    trends: dict[str, tuple[float, float]] = field(default_factory=dict)
    stopped: str = "budget"

    @property
    def excess_loss(self) -> float:
        """``test_loss - bayes_loss``, nats per hidden token."""
        return self.test_loss - self.bayes_loss

    @property
    def converged(self) -> bool:
        """Whether the excess loss is within :data:`lpbook.bp.CONVERGED_EXCESS`, the book's criterion."""
        return self.excess_loss <= bp.CONVERGED_EXCESS

    @property
    def improving(self) -> bool:
        """Whether the validation loss was still falling when training stopped: its trend's 95% interval lies
        below zero (``False`` without a validation trend)."""
        slope, width = self.trends.get("val", (0.0, 0.0))
        return slope + width < 0

    @property
    def unfinished(self) -> bool:
        """Whether its patience ended training while the validation loss was still falling (``improving``): a
        network that had not used the budget its recipe allows."""
        return self.stopped == "patience" and self.improving

    def row(self) -> dict:
        """The point as a sweep-like row (``L``, ``P``, ``seed``, ``accuracy``, ``excess_loss``) for :func:`lpbook.pstar.estimate_pstar`."""
        return {"L": self.L, "P": self.P, "seed": self.seed, "accuracy": dict(self.accuracy),
                "excess_loss": self.excess_loss}


def measure_network(model: MaskedTokenModel | Data2Vec, grammar: dict, P: int, seed: int = 0,
                    n_test: int = 2000) -> NetworkPoint:
    """Measure a network fitted on the ``P`` training samples of ``RHM(**grammar, seed=seed)`` on its test samples.

    The test strings are the sweep point's (:func:`lpbook.grammar.sample_seeds`),
    their masks the learner's own scheme drawn from the same seed; for a
    :class:`Data2Vec` the test loss is its token probe's. ``grammar`` holds
    ``v, m, s, L`` (and optionally ``n_classes``).
    """
    if not isinstance(model, (MaskedTokenModel, Data2Vec)):
        raise TypeError(f"model must be a fitted MaskedTokenModel or Data2Vec, got {type(model).__name__}")
    rhm, _, test = _data(model, grammar, P, seed, n_test)
    return _measure_network(model, rhm, test, P, seed)


def _measure_network(model: MaskedTokenModel | Data2Vec, rhm: RHM, test, P: int, seed: int) -> NetworkPoint:
    """:func:`measure_network` on the point's grammar ``rhm`` and its ``test`` sample."""
    codes = model.transform(test.tokens)
    mask = model.sample_mask(test.P, seed=sample_seeds(seed)[1])
    return NetworkPoint(
        L=rhm.L, P=P, seed=seed,
        accuracy={level: level_accuracy(test.levels[level], codes[level]) for level in range(1, rhm.L)},
        test_loss=model.masked_token_loss(test.tokens, mask),
        bayes_loss=bp.bayes_masked_token_loss(rhm, test.tokens, mask),
        steps=model.curve_.steps[-1], seconds=model.curve_.seconds[-1],
        trends={loss: model.curve_.trend(loss, last=TREND_EVALUATIONS) for loss, values in
                (("train", model.curve_.train_loss), ("val", model.curve_.val_loss))
                if len(values) >= TREND_EVALUATIONS},
        stopped=model.curve_.stopped,
    )


def training_excess(model: MaskedTokenModel | Data2Vec, grammar: dict, P: int, seed: int = 0, n: int = 2000) -> float:
    """The excess loss of a network on strings it was trained on, nats per hidden token.

    ``model`` was fitted on the ``P`` training samples of ``RHM(**grammar,
    seed=seed)`` (as for :func:`measure_network`). Its loss (for data2vec, its
    token probe's) on the first ``n`` strings of its training split, less the
    Bayes floor on the same strings, under masks of its own scheme drawn from
    ``seed + 2`` (none of the masks it saw: those were drawn along the
    training). Beside :attr:`NetworkPoint.excess_loss` on new strings, it tells
    a network that has not fitted its own strings (the two excesses equal:
    limited by its optimisation) from one that fits them better than new ones
    (limited by its samples).
    """
    if not isinstance(model, (MaskedTokenModel, Data2Vec)):
        raise TypeError(f"model must be a fitted MaskedTokenModel or Data2Vec, got {type(model).__name__}")
    n = check_int("n", n, minimum=1)
    rhm, train, _ = _data(model, grammar, P, seed, n_test=1)
    strings = model.training_strings(train.tokens)[:n]
    mask = model.sample_mask(len(strings), seed=seed + 2)
    return model.masked_token_loss(strings, mask) - bp.bayes_masked_token_loss(rhm, strings, mask)


def sweep_record(point: Point, model: MaskedTokenModel | Data2Vec, data) -> dict:
    """What a sweep point of a network stores besides its accuracies: the measure of :func:`lpbook.sweep.run_sweep`.

    ``data`` is the point's ``(rhm, train, test)``. For a
    :class:`MaskedTokenModel`, :meth:`MaskedTokenPoint.to_record` of
    :func:`measure_fitted` (the test loss, the ladder of floors on the test
    and validation strings, the noise, the clean-state probe, the curve;
    :meth:`MaskedTokenPoint.from_record` reads it back); for a
    :class:`Data2Vec`, the fields of :func:`measure_network` (its token
    probe's test loss against the Bayes floor). Both add ``excess_loss``.
    """
    rhm, train, test = data
    if isinstance(model, MaskedTokenModel):
        measured = _measure_masked(model, rhm, train, test, point.P, point.seed, None)
        return {"excess_loss": measured.excess_loss, **measured.to_record()}
    if isinstance(model, Data2Vec):
        network = _measure_network(model, rhm, test, point.P, point.seed)
        # the row stores what was measured on test strings; what is read off the curve is not stored
        return {"excess_loss": network.excess_loss, **{key: value for key, value in asdict(network).items()
                                                       if key not in ("trends", "stopped")}}
    raise TypeError(f"model must be a fitted MaskedTokenModel or Data2Vec, got {type(model).__name__}")


def seconds_per_step(grammar: dict, options: dict | None = None, steps: int = 30, seed: int = 0) -> float:
    """CPU seconds of one training step of :class:`MaskedTokenModel` with ``options``, measured in this process.

    One fit of ``steps`` steps (no early stopping, no warmup) on ``2 * batch_size``
    samples of ``RHM(**grammar, seed=seed)``; the training loop's own clock
    (:attr:`LearningCurve.seconds`) divided by the steps, so building the
    network and fitting the readout are left out.
    """
    steps = check_int("steps", steps, minimum=1)
    options = {"progress": False, **(options or {}), "max_steps": steps, "warmup": 0, "eval_every": steps,
               "candidates": ["output"]}  # the schedule's warmup does not change a step's cost
    rhm = RHM(**grammar, seed=seed)
    model = MaskedTokenModel(rhm.v, rhm.s, rhm.L, seed=seed, **options)
    model.fit(rhm.sample(2 * model.batch_size, seed=seed).tokens)
    return model.curve_.seconds[-1] / steps


@dataclass(frozen=True)
class TargetSynonymy:
    """What :func:`target_synonymy` measured at one level.

    Attributes
    ----------
    level : int
    share : float
        :func:`lpbook.metrics.synonym_share` of the teacher's targets at the
        node's siblings' positions, keyed by (node position, span value), with
        the node's latent as class: 0 when the targets depend on the node's
        span only through its latent.
    ideal_accuracy : float
        The accuracy, averaged over node positions, of a weighted k-means with
        ``v`` clusters on the *exact* conditional means of those targets, one
        per span value (estimated from the sample): the readout of a student
        that predicts the targets perfectly.
    n : int
        The strings the conditional means were estimated from.
    per_span : float
        Strings per distinct span value, averaged over node positions: the
        ideal readout is only as good as the means it clusters, so read it
        where this is large (tens or more).
    """

    level: int
    share: float
    ideal_accuracy: float
    n: int
    per_span: float


def target_synonymy(model: Data2Vec, rhm: RHM, levels=None, n: int = 20000, seed: int = 0) -> dict[int, TargetSynonymy]:
    """Are the trained teacher's targets at a hidden neighbour of a node a function of the node's latent alone?

    The regression of data2vec is one step of ILC when its targets at a
    node's neighbours depend on the node only through its latent (Chapter 5).
    A teacher reading the full input may also encode the node's own tokens
    there. Draws ``n`` strings of ``rhm`` (sample seed ``seed``) and, for
    every node position of each level in ``levels`` (default ``1..L-1``),
    computes :meth:`Data2Vec.targets` with the node shown alone (the
    readout's input) at its siblings' spans (concatenated). Returns
    ``{level: TargetSynonymy}``: their :func:`~lpbook.metrics.synonym_share`
    and ``ideal_accuracy``. k-means: ``n_init=10``, ``random_state=seed``.
    A teacher that reads every token (``teacher_input="all"``) is run once on
    the sample; one that reads the hidden tokens, once per node position.
    """
    if not isinstance(model, Data2Vec):
        raise TypeError(f"model must be a fitted Data2Vec, got {type(model).__name__}")
    if not isinstance(rhm, RHM) or (rhm.v, rhm.s, rhm.L) != (model.v, model.s, model.L):
        raise ValueError(f"rhm must be an RHM with v={model.v}, s={model.s}, L={model.L}, as the model")
    levels = range(1, rhm.L) if levels is None else [check_int("levels", level, minimum=1) for level in levels]
    if any(level >= rhm.L for level in levels):
        raise ValueError(f"levels must be below the root, 1 <= level <= L - 1 = {rhm.L - 1}, got {list(levels)}")
    n = check_int("n", n, minimum=2)
    sample = rhm.sample(n, seed=check_int("seed", seed, minimum=0))
    # A teacher that reads every token gives the same targets whatever the student's mask: compute them once.
    every = model.targets(sample.tokens, np.ones(sample.tokens.shape, dtype=bool)) if model.teacher_input == "all" else None
    out = {}
    for level in levels:
        features, keys, classes, accuracies, distinct = [], [], [], [], []
        for i in range(rhm.n_positions(level)):
            span = [node.pos for node in descendants(Node(level, i), 0, rhm.s)]
            around = [node.pos for sib in siblings(Node(level, i), rhm.s) for node in descendants(sib, 0, rhm.s)]
            alone = np.ones(sample.tokens.shape, dtype=bool)  # the readout's input: the node alone
            alone[:, span] = False
            targets = model.targets(sample.tokens, alone) if every is None else every
            x = targets[:, around, :].reshape(n, -1)
            _, key, counts = np.unique(sample.tokens[:, span], axis=0, return_inverse=True, return_counts=True)
            key = key.ravel()
            means = np.zeros((counts.size, x.shape[1]))
            np.add.at(means, key, x)
            means /= counts[:, None]
            means -= counts @ means / counts.sum()
            clusters = KMeans(rhm.v, n_init=10, random_state=seed).fit(means, sample_weight=counts).labels_
            accuracies.append(level_accuracy(sample.levels[level][:, i], clusters[key]))
            distinct.append(counts.size)
            features.append(x)
            keys.append(i * n + key)  # keys of different positions never meet
            classes.append(i * rhm.v + sample.levels[level][:, i].astype(np.int64))
        share = synonym_share(np.concatenate(features), np.concatenate(keys), np.concatenate(classes))
        out[level] = TargetSynonymy(level=level, share=share, ideal_accuracy=float(np.mean(accuracies)), n=n,
                                    per_span=n / float(np.mean(distinct)))
    return out
