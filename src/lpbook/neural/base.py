"""The base of the encoder learners (:class:`~lpbook.neural.masked.MaskedTokenModel`, :class:`~lpbook.neural.data2vec.Data2Vec`).

An encoder learner trains a network built on :class:`~lpbook.neural.encoder.Encoder`
to predict something at masked positions, then reads its latents with the
readout :class:`~lpbook.neural.readout.NeighbourReadout`. :class:`EncoderLearner`
holds what they share, so that both accept, check and use it alike:

- the options of the backbone, the optimiser, the masks, the validation
  split and the readout, and the runtime options ``device``, ``threads`` and
  ``progress`` (:data:`~lpbook.neural.training.RUNTIME_PARAMS`);
- the masks: whole blocks of ``s**mask_level`` tokens hidden at a rate drawn
  per string from ``mask_range`` (:func:`~lpbook.neural.masking.block_mask`),
  from the learner's generator during training, and for any seed with
  :meth:`EncoderLearner.sample_mask`;
- the validation split (:func:`~lpbook.neural.training.split_validation`
  with the learner's seed) and its masks, drawn once from ``seed + 1``;
- :meth:`EncoderLearner.fit`: check the strings, split them, build the network
  on the CPU from the seed (:meth:`EncoderLearner.build`), train it on the
  device (the subclass's ``_train``, which passes ``on_step`` to
  :func:`~lpbook.neural.training.train`), then fit the readout on the
  training split with its candidates chosen on the validation split
  (:meth:`EncoderLearner.fit_readout`, which reads other modules too, such
  as a copy of the network at an earlier step);
- :meth:`EncoderLearner.transform`: the readout's codes of levels ``1..L-1``.

A subclass gives its network (``build``), its loss and loop (``_train``,
which records ``curve_``) and, to be read through another module than its
network, ``_readable``. Registered with :func:`lpbook.learners.register` and
listed in the README's table of learners, it is a learner of the book.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .._validate import check_float, check_int, check_pair
from ..learners import Learner
from .encoder import Encoder
from .masking import block_mask
from .readout import NeighbourReadout
from .training import (
    RUNTIME_OPTION_VALUES,
    RUNTIME_PARAMS,
    SCHEDULES,
    Checkpoint,
    LearningCurve,
    as_long_tensor,
    check_runtime,
    check_schedule,
    generator,
    in_batches,
    split_validation,
    torch_threads,
)


@dataclass(frozen=True)
class Split:
    """The strings of one fit, on the device: ``train`` ``(P_train, s**L)`` and ``val`` ``(P_val, s**L)``
    (int64), and ``val_mask`` (bool, ``val``'s shape), the validation masks drawn once."""

    train: torch.Tensor
    val: torch.Tensor
    val_mask: torch.Tensor


class EncoderLearner(Learner):
    """An encoder learner: the options, masks, validation split, fit and readout that its subclasses share.

    Parameters
    ----------
    v, s, L, seed : int
        The grammar's shape (``L >= 2``) and the seed (split, weights, batch
        order, masks, k-means).
    d_model, n_layers, n_heads : int
        Width, blocks and heads of the encoder (defaults 32, 3, 2).
    mask_range : pair of floats (low, high) in (0, 1), low <= high
        The range of per-string mask rates (default ``(0.2, 0.95)``; a
        subclass may choose its own).
    max_steps, batch_size, lr
        Step budget, minibatch size, Adam learning rate (defaults 30000, 128, 3e-3).
    schedule, warmup
        The learning rate's schedule, ``"cosine"`` (to 0 at ``max_steps``,
        the default) or ``"constant"``, after a linear warmup of ``warmup``
        steps (default ``max_steps // 100``); see
        :func:`lpbook.neural.training.learning_rate_factor`.
    val_fraction : float in (0, 1)
        Share of the strings held out for validation (default 0.1).
    n_init : int
        k-means restarts of the readout (default 4).
    candidates : sequence of str, optional
        The readout's candidates (default: all, see
        :func:`~lpbook.neural.readout.candidate_names`).
    device : str or torch.device
        Where to train (default ``"cpu"``).
    threads : int
        torch's intra-op threads while fitting and reading (default 1, the fastest for this size).
    progress : bool
        Show a tqdm bar over steps (default True).

    Attributes (after ``fit``)
    --------------------------
    network_ : the trained network (on ``device``)
    readout_ : NeighbourReadout
    curve_ : LearningCurve
    """

    uses_labels = False
    runtime_params = RUNTIME_PARAMS
    option_values = {
        "d_model": "an integer >= 1, a multiple of n_heads",
        "n_layers": "an integer >= 1",
        "n_heads": "an integer >= 1",
        "mask_range": "a pair [low, high] with 0 < low <= high < 1",
        "max_steps": "an integer >= 1",
        "batch_size": "an integer >= 1",
        "lr": "a number > 0",
        "schedule": "one of " + ", ".join(map(repr, SCHEDULES)),
        "warmup": "an integer >= 0, < max_steps",
        "val_fraction": "a number in (0, 1)",
        "n_init": "an integer >= 1",
        "candidates": "a list of names of lpbook.neural.readout.candidate_names",
        **RUNTIME_OPTION_VALUES,
    }
    #: Before the schedule was an option, every fit ran at a constant rate without warmup.
    introduced_params = {"schedule": "constant", "warmup": 0}
    #: Masked blocks span ``s**mask_level`` tokens (a subclass may make it an option).
    mask_level: ClassVar[int] = 1

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        return {"warmup": "max_steps // 100", "candidates": "every candidate"}

    def __init__(
        self,
        v,
        s,
        L,
        seed=0,
        d_model=32,
        n_layers=3,
        n_heads=2,
        mask_range=(0.2, 0.95),
        max_steps=30000,
        batch_size=128,
        lr=3e-3,
        schedule="cosine",
        warmup=None,
        val_fraction=0.1,
        n_init=4,
        candidates=None,
        device="cpu",
        threads=1,
        progress=True,
    ):
        super().__init__(v, s, L, seed)
        check_int("L", L, minimum=2)
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.n_heads = check_int("n_heads", n_heads, minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={d_model}, n_heads={n_heads}")
        self.mask_range = check_pair("mask_range", mask_range, low=0.0, high=1.0, closed=False)
        self.max_steps = check_int("max_steps", max_steps, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = check_float("lr", lr, low=0.0)
        self.schedule, self.warmup = check_schedule(schedule, self.max_steps // 100 if warmup is None else warmup,
                                                    self.max_steps)
        self.val_fraction = check_float("val_fraction", val_fraction, low=0.0, high=1.0)
        self.n_init = check_int("n_init", n_init, minimum=1)
        self.candidates = None if candidates is None else tuple(candidates)
        self._new_readout()  # checks the candidates
        self.device, self.threads, self.progress = check_runtime(device, threads, progress)

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels :meth:`transform` returns: ``1 .. L-1``."""
        return tuple(range(1, self.L))

    # ------------------------------------------------------------ the network
    def _encoder(self) -> Encoder:
        """A fresh encoder of this learner's sizes (the caller seeds the draw of its weights)."""
        return Encoder(self.v, self.s**self.L, self.d_model, self.n_layers, self.n_heads)

    def build(self) -> nn.Module:
        """The untrained network of this seed, on the CPU: the weights :meth:`fit` starts from."""
        raise NotImplementedError

    def _build_networks(self) -> dict[str, nn.Module]:
        """The save hook (see :mod:`lpbook.learners`): the untrained network under ``network_``."""
        return {"network_": self.build()}

    # ------------------------------------------------------------------ masks
    def _mask(self, n_strings: int, rng: torch.Generator) -> torch.Tensor:
        """A bool mask ``(n_strings, s**L)`` on the CPU from this learner's scheme, drawn from ``rng``."""
        return block_mask(n_strings, self.s, self.L, self.mask_level, self.mask_range, rng)

    def sample_mask(self, P: int, seed: int) -> np.ndarray:
        """``P`` masks of this learner's scheme, drawn from ``seed``: bool array ``(P, s**L)``, ``True`` = hidden.

        Two encoder learners with the same ``mask_level`` and ``mask_range``
        draw the same masks from the same seed.
        """
        P = check_int("P", P, minimum=1)
        return self._mask(P, generator(check_int("seed", seed, minimum=0))).numpy()

    def _split(self, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training rows, validation rows and the validation masks (drawn once, seed ``seed + 1``) of ``P`` strings."""
        train_rows, val_rows = split_validation(P, self.val_fraction, self.seed)
        return train_rows, val_rows, self._mask(len(val_rows), generator(self.seed + 1)).numpy()

    def validation_split(self, tokens) -> tuple[np.ndarray, np.ndarray]:
        """The validation strings that :meth:`fit` holds out of ``tokens`` (P, s**L), and their fixed masks.

        Returns ``(tokens[val_rows], mask)``, shapes ``(P_val, s**L)``, the mask
        bool (``True`` = hidden): the pairs on which the validation losses are
        measured, so that :func:`lpbook.bp.bayes_masked_token_loss` gives their
        floors on exactly the same strings and masks.
        """
        tokens = self._check_tokens(tokens)
        _, val_rows, mask = self._split(tokens.shape[0])
        return tokens[val_rows], mask

    def training_strings(self, tokens) -> np.ndarray:
        """The strings of ``tokens`` (P, s**L) that :meth:`fit` trains on: all but its validation split, in order."""
        return self._split_strings(self._check_tokens(tokens))[0]

    def _split_strings(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The training and validation strings of ``tokens``, as :meth:`fit` splits them."""
        train_rows, val_rows, _ = self._split(tokens.shape[0])
        return tokens[train_rows], tokens[val_rows]

    # ---------------------------------------------------------------- fitting
    def fit(self, tokens, labels=None, *, on_step=None, checkpoint=None) -> EncoderLearner:
        """Train on ``tokens`` of shape ``(P >= 2, s**L)`` (``labels``, if given, are checked and ignored), then fit the readout.

        ``on_step(step, network)``, if given, sees the network at step 0 and
        after every training step (:func:`~lpbook.neural.training.train`),
        e.g. :class:`~lpbook.neural.snapshots.Snapshots`. ``checkpoint``, if
        given, is a file where the training keeps its state at every
        evaluation: a fit killed on the way and called again with the same
        learner, tokens and file goes on from there, and ends with the bytes of
        an uninterrupted fit (a file left by another learner or other tokens
        is refused with ``ValueError``). The file stays when ``fit`` returns;
        delete it once the learner is saved. Both are arguments of this call,
        not options of the learner: they change nothing that the fit
        computes, and no result's identity.
        """
        tokens, _ = self._fit_inputs(tokens, labels)
        train_rows, val_rows, val_mask = self._split(tokens.shape[0])
        if on_step is not None and not callable(on_step):
            raise TypeError(f"on_step must be callable as on_step(step, network), got {type(on_step).__name__}")
        if checkpoint is not None:
            checkpoint = Checkpoint(checkpoint, self._identity(tokens))
        with torch_threads(self.threads):
            split = Split(as_long_tensor(tokens[train_rows], self.device), as_long_tensor(tokens[val_rows], self.device),
                          torch.as_tensor(val_mask, device=self.device))
            network = self.build().to(self.device)
            self.curve_ = self._train(network, split, generator(self.seed), on_step, checkpoint)
            self.network_ = network
            self.readout_ = self._new_readout().fit(self._readable(network), tokens[train_rows], tokens[val_rows])
        return self

    def _train(self, network: nn.Module, split: Split, rng: torch.Generator, on_step=None,
               checkpoint: Checkpoint | None = None) -> LearningCurve:
        """Train ``network`` (on the device) on ``split``, drawing batches and masks from ``rng``, calling
        ``on_step`` and keeping ``checkpoint`` as :func:`~lpbook.neural.training.train` does; its learning curve."""
        raise NotImplementedError

    def _identity(self, tokens: np.ndarray) -> dict:
        """What a checkpoint of this fit belongs to: the class, the options that change the result, and a digest
        of the strings ``tokens`` (P, s**L)."""
        params = {name: value for name, value in self.get_params().items() if name not in self.runtime_params}
        digest = hashlib.sha256(np.ascontiguousarray(tokens, dtype=np.int64).tobytes()).hexdigest()
        return {"learner": type(self).__name__, "params": params, "shape": list(tokens.shape), "tokens": digest}

    def fit_readout(self, module: nn.Module, train) -> NeighbourReadout:
        """A readout of ``module`` fitted as :meth:`fit` fits this learner's own.

        ``module`` is anything the readout reads (:mod:`lpbook.neural.readout`),
        e.g. a copy of the network at an earlier step; ``train`` are the
        tokens given to ``fit``, shape ``(P, s**L)``: the readout is fitted on
        their training split and chooses its candidate on their validation
        split, as ``fit`` splits them.
        """
        strings = self._split_strings(self._check_tokens(train, minimum=self.min_samples, action="train"))
        with torch_threads(self.threads):
            return self._new_readout().fit(module, *strings)

    def _readable(self, network: nn.Module) -> nn.Module:
        """What :meth:`transform` reads of ``network`` (the contract of :mod:`lpbook.neural.readout`): the network itself."""
        return network

    def _new_readout(self) -> NeighbourReadout:
        return NeighbourReadout(self.v, self.s, self.L, seed=self.seed, n_init=self.n_init, candidates=self.candidates)

    # ---------------------------------------------------------------- reading
    def transform(self, tokens) -> dict[int, np.ndarray]:
        """``{level: codes}`` for levels ``1..L-1`` from the readout; codes ``(P, s**(L-level))``, in ``[0, v)``, dtype ``smallest_uint(v)``."""
        self._check_fitted("readout_")
        with torch_threads(self.threads):
            return self.readout_.transform(self._readable(self.network_), self._check_tokens(tokens))

    def transform_candidates(self, tokens) -> dict[int, dict[str, np.ndarray]]:
        """``{level: {candidate: codes}}``: every candidate of the readout, codes as in :meth:`transform`."""
        self._check_fitted("readout_")
        with torch_threads(self.threads):
            return self.readout_.transform_candidates(self._readable(self.network_), self._check_tokens(tokens))

    def hidden_states(self, tokens) -> list[np.ndarray]:
        """The clean strings' hidden states of the encoder: ``n_layers + 1`` float32 arrays ``(P, s**L, d_model)``.

        These feed the clean-state probe (:class:`~lpbook.neural.probe.LatentProbe`),
        which the book keeps as the comparison for the readout.
        """
        self._check_fitted("network_")
        with torch_threads(self.threads):
            x = as_long_tensor(self._check_tokens(tokens), self.device)
            return [states.numpy() for states in in_batches(self.network_.encoder, x)]
