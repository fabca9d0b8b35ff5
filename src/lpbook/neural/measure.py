"""One measured point of a masked-token network: latents by both readouts, and the test loss against the Bayes floor.

:func:`measure_masked_token` is what a chapter maps over a grid of ``P``
(it is a module-level function, so a process pool can run it). It draws the
grammar and the samples as :func:`lpbook.sweep.run_point` does (grammar
``seed``, training sample ``2 * seed``, test sample ``2 * seed + 1``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import bp
from .._validate import check_int
from ..grammar import RHM
from ..metrics import level_accuracy
from .masked import MaskedTokenModel
from .probe import LatentProbe, score_layers
from .training import LearningCurve

#: Training samples the clean-state probe's k-means sees (its cost grows with them; it is only the comparison).
PROBE_SAMPLES = 2000


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
    curve: LearningCurve
    seconds: float

    @property
    def excess_loss(self) -> float:
        """``test_loss - bayes_loss``, nats per hidden token."""
        return self.test_loss - self.bayes_loss


def measure_masked_token(grammar: dict, P: int, seed: int = 0, n_test: int = 2000, options: dict | None = None) -> MaskedTokenPoint:
    """Fit a :class:`MaskedTokenModel` on ``P`` samples of ``RHM(**grammar, seed=seed)`` and measure it.

    ``grammar`` holds ``v, m, s, L`` (and optionally ``n_classes``);
    ``options`` are the learner's keyword options (``progress`` is off).
    The test masks are drawn from the learner's own scheme
    (:meth:`MaskedTokenModel.sample_mask`, seed ``2 * seed + 1``).
    """
    rhm = RHM(**grammar, seed=seed)
    model = MaskedTokenModel(rhm.v, rhm.s, rhm.L, seed=seed, **{"progress": False, **(options or {})})
    start = time.process_time()
    model.fit(rhm.sample(P, seed=2 * seed).tokens)
    return measure_fitted(model, grammar, P, seed, n_test, seconds=time.process_time() - start)


def measure_fitted(model: MaskedTokenModel, grammar: dict, P: int, seed: int = 0, n_test: int = 2000,
                   seconds: float | None = None) -> MaskedTokenPoint:
    """Measure a :class:`MaskedTokenModel` already fitted on the ``P`` training samples of ``RHM(**grammar, seed=seed)``.

    The measurements of :func:`measure_masked_token`, for a network trained
    elsewhere, e.g. loaded from ``results/networks`` (:func:`lpbook.results.check_network`).
    ``seconds`` defaults to the CPU seconds of its training loop (``model.curve_.seconds[-1]``).
    """
    rhm = RHM(**grammar, seed=seed)
    if (model.v, model.s, model.L, model.seed) != (rhm.v, rhm.s, rhm.L, seed):
        raise ValueError(f"model was built for v={model.v}, s={model.s}, L={model.L}, seed={model.seed}; "
                         f"grammar and seed give v={rhm.v}, s={rhm.s}, L={rhm.L}, seed={seed}")
    train = rhm.sample(P, seed=2 * seed)
    test = rhm.sample(n_test, seed=2 * seed + 1)
    seconds = model.curve_.seconds[-1] if seconds is None else seconds
    levels = range(1, rhm.L)
    codes = model.transform(test.tokens)
    probe = LatentProbe(rhm.v, rhm.s, rhm.L, seed=seed).fit(model.hidden_states(train.tokens[:PROBE_SAMPLES]))
    clean = score_layers(probe.transform(model.hidden_states(test.tokens)), test.levels)
    mask = model.sample_mask(n_test, seed=2 * seed + 1)
    val_tokens, val_mask = model.validation_split(train.tokens)
    floors = {k: bp.bayes_masked_token_loss(rhm, test.tokens, mask, levels=k) for k in range(rhm.L + 1)}
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
        curve=model.curve_,
        seconds=seconds,
    )


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
