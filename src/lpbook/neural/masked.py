"""Token-level self-supervision: a transformer trained to predict masked tokens, read by the book's readout."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._validate import check_int
from ..learners import register
from .base import EncoderLearner, Split
from .encoder import Encoder
from .masking import check_hidden_mask
from .training import INFERENCE_BATCH, LearningCurve, as_long_tensor, seeded, torch_threads, train


class MaskedTokenNetwork(nn.Module):
    """:class:`Encoder` plus a head (LayerNorm, then linear) from the last hidden state to ``v`` token logits.

    ``forward(tokens, mask)`` takes int64 tokens and a bool mask, both of shape
    ``(B, s**L)``, and returns logits of shape ``(B, s**L, v)``. It follows
    the contract of :mod:`lpbook.neural.readout`: ``states(tokens, mask)`` is
    the encoder's list of hidden states, and ``output(states)`` the predicted
    token probabilities, shape ``(B, s**L, v)``.
    """

    def __init__(self, encoder: Encoder, d_model: int, v: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, v))

    def states(self, tokens: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(tokens, mask)

    def output(self, states: list[torch.Tensor]) -> torch.Tensor:
        return self.head(states[-1]).softmax(-1)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens, mask)[-1])


def masked_cross_entropy(network: MaskedTokenNetwork, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy (nats) over the hidden tokens of a batch, and their number."""
    logits = network(tokens, mask)
    return F.cross_entropy(logits[mask], tokens[mask], reduction="sum"), mask.sum()


@register("masked-token")
class MaskedTokenModel(EncoderLearner):
    """The token-level contrast: masked-token prediction on an :class:`Encoder`, trained to convergence.

    Training (OUR choices; the paper's are unknown):

    - *Masking.* Each string draws a rate ``r`` uniformly from ``mask_range``
      and hides each of its level-1 ``s``-tuples (whole tuples, never single
      tokens) with probability ``r``, replacing the tokens by ``[MASK]``. A
      fresh mask per batch, from the learner's generator. The wide range
      makes inputs with a single visible node common, which the readout
      shows the network (:mod:`lpbook.neural.readout`).
    - *Loss.* Cross-entropy of the hidden tokens, summed over a batch and
      divided by the number of hidden tokens: nats per hidden token, the unit
      of the Bayes floor of :func:`lpbook.bp.bayes_masked_token_loss`.
    - *Convergence.* A validation split (``val_fraction`` of the strings,
      with masks drawn once) is held out; Adam at ``lr`` (constant, or
      warmed up and decayed along a cosine: ``schedule``, ``warmup``) runs
      until the validation loss has not improved for ``patience`` evaluations (one every
      ``eval_every`` steps) or ``max_steps`` run out, and the network keeps its
      best weights (:func:`lpbook.neural.training.train`).
    - *Defaults.* The recipe of Chapter 2's committed networks, which
      converges (excess loss within :data:`lpbook.bp.CONVERGED_EXCESS` of the
      Bayes floor, on two grammars) at ``v = 16, m = 3, L = 3`` with
      ``P = 16,000`` strings: width 32, three blocks, two heads, batch 128, ``lr = 3e-3`` on a cosine
      schedule after a warmup of ``max_steps // 100`` steps, at most 30,000
      steps, a validation loss every 500 steps and a patience of 10 (5,000
      steps: the loss plateaus for thousands of steps before it falls). On one
      core a step costs about 10 ms, so a fit costs 3 to 8 minutes, the less
      the earlier it stops. Chapter 2 sets smaller sizes for its live cells
      (``lpbook.scale``, chapter ``tokens``, ``mlm_options``) and reports the
      excess loss they reach. ``benchmarks/bench_defaults.py`` fits the
      defaults on a grammar that no chapter uses, where they converge too.
      At ``L = 4`` (``P = 64,000``) they stop about 0.09 nats above the floor;
      ``d_model=64, n_heads=4, n_layers=4, max_steps=120_000`` converges
      there, at about 80 minutes on one core (the set ``depth-networks-w64``
      of :data:`lpbook.experiments.NETWORKS`).

    After training, ``fit`` fits a :class:`~lpbook.neural.readout.NeighbourReadout`
    on the training strings, choosing each level's candidate on the
    validation strings (no labels anywhere). ``transform`` returns its codes.

    Parameters
    ----------
    v, s, L, seed, d_model, n_layers, n_heads, mask_range, max_steps, batch_size, lr, schedule, warmup,
    val_fraction, n_init, candidates, device, threads, progress
        As for every encoder learner (:class:`~lpbook.neural.base.EncoderLearner`).
    eval_every, patience : int
        Steps between validation losses, and evaluations without improvement
        before stopping (defaults 500, 10).

    Attributes (after ``fit``)
    --------------------------
    network_ : MaskedTokenNetwork
    readout_ : NeighbourReadout
    curve_ : LearningCurve, train and validation loss (nats per hidden token) against steps.
    """

    option_values = {"eval_every": "an integer >= 1", "patience": "an integer >= 1"}

    def __init__(self, v, s, L, seed=0, eval_every=500, patience=10, **options):
        super().__init__(v, s, L, seed, **options)
        self.eval_every = check_int("eval_every", eval_every, minimum=1)
        self.patience = check_int("patience", patience, minimum=1)

    def build(self) -> MaskedTokenNetwork:
        """The untrained network of this seed, on the CPU: the weights :meth:`fit` starts from."""
        with seeded(self.seed):
            return MaskedTokenNetwork(self._encoder(), self.d_model, self.v)

    def _train(self, network: MaskedTokenNetwork, split: Split, rng, on_step=None, checkpoint=None) -> LearningCurve:
        """Masked-token cross-entropy until the validation loss stops improving (see the class docstring)."""

        def batch_loss(index: torch.Tensor) -> torch.Tensor:
            total, count = masked_cross_entropy(network, split.train[index], self._mask(len(index), rng).to(self.device))
            return total / count.clamp(min=1)  # a batch without hidden tokens contributes 0

        return train(
            network, batch_loss, split.train.shape[0], max_steps=self.max_steps, batch_size=self.batch_size,
            lr=self.lr, schedule=self.schedule, warmup=self.warmup, rng=rng, eval_every=self.eval_every,
            val_loss=lambda: self._loss(network, split.val, split.val_mask), patience=self.patience,
            progress=self.progress, desc=type(self).__name__, on_step=on_step, checkpoint=checkpoint,
        )

    @staticmethod
    @torch.no_grad()
    def _loss(network: MaskedTokenNetwork, x: torch.Tensor, mask: torch.Tensor) -> float:
        total, count = 0.0, 0
        for rows, masks in zip(x.split(INFERENCE_BATCH), mask.split(INFERENCE_BATCH)):
            batch_total, batch_count = masked_cross_entropy(network, rows, masks)
            total, count = total + batch_total.item(), count + batch_count.item()
        return total / max(count, 1)

    def masked_token_loss(self, tokens, mask) -> float:
        """The network's cross-entropy on the hidden tokens of ``tokens`` under ``mask``, in nats per hidden token.

        ``tokens`` and ``mask`` (bool, ``True`` = hidden) have shape ``(P, s**L)``;
        compare with :func:`lpbook.bp.bayes_masked_token_loss` on the same pair.
        """
        self._check_fitted("network_")
        tokens = self._check_tokens(tokens)
        mask = check_hidden_mask(mask, tokens.shape)
        with torch_threads(self.threads):
            x = as_long_tensor(tokens, self.device)
            return self._loss(self.network_, x, torch.as_tensor(mask, device=self.device))
