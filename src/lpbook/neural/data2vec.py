"""data2vec on the RHM: a masked student regresses the representations of its own moving-average teacher.

Baevski et al. (arXiv:2202.03555). The backbone is the book's :class:`Encoder`,
the same as :class:`~lpbook.neural.masked.MaskedTokenModel`'s: the *target* is
the only difference between the two learners, which makes the pair the book's
controlled experiment on token-level against latent-level prediction.

One training step, for a batch of token strings ``x`` of shape ``(B, s**L)``:

1. draw a mask of whole blocks of ``s**mask_level`` tokens (:func:`block_mask`),
   with a masking rate drawn per string from ``mask_rate``;
2. the *teacher* (:class:`Encoder`, an exponential moving average of the
   student) sees the full ``x``; the target at every position is the average of
   its top ``K`` block outputs, each normalised per token without parameters,
   the average normalised again (:func:`teacher_targets`), without gradient;
3. the *student* (:class:`Encoder` plus a linear regression head) sees ``x``
   with the masked tokens replaced by ``[MASK]``, and regresses the targets at
   the masked positions with a smooth-L1 loss;
4. after the optimiser's step, the teacher moves toward the student:
   ``theta_T <- tau theta_T + (1 - tau) theta_S`` (:func:`ema_update`), with
   ``tau`` rising linearly from ``tau0`` to ``tau_end`` (:func:`ema_decay`).
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from .._validate import check_int
from ..learners import Learner, register
from .encoder import Encoder
from .training import as_long_tensor, check_float, generator, resolve_device, seeded, torch_threads, train


def _check_pair(name: str, value, *, low: float, high: float, closed: bool) -> tuple[float, float]:
    """``value`` as a pair ``(a, b)`` with ``a <= b``, both in ``[low, high]`` (``closed``) or ``(low, high)``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers (first, last), got {value!r}")
    for x in value:
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise TypeError(f"{name} must hold real numbers, got {value!r}")
    a, b = float(value[0]), float(value[1])
    inside = (lambda x: low <= x <= high) if closed else (lambda x: low < x < high)
    if not (inside(a) and inside(b)):
        interval = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    if a > b:
        raise ValueError(f"{name} must be (first, last) with first <= last, got {value!r}")
    return a, b


def ema_decay(step: int, n_steps: int, tau0: float, tau_end: float) -> float:
    """The teacher's decay at ``step`` of ``n_steps``: linear from ``tau0`` (step 0) to ``tau_end`` (last step)."""
    if n_steps <= 1:
        return tau_end
    return tau0 + (tau_end - tau0) * min(step, n_steps - 1) / (n_steps - 1)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, tau: float) -> None:
    """Move every parameter of ``teacher`` toward ``student``'s: ``t <- tau * t + (1 - tau) * s``, in place.

    The two modules must have the same parameters in the same order (the
    teacher is a deep copy of the student).
    """
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.lerp_(s, 1.0 - tau)


def block_mask(
    n_strings: int, s: int, L: int, mask_level: int, rate: tuple[float, float], rng: torch.Generator
) -> torch.Tensor:
    """A bool mask of shape ``(n_strings, s**L)`` that hides whole blocks of ``s**mask_level`` tokens.

    Each string draws its rate ``r`` uniformly in ``[rate[0], rate[1]]``; each
    of its ``s**(L - mask_level)`` blocks (the spans of the level-``mask_level``
    nodes: single tokens at 0, ``s``-tuples at 1, subtrees above) is then
    hidden independently with probability ``r``. The draws come from the CPU
    generator ``rng``; the mask is on the CPU.
    """
    low, high = rate
    rates = low + (high - low) * torch.rand(n_strings, 1, generator=rng)
    hidden = torch.rand(n_strings, s ** (L - mask_level), generator=rng) < rates
    return hidden.repeat_interleave(s**mask_level, dim=1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Layer normalisation over the last dimension, without learned parameters."""
    return F.layer_norm(x, x.shape[-1:])


@torch.no_grad()
def teacher_targets(teacher: Encoder, tokens: torch.Tensor, K: int) -> torch.Tensor:
    """data2vec's targets: shape ``(B, s**L, d_model)`` for int64 ``tokens`` of shape ``(B, s**L)``.

    The average over the teacher's top ``K`` block outputs (layers
    ``n_layers - K + 1 .. n_layers``; the embedding, layer 0, never counts) of
    each output normalised per token, normalised again. No gradient flows.
    """
    top = teacher(tokens)[-K:]
    return normalise(torch.stack([normalise(x) for x in top]).mean(dim=0))


class Data2VecNetwork(nn.Module):
    """A student (:class:`Encoder` plus a linear regression head) and its EMA teacher.

    The teacher is a deep copy of the student's encoder at initialisation,
    with gradients off; only :meth:`update_teacher` changes it.
    ``forward(tokens, mask)`` returns the student's predictions, shape
    ``(B, s**L, d_model)``, for int64 ``tokens`` and a bool ``mask`` of shape
    ``(B, s**L)``.
    """

    def __init__(self, encoder: Encoder, d_model: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(d_model, d_model)
        self.teacher = copy.deepcopy(encoder).requires_grad_(False)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens, mask)[-1])

    def loss(self, tokens: torch.Tensor, mask: torch.Tensor, K: int, beta: float) -> torch.Tensor:
        """Smooth-L1 regression of the teacher's targets at the masked positions, averaged over them and ``d_model``.

        A batch without masked positions contributes 0.
        """
        targets = teacher_targets(self.teacher, tokens, K)
        predictions = self(tokens, mask)
        total = F.smooth_l1_loss(predictions[mask], targets[mask], beta=beta, reduction="sum")
        return total / (mask.sum() * targets.shape[-1]).clamp(min=1)

    def update_teacher(self, tau: float) -> None:
        """One EMA step of the teacher toward the student's encoder, decay ``tau``."""
        ema_update(self.teacher, self.encoder, tau)


@register("data2vec")
class Data2Vec(Learner):
    """data2vec: a masked student regresses its EMA teacher's representations; latents read by the shared readout.

    The training recipe follows data2vec (Baevski et al. 2022) in its parts
    (EMA teacher, top-``K`` normalised targets, smooth-L1 at masked positions);
    the values, the block masking and the sizes are OUR choices (the paper's
    are not public), listed in the table of Chapter 5.

    - **Backbone:** :class:`Encoder` with the options of
      :class:`~lpbook.neural.masked.MaskedTokenModel`, plus a linear
      regression head on the student.
    - **Masking:** whole blocks of ``s**mask_level`` tokens (``mask_level=1``:
      ``s``-tuples, the default; 0: single tokens; higher: subtrees), at a rate
      drawn per string uniformly in ``mask_rate`` (:func:`block_mask`), so that
      strings with a single visible node are seen in training.
    - **Teacher:** the EMA of the student's encoder, decay rising linearly from
      ``ema[0]`` to ``ema[1]`` over ``max_steps``; before each optimiser step
      the teacher moves toward the student's current weights.
    - **Targets:** :func:`teacher_targets` with ``K`` blocks, no gradient.
    - **Training:** Adam at ``lr`` for ``max_steps`` steps. data2vec's loss
      has a moving target, so its value says nothing about convergence and
      there is no early stopping on it: ``curve_`` records the training loss.

    Parameters
    ----------
    v, s, L, seed : int
        The grammar's shape (``L >= 2``) and the seed (weights, batches, masks).
    d_model, n_layers, n_heads : int
        The encoder (defaults 32, 2, 2).
    K : int
        Teacher blocks averaged into the target, ``1 <= K <= n_layers`` (default 2).
    ema : (float, float)
        Teacher decay at the first and the last step, each in ``[0, 1]`` (default ``(0.99, 0.999)``).
    mask_level : int
        Masked blocks span ``s**mask_level`` tokens, ``0 <= mask_level < L`` (default 1).
    mask_rate : (float, float)
        Range of the per-string masking rate, ``0 < low <= high < 1`` (default ``(0.2, 0.8)``).
    beta : float
        Smooth-L1 threshold, ``> 0`` (default 1).
    max_steps, batch_size, lr
        Training budget, minibatch size, Adam learning rate (defaults 3000, 128, 1e-3).
    trace_steps : sequence of int
        Steps at which to keep a copy of the student and the teacher (default none), for
        :meth:`transform_at`.
    device : str or torch.device
        Where to train (default ``"cpu"``).
    threads : int
        torch threads while fitting and transforming (default 1).
    progress : bool
        Show a tqdm bar over steps (default True).

    Attributes (after ``fit``)
    --------------------------
    network_ : Data2VecNetwork
    curve_ : LearningCurve, the smooth-L1 training loss against steps.
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
        K=2,
        ema=(0.99, 0.999),
        mask_level=1,
        mask_rate=(0.2, 0.8),
        beta=1.0,
        max_steps=3000,
        batch_size=128,
        lr=1e-3,
        trace_steps=(),
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
        self.K = check_int("K", K, minimum=1)
        if self.K > self.n_layers:
            raise ValueError(f"K must be <= n_layers = {self.n_layers} (the blocks it averages), got {K}")
        self.ema = _check_pair("ema", ema, low=0.0, high=1.0, closed=True)
        self.mask_level = check_int("mask_level", mask_level, minimum=0)
        if self.mask_level >= self.L:
            raise ValueError(f"mask_level must be < L = {self.L}, got {mask_level}")
        self.mask_rate = _check_pair("mask_rate", mask_rate, low=0.0, high=1.0, closed=False)
        self.beta = check_float("beta", beta, low=0.0)
        self.max_steps = check_int("max_steps", max_steps, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = check_float("lr", lr, low=0.0)
        if isinstance(trace_steps, (str, bytes)) or not hasattr(trace_steps, "__iter__"):
            raise TypeError(f"trace_steps must be a sequence of integers, got {trace_steps!r}")
        self.trace_steps = tuple(sorted({check_int("trace_steps", t, minimum=0) for t in trace_steps}))
        if self.trace_steps and self.trace_steps[-1] > self.max_steps:
            raise ValueError(f"trace_steps must be <= max_steps = {self.max_steps}, got {self.trace_steps[-1]}")
        self.device = resolve_device(device)
        self.threads = check_int("threads", threads, minimum=1)
        self.progress = bool(progress)

    def build(self) -> Data2VecNetwork:
        """The untrained network of this seed (on the CPU): the same initial weights as :meth:`fit` starts from."""
        with seeded(self.seed):
            encoder = Encoder(self.v, self.s**self.L, self.d_model, self.n_layers, self.n_heads)
            return Data2VecNetwork(encoder, self.d_model)

    def fit(self, tokens, labels=None) -> Data2Vec:
        """Train on ``tokens`` of shape ``(P, s**L)`` (``labels`` are ignored), then fit the readout."""
        tokens = self._check_tokens(tokens)
        with torch_threads(self.threads):
            x = as_long_tensor(tokens, self.device)
            network = self.build().to(self.device)
            rng = generator(self.seed)
            step = 0
            self.traces_ = {}

            def batch_loss(index: torch.Tensor) -> torch.Tensor:
                nonlocal step
                if step > 0:  # the teacher follows the student's weights after each step
                    network.update_teacher(ema_decay(step, self.max_steps, *self.ema))
                if step in self.trace_steps:
                    self.traces_[step] = copy.deepcopy(network).cpu()
                step += 1
                batch = x[index]
                mask = block_mask(len(index), self.s, self.L, self.mask_level, self.mask_rate, rng).to(self.device)
                return network.loss(batch, mask, self.K, self.beta)

            self.curve_ = train(
                network, batch_loss, x.shape[0], max_steps=self.max_steps, batch_size=self.batch_size,
                lr=self.lr, rng=rng, progress=self.progress, desc=type(self).__name__,
            )
            network.update_teacher(ema_decay(step, self.max_steps, *self.ema))
            if self.max_steps in self.trace_steps:
                self.traces_[self.max_steps] = copy.deepcopy(network).cpu()
            self.network_ = network
        return self
