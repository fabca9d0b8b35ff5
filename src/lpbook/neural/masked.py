"""Token-level self-supervision: a transformer trained to predict masked tokens, read by the latent probe."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validate import check_int
from ..learners import Learner, register
from .encoder import Encoder
from .probe import LatentProbe
from .training import as_long_tensor, check_float, generator, in_batches, resolve_device, seeded, train


class MaskedTokenNetwork(nn.Module):
    """:class:`Encoder` plus a head (LayerNorm, then linear) from the last hidden state to ``v`` token logits.

    ``forward(tokens, mask)`` takes int64 tokens and a bool mask, both of shape
    ``(B, s**L)``, and returns logits of shape ``(B, s**L, v)``.
    """

    def __init__(self, encoder: Encoder, d_model: int, v: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, v))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens, mask)[-1])


def clean_states(encoder: Encoder, x: torch.Tensor) -> list[np.ndarray]:
    """``encoder``'s hidden states of unmasked int64 tokens ``x`` of shape ``(P, s**L)``, as CPU numpy arrays."""
    return [states.numpy() for states in in_batches(encoder, x)]


@register("masked-token")
class MaskedTokenModel(Learner):
    """The token-level contrast: masked-token prediction on an :class:`Encoder`, latents read by k-means.

    Training (OUR choices, the paper's are unknown): every token is masked
    independently with probability ``mask_rate`` (a fresh mask per batch and
    epoch, drawn from the learner's generator) and replaced by ``[MASK]``
    (no BERT 80/10/10 corruption: the probe reads clean inputs, never
    corrupted ones); a LayerNorm and a linear head map the last hidden state
    to ``v`` logits; the loss is the cross-entropy on the masked positions
    only, averaged over them; Adam at ``lr`` for ``epochs`` epochs. The
    default network is small (two blocks of width 32) so that a fit on
    ``P = 1e4`` strings of a ``v = 8, L = 3`` grammar takes seconds on a
    CPU; it does not reach the Bayes masked-token loss there in 30 epochs,
    so a chapter that needs converged networks should raise ``epochs`` (or
    use a GPU).

    After training, ``fit`` runs the network on the clean training tokens and
    fits a :class:`LatentProbe` (k-means per level and layer) on the hidden
    states. ``transform`` returns the level codes read from ``probe_layer``,
    fixed in advance; ``transform_layers`` returns every layer's codes, from
    which a chapter picks the best layer per level with
    :func:`~lpbook.neural.probe.score_layers` -- that choice uses held-out
    true latents, so it is an optimistic, oracle reading of the network.

    Parameters
    ----------
    v, s, L, seed : int
        The grammar's shape (``L >= 2``) and the seed (weights, batch order,
        masks, k-means).
    d_model : int
        Width of the encoder (default 32).
    n_layers : int
        Transformer blocks (default 2; the hidden states are layers ``0..n_layers``).
    n_heads : int
        Attention heads, dividing ``d_model`` (default 2).
    mask_rate : float in (0, 1)
        Probability that a token is masked (default 0.25).
    epochs, batch_size, lr
        Training length, minibatch size, Adam learning rate (defaults 30, 128, 3e-3).
    n_init : int
        k-means restarts of the probe (default 4).
    probe_layer : int, optional
        The layer ``transform`` reads, in ``0..n_layers`` (default: the last, ``n_layers``).
    device : str or torch.device
        Where to train (default ``"cpu"``).
    progress : bool
        Show a tqdm bar over epochs (default True).

    Attributes (after ``fit``)
    --------------------------
    network_ : MaskedTokenNetwork
    probe_ : LatentProbe
    losses_ : list[float], the mean masked-token cross-entropy of each epoch.
    """

    uses_labels = False

    def __init__(
        self,
        v,
        s,
        L,
        seed=0,
        d_model=32,
        n_layers=2,
        n_heads=2,
        mask_rate=0.25,
        epochs=30,
        batch_size=128,
        lr=3e-3,
        n_init=4,
        probe_layer=None,
        device="cpu",
        progress=True,
    ):
        super().__init__(v, s, L, seed)
        check_int("L", L, minimum=2)
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.n_heads = check_int("n_heads", n_heads, minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={d_model}, n_heads={n_heads}")
        self.mask_rate = check_float("mask_rate", mask_rate, low=0.0, high=1.0)
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = check_float("lr", lr, low=0.0)
        self.n_init = check_int("n_init", n_init, minimum=1)
        self.probe_layer = self.n_layers if probe_layer is None else check_int("probe_layer", probe_layer, minimum=0)
        if self.probe_layer > self.n_layers:
            raise ValueError(f"probe_layer must be <= n_layers = {self.n_layers}, got {probe_layer}")
        self.device = resolve_device(device)
        self.progress = bool(progress)

    def fit(self, tokens, labels=None) -> MaskedTokenModel:
        """Train on ``tokens`` of shape ``(P, s**L)`` (``labels`` are ignored), then fit the probe."""
        tokens = self._check_tokens(tokens)
        x = as_long_tensor(tokens, self.device)
        with seeded(self.seed):
            encoder = Encoder(self.v, self.s**self.L, self.d_model, self.n_layers, self.n_heads)
            network = MaskedTokenNetwork(encoder, self.d_model, self.v)
        network.to(self.device)
        rng = generator(self.seed)

        def batch_loss(index: torch.Tensor) -> torch.Tensor:
            batch = x[index]
            mask = (torch.rand(batch.shape, generator=rng) < self.mask_rate).to(self.device)
            logits = network(batch, mask)
            total = F.cross_entropy(logits[mask], batch[mask], reduction="sum")
            return total / mask.sum().clamp(min=1)  # a batch without masked tokens contributes 0

        self.losses_ = train(
            network,
            batch_loss,
            x.shape[0],
            max_steps=self.epochs * -(-x.shape[0] // self.batch_size),
            batch_size=self.batch_size,
            lr=self.lr,
            rng=rng,
            progress=self.progress,
            desc=type(self).__name__,
        ).train_loss
        probe = LatentProbe(self.v, self.s, self.L, seed=self.seed, n_init=self.n_init)
        self.probe_ = probe.fit(clean_states(network.encoder, x))
        self.network_ = network
        return self

    def hidden_states(self, tokens) -> list[np.ndarray]:
        """The clean tokens' hidden states: ``n_layers + 1`` float32 arrays of shape ``(P, s**L, d_model)``."""
        self._check_fitted("network_")
        return clean_states(self.network_.encoder, as_long_tensor(self._check_tokens(tokens), self.device))

    def transform(self, tokens) -> dict[int, np.ndarray]:
        """``{level: codes}`` for levels ``1..L-1`` from layer ``probe_layer``; codes ``(P, s**(L-level))``, int64 in ``[0, v)``."""
        return {level: by_layer[self.probe_layer] for level, by_layer in self.transform_layers(tokens).items()}

    def transform_layers(self, tokens) -> dict[int, dict[int, np.ndarray]]:
        """``{level: {layer: codes}}`` for levels ``1..L-1`` and layers ``0..n_layers``, codes as in :meth:`transform`."""
        self._check_fitted("probe_")
        return self.probe_.transform(self.hidden_states(tokens))
