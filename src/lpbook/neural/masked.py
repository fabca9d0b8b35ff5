"""Token-level self-supervision: a transformer trained to predict masked tokens, read by the book's readout."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validate import check_int
from ..learners import Learner, register
from .encoder import Encoder
from .masking import block_mask, check_hidden_mask
from .options import ENCODER_COMPUTED_DEFAULTS, ENCODER_OPTION_VALUES, set_encoder_options
from .readout import NeighbourReadout
from .training import (
    INFERENCE_BATCH,
    RUNTIME_PARAMS,
    SCHEDULES,
    as_long_tensor,
    check_schedule,
    generator,
    in_batches,
    seeded,
    split_validation,
    torch_threads,
    train,
)


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
class MaskedTokenModel(Learner):
    """The token-level contrast: masked-token prediction on an :class:`Encoder`, trained to convergence.

    Training (OUR choices; the paper's are unknown):

    - *Masking.* Each sample draws a rate ``r`` uniformly from ``mask_range``
      and hides each of its level-1 ``s``-tuples (whole tuples, never single
      tokens) with probability ``r``, replacing the tokens by ``[MASK]``. A
      fresh mask per batch, from the learner's generator. The wide range
      makes inputs with a single visible node common, which the readout
      shows the network (:mod:`lpbook.neural.readout`).
    - *Loss.* Cross-entropy of the hidden tokens, summed over a batch and
      divided by the number of hidden tokens: nats per hidden token, the unit
      of the Bayes floor of :func:`lpbook.bp.bayes_masked_token_loss`.
    - *Convergence.* A validation split (``val_fraction`` of the samples,
      with masks drawn once) is held out; Adam at ``lr`` (constant, or
      warmed up and decayed along a cosine: ``schedule``, ``warmup``) runs
      until the validation loss has not improved for ``patience`` evaluations (one every
      ``eval_every`` steps) or ``max_steps`` run out, and the network keeps its
      best weights (:func:`lpbook.neural.training.train`).
    - *Size.* By default width 64, two blocks, four heads, batch 128,
      ``lr = 1e-3``. Chapter 2 sets its own sizes (``lpbook.scale``, chapter
      ``tokens``, ``mlm_options``) and reports the excess loss over the Bayes
      floor that they reach; ``benchmarks/bench_masked_token.py`` measures
      the CPU time of a step.

    After training, ``fit`` fits a :class:`~lpbook.neural.readout.NeighbourReadout`
    on the training samples, choosing each level's candidate on the
    validation samples (no labels anywhere). ``transform`` returns its codes.

    Parameters
    ----------
    v, s, L, seed : int
        The grammar's shape (``L >= 2``) and the seed (split, weights, batch
        order, masks, k-means).
    d_model, n_layers, n_heads : int
        Width, blocks and heads of the encoder (defaults 64, 2, 4).
    mask_range : pair of floats (low, high) in (0, 1), low <= high
        The range of per-sample mask rates (default ``(0.2, 0.95)``).
    max_steps, batch_size, lr
        Step budget, minibatch size, Adam learning rate (defaults 4000, 128, 1e-3).
    schedule, warmup
        The learning rate's schedule, ``"constant"`` (default) or
        ``"cosine"`` (to 0 at ``max_steps``), after a linear warmup of
        ``warmup`` steps (default 0); see :func:`lpbook.neural.training.learning_rate_factor`.
    eval_every, patience : int
        Steps between validation losses, and evaluations without improvement
        before stopping (defaults 100, 5).
    val_fraction : float in (0, 1)
        Share of the samples held out for validation (default 0.1).
    n_init : int
        k-means restarts of the readout (default 4).
    candidates : sequence of str, optional
        The readout's candidates (default: all, see
        :func:`~lpbook.neural.readout.candidate_names`).
    device : str or torch.device
        Where to train (default ``"cpu"``).
    threads : int
        torch's intra-op threads (default 1, the fastest for this size).
    progress : bool
        Show a tqdm bar over steps (default True).

    Attributes (after ``fit``)
    --------------------------
    network_ : MaskedTokenNetwork
    readout_ : NeighbourReadout
    curve_ : LearningCurve, train and validation loss (nats per hidden token) against steps.
    """

    uses_labels = False
    runtime_params = RUNTIME_PARAMS
    option_values = ENCODER_OPTION_VALUES | {
        "schedule": "one of " + ", ".join(map(repr, SCHEDULES)),
        "warmup": "an integer >= 0, < max_steps",
        "eval_every": "an integer >= 1",
        "patience": "an integer >= 1",
    }

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        return ENCODER_COMPUTED_DEFAULTS

    def __init__(
        self,
        v,
        s,
        L,
        seed=0,
        d_model=64,
        n_layers=2,
        n_heads=4,
        mask_range=(0.2, 0.95),
        max_steps=4000,
        batch_size=128,
        lr=1e-3,
        schedule="constant",
        warmup=0,
        eval_every=100,
        patience=5,
        val_fraction=0.1,
        n_init=4,
        candidates=None,
        device="cpu",
        threads=1,
        progress=True,
    ):
        super().__init__(v, s, L, seed)
        check_int("L", L, minimum=2)
        set_encoder_options(self, d_model=d_model, n_layers=n_layers, n_heads=n_heads, mask_range=mask_range,
                            max_steps=max_steps, batch_size=batch_size, lr=lr, val_fraction=val_fraction,
                            n_init=n_init, candidates=candidates, device=device, threads=threads, progress=progress)
        self.schedule, self.warmup = check_schedule(schedule, warmup, self.max_steps)
        self.eval_every = check_int("eval_every", eval_every, minimum=1)
        self.patience = check_int("patience", patience, minimum=1)

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels :meth:`transform` returns: ``1 .. L-1``."""
        return tuple(range(1, self.L))

    def _build_networks(self) -> dict[str, MaskedTokenNetwork]:
        """The untrained network of seed ``seed``, on the CPU, under the attribute that holds it."""
        with seeded(self.seed):
            encoder = Encoder(self.v, self.s**self.L, self.d_model, self.n_layers, self.n_heads)
            return {"network_": MaskedTokenNetwork(encoder, self.d_model, self.v)}

    # ------------------------------------------------------------- masks
    def _draw_mask(self, P: int, rng: torch.Generator) -> torch.Tensor:
        """A bool mask of shape ``(P, s**L)`` from this learner's scheme: whole level-1 tuples, rate per sample."""
        return block_mask(P, self.s, self.L, 1, self.mask_range, rng)

    def sample_mask(self, P: int, seed: int) -> np.ndarray:
        """``P`` masks of this learner's scheme, drawn from ``seed``: bool array ``(P, s**L)``, ``True`` = hidden."""
        P = check_int("P", P, minimum=1)
        return self._draw_mask(P, generator(check_int("seed", seed, minimum=0))).numpy()

    def _split(self, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training rows, validation rows and the validation masks (drawn once, seed ``seed + 1``) of ``P`` samples."""
        train_rows, val_rows = split_validation(P, self.val_fraction, self.seed)
        return train_rows, val_rows, self._draw_mask(len(val_rows), generator(self.seed + 1)).numpy()

    def validation_split(self, tokens) -> tuple[np.ndarray, np.ndarray]:
        """The validation strings that :meth:`fit` holds out of ``tokens`` (P, s**L), and their fixed masks.

        Returns ``(tokens[val_rows], mask)``, shapes ``(P_val, s**L)``, the mask
        bool (``True`` = hidden): the pairs on which ``curve_.val_loss`` is
        measured, so that :func:`lpbook.bp.bayes_masked_token_loss` gives its
        floors on exactly the same strings and masks.
        """
        tokens = self._check_tokens(tokens)
        _, val_rows, mask = self._split(tokens.shape[0])
        return tokens[val_rows], mask

    # ----------------------------------------------------------- fitting
    def fit(self, tokens, labels=None) -> MaskedTokenModel:
        """Train on ``tokens`` of shape ``(P >= 2, s**L)`` (``labels``, if given, are checked and ignored), then fit the readout."""
        tokens, _ = self._fit_inputs(tokens, labels)
        train_rows, val_rows, val_mask = self._split(tokens.shape[0])
        with torch_threads(self.threads):
            x = as_long_tensor(tokens[train_rows], self.device)
            x_val = as_long_tensor(tokens[val_rows], self.device)
            val_mask = torch.as_tensor(val_mask, device=self.device)
            network = self._build_networks()["network_"]
            network.to(self.device)
            rng = generator(self.seed)

            def batch_loss(index: torch.Tensor) -> torch.Tensor:
                batch = x[index]
                total, count = masked_cross_entropy(network, batch, self._draw_mask(len(index), rng).to(self.device))
                return total / count.clamp(min=1)  # a batch without hidden tokens contributes 0

            self.curve_ = train(
                network,
                batch_loss,
                x.shape[0],
                max_steps=self.max_steps,
                batch_size=self.batch_size,
                lr=self.lr,
                schedule=self.schedule,
                warmup=self.warmup,
                rng=rng,
                eval_every=self.eval_every,
                val_loss=lambda: self._loss(network, x_val, val_mask),
                patience=self.patience,
                progress=self.progress,
                desc=type(self).__name__,
            )
            self.network_ = network
            readout = NeighbourReadout(self.v, self.s, self.L, seed=self.seed, n_init=self.n_init, candidates=self.candidates)
            self.readout_ = readout.fit(network, tokens[train_rows], tokens[val_rows])
        return self

    @staticmethod
    @torch.no_grad()
    def _loss(network: MaskedTokenNetwork, x: torch.Tensor, mask: torch.Tensor) -> float:
        total, count = 0.0, 0
        for rows, masks in zip(x.split(INFERENCE_BATCH), mask.split(INFERENCE_BATCH)):
            batch_total, batch_count = masked_cross_entropy(network, rows, masks)
            total, count = total + batch_total.item(), count + batch_count.item()
        return total / max(count, 1)

    # ----------------------------------------------------------- reading
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

    def hidden_states(self, tokens) -> list[np.ndarray]:
        """The clean tokens' hidden states: ``n_layers + 1`` float32 arrays of shape ``(P, s**L, d_model)``.

        These feed the clean-state probe (:class:`~lpbook.neural.probe.LatentProbe`),
        which the book keeps as the comparison for the readout.
        """
        self._check_fitted("network_")
        with torch_threads(self.threads):
            x = as_long_tensor(self._check_tokens(tokens), self.device)
            return [states.numpy() for states in in_batches(self.network_.encoder, x)]

    def transform(self, tokens) -> dict[int, np.ndarray]:
        """``{level: codes}`` for levels ``1..L-1`` from the readout; codes ``(P, s**(L-level))``, in ``[0, v)``, dtype ``smallest_uint(v)``."""
        self._check_fitted("readout_")
        with torch_threads(self.threads):
            return self.readout_.transform(self.network_, self._check_tokens(tokens))

    def transform_candidates(self, tokens) -> dict[int, dict[str, np.ndarray]]:
        """``{level: {candidate: codes}}``: every candidate of the readout, codes as in :meth:`transform`."""
        self._check_fitted("readout_")
        with torch_threads(self.threads):
            return self.readout_.transform_candidates(self.network_, self._check_tokens(tokens))
