"""Copies of a network along its training, and what the readout finds in each: the training path of one fit.

:class:`Snapshots` is an ``on_step`` callback of an encoder learner's ``fit``
(:meth:`lpbook.neural.base.EncoderLearner.fit`): it keeps a CPU copy of the
network at each chosen step. :func:`read_network` reads any such network (the
student, or the teacher of a :class:`~lpbook.neural.data2vec.Data2Vec`) with a
readout fitted as the learner fits its own, on the strings the learner was
fitted on. Neither is an option of a learner, so neither enters a result's
identity.
"""

from __future__ import annotations

import copy

import numpy as np
from torch import nn

from .._validate import check_int
from .base import EncoderLearner
from .training import torch_threads


class Snapshots:
    """An ``on_step(step, network)`` callback that keeps a CPU copy of the network at each of ``steps``.

    ``networks`` maps each step reached to its copy (in ``eval`` mode, no
    gradients); step 0 is the untrained network, and a step past the end of
    training is never reached.
    """

    def __init__(self, steps):
        if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
            raise TypeError(f"steps must be a sequence of integers, got {steps!r}")
        self.steps = tuple(sorted({check_int("steps", step, minimum=0) for step in steps}))
        if not self.steps:
            raise ValueError("steps must name at least one step")
        self.networks: dict[int, nn.Module] = {}

    def __call__(self, step: int, network: nn.Module) -> None:
        if step in self.steps:
            self.networks[step] = copy.deepcopy(network).cpu().requires_grad_(False).eval()

    def read(self, learner: EncoderLearner, tokens, train, which: str = "student") -> dict[int, dict[int, np.ndarray]]:
        """``{step: codes}``: :func:`read_network` of every copy kept, in step order."""
        return {step: read_network(learner, network, tokens, train, which) for step, network in sorted(self.networks.items())}


def read_network(learner: EncoderLearner, network: nn.Module, tokens, train, which: str = "student") -> dict[int, np.ndarray]:
    """The codes of levels ``1..L-1`` that a fresh readout finds in ``network`` for ``tokens`` ``(P, s**L)``.

    ``network`` is ``learner``'s network or a copy of it (:class:`Snapshots`);
    ``which`` reads its student (``"student"``) or, for a data2vec network, its
    teacher (``"teacher"``). The readout is fitted on the training split of
    ``train`` (the tokens given to ``learner.fit``) and chooses its candidate
    on their validation split (:meth:`~lpbook.neural.base.EncoderLearner.fit_readout`).
    Codes as :meth:`~lpbook.neural.base.EncoderLearner.transform` gives them.
    """
    if not isinstance(learner, EncoderLearner):
        raise TypeError(f"learner must be an encoder learner (MaskedTokenModel, Data2Vec), got {type(learner).__name__}")
    if which not in ("student", "teacher"):
        raise ValueError(f"which must be 'student' or 'teacher', got {which!r}")
    if which == "teacher" and not hasattr(network, "teacher"):
        raise ValueError(f"which='teacher' needs a network with a teacher (data2vec's), got a {type(network).__name__}")
    network = copy.deepcopy(network).to(learner.device) if learner.device.type != "cpu" else network
    readable = learner._readable(network, which) if which == "teacher" else network
    tokens = learner._check_tokens(tokens)
    readout = learner.fit_readout(readable, train)
    with torch_threads(learner.threads):
        return readout.transform(readable, tokens)
