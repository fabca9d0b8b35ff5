"""data2vec on the RHM: a masked student regresses the representations of its own moving-average teacher.

Baevski et al. (arXiv:2202.03555). The backbone is the book's :class:`Encoder`,
the same as :class:`~lpbook.neural.masked.MaskedTokenModel`'s: the *target* is
the only difference between the two learners, which makes the pair the book's
controlled experiment on token-level against latent-level prediction.

One training step, for a batch of token strings ``x`` of shape ``(B, s**L)``:

1. draw a mask of whole blocks of ``s**mask_level`` tokens (:func:`block_mask`),
   with a masking rate drawn per string from ``mask_range``;
2. the *teacher* (:class:`Encoder`, an exponential moving average of the
   student) sees the full ``x``; the target at every position is the average of
   its top ``K`` block outputs, each normalised per token without parameters,
   the average normalised again (:func:`teacher_targets`), without gradient;
3. the *student* (:class:`Encoder` plus a linear regression head) sees ``x``
   with the masked tokens replaced by ``[MASK]``, and regresses the targets at
   the masked positions with a smooth-L1 loss;
4. after the optimiser's step (the ``on_step`` of :func:`~lpbook.neural.training.train`),
   the teacher moves toward the student:
   ``theta_T <- tau theta_T + (1 - tau) theta_S`` (:func:`ema_update`), with
   ``tau`` rising linearly from ``tau0`` to ``tau_end`` (:func:`ema_decay`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._validate import check_float, check_int, check_pair
from ..learners import register
from .base import EncoderLearner, Split
from .encoder import Encoder
from .masking import check_hidden_mask
from .readout import NeighbourReadout
from .training import LearningCurve, as_long_tensor, in_batches, seeded, torch_threads, train

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


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Layer normalisation over the last dimension, without learned parameters."""
    return F.layer_norm(x, x.shape[-1:])


def combine_top(states: list[torch.Tensor], K: int) -> torch.Tensor:
    """The average of the last ``K`` of ``states``, each normalised per token, normalised again; shape of one state."""
    return normalise(torch.stack([normalise(x) for x in states[-K:]]).mean(dim=0))


#: What the teacher reads: every token (data2vec's choice), or only the tokens hidden from the student (ours).
TEACHER_INPUTS = ("all", "hidden")


@torch.no_grad()
def teacher_targets(teacher: Encoder, tokens: torch.Tensor, K: int, hide: torch.Tensor | None = None) -> torch.Tensor:
    """data2vec's targets: shape ``(B, s**L, d_model)`` for int64 ``tokens`` of shape ``(B, s**L)``.

    :func:`combine_top` of the teacher's top ``K`` block outputs (layers
    ``n_layers - K + 1 .. n_layers``; the embedding, layer 0, never counts)
    on the full input, or with the positions of the bool ``hide`` (same
    shape) replaced by ``[MASK]``. No gradient flows.
    """
    return combine_top(teacher(tokens, hide), K)


class Data2VecNetwork(nn.Module):
    """A student (:class:`Encoder` plus a linear regression head) and its EMA teacher.

    The teacher is a deep copy of the student's encoder at initialisation,
    with gradients off; only :meth:`update_teacher` changes it.
    ``forward(tokens, mask)`` returns the student's predictions, shape
    ``(B, s**L, d_model)``, for int64 ``tokens`` and a bool ``mask`` of shape
    ``(B, s**L)``. :meth:`states` and :meth:`output` make the student readable
    by :class:`~lpbook.neural.readout.NeighbourReadout`; :class:`TeacherView`
    does the same for the teacher.
    """

    def __init__(self, encoder: Encoder, d_model: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(d_model, d_model)
        self.teacher = copy.deepcopy(encoder).requires_grad_(False)

    def states(self, tokens: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """The student's hidden states, ``n_layers + 1`` tensors of shape ``(B, s**L, d_model)``."""
        return self.encoder(tokens, mask)

    def output(self, states: list[torch.Tensor]) -> torch.Tensor:
        """The student's regression prediction from its states, shape ``(B, s**L, d_model)``."""
        return self.head(states[-1])

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.states(tokens, mask))

    def loss(self, tokens: torch.Tensor, mask: torch.Tensor, K: int, beta: float, teacher_input: str = "all") -> torch.Tensor:
        """Smooth-L1 regression of the teacher's targets at the masked positions, averaged over them and ``d_model``.

        The teacher reads every token (``teacher_input="all"``) or only the
        masked ones (``"hidden"``: the tokens the student sees are hidden from
        it). A batch without masked positions contributes 0.
        """
        targets = teacher_targets(self.teacher, tokens, K, None if teacher_input == "all" else ~mask)
        predictions = self(tokens, mask)
        total = F.smooth_l1_loss(predictions[mask], targets[mask], beta=beta, reduction="sum")
        return total / (mask.sum() * targets.shape[-1]).clamp(min=1)

    def update_teacher(self, tau: float) -> None:
        """One EMA step of the teacher toward the student's encoder, decay ``tau``."""
        ema_update(self.teacher, self.encoder, tau)


class TeacherView(nn.Module):
    """The teacher of a :class:`Data2VecNetwork`, readable by :class:`~lpbook.neural.readout.NeighbourReadout`.

    ``states(tokens, mask)`` are the teacher's hidden states on the masked
    input (during training the teacher only ever sees full inputs; the readout
    shows it a node alone), and ``output(states)`` is what it would give as a
    target there, :func:`combine_top` of its top ``K`` blocks.
    """

    def __init__(self, network: Data2VecNetwork, K: int):
        super().__init__()
        self.teacher = network.teacher
        self.K = K

    def states(self, tokens: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        return self.teacher(tokens, mask)

    def output(self, states: list[torch.Tensor]) -> torch.Tensor:
        return combine_top(states, self.K)


class TokenHead(nn.Module):
    """The token probe: a LayerNorm, one hidden layer of ``4 * d_model`` GELU units, and ``v`` token logits.

    OUR choice of a small MLP rather than a linear map: the student predicts
    (normalised) teacher representations, and the Bayes posterior of a hidden
    token is a non-linear function of them (a mixture over the parent's
    productions), which a linear softmax cannot express. In our runs a linear
    probe stopped far above the Bayes floor on students whose predictions an
    MLP probe showed to be close to it. Features ``(..., d_model)`` give logits ``(..., v)``.
    """

    def __init__(self, d_model: int, v: int):
        super().__init__()
        self.layers = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                    nn.Linear(4 * d_model, v))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


@register("data2vec")
class Data2Vec(EncoderLearner):
    """data2vec: a masked student regresses its EMA teacher's representations; latents read by the shared readout.

    The training recipe follows data2vec (Baevski et al. 2022) in its parts
    (EMA teacher, top-``K`` normalised targets, smooth-L1 at masked positions);
    the values, the block masking and the sizes are OUR choices (the paper's
    are not public), listed in the table of Chapter 5.

    - **Backbone:** :class:`Encoder` with the options of every encoder learner
      (:class:`~lpbook.neural.base.EncoderLearner`), plus a linear
      regression head on the student.
    - **Masking:** whole blocks of ``s**mask_level`` tokens (``mask_level=1``:
      ``s``-tuples, the default, as for :class:`~lpbook.neural.masked.MaskedTokenModel`;
      0: single tokens; higher: subtrees), at a rate drawn per string uniformly
      in ``mask_range`` (:func:`~lpbook.neural.masking.block_mask`), so that
      strings with a single visible node are seen in training.
    - **Teacher:** the EMA of the student's encoder, decay rising linearly from
      ``ema[0]`` to ``ema[1]`` over ``max_steps``; after each optimiser step
      the teacher moves toward the student's new weights.
    - **Targets:** :func:`teacher_targets` with ``K`` blocks, no gradient, on
      the full string (``teacher_input="all"``, data2vec's choice) or on the
      tokens hidden from the student only (``"hidden"``, OUR variant: then the
      targets cannot carry the tokens the student sees, see Chapter 5).
    - **Defaults:** the recipe that Chapter 5's search found to converge at
      ``v = 16, m = 3, L = 3`` with ``P = 16,000`` strings (token probe within
      :data:`lpbook.bp.CONVERGED_EXCESS` of the Bayes floor on two grammars,
      every level read at 0.9 or more on one of them): the encoder learners'
      defaults (width 32, three blocks, cosine schedule at ``lr = 3e-3``,
      30,000 steps), targets averaged over every block (``K = n_layers``), the
      teacher reading the hidden tokens only, mask rates in ``(0.4, 0.95)``
      and a probe of 6,000 steps. This differs
      from data2vec's own choices (its teacher reads every token); pass
      ``teacher_input="all"`` for those. On one core a fit costs about 6
      minutes (a step about 10 ms, plus the probe). On a grammar that no
      chapter uses, ``benchmarks/bench_defaults.py`` finds it just above the
      criterion at ``P = 16,000``: the recipe is the best the search found,
      not one that converges everywhere.
    - **Training:** Adam at ``lr`` for ``max_steps`` steps on all but a
      validation split of ``val_fraction`` of the strings. data2vec's loss
      has a moving target, so its value is no convergence criterion and there
      is no early stopping on it; ``curve_`` records the training loss.
    - **Token probe:** data2vec never predicts tokens, so its distance to the
      Bayes-optimal masked-token loss cannot be read off its own loss. After
      training, a :class:`TokenHead` (a small MLP) is trained on the *frozen* student's
      predictions at masked positions (cross-entropy against the hidden
      tokens, early stopping on the validation split and its fixed masks);
      :meth:`masked_token_loss` is that probe's loss, an upper bound on what
      the student's predictions say about the hidden tokens. It always runs
      at the constant ``lr``.
    - **Readout:** :class:`~lpbook.neural.readout.NeighbourReadout` on the
      student (``read="student"``) or the teacher (``read="teacher"``), fitted
      on the training split, its candidate chosen on the validation split
      without labels; ``transform`` returns its codes for levels ``1..L-1``.

    Parameters
    ----------
    v, s, L, seed, d_model, n_layers, n_heads, max_steps, batch_size, lr, schedule, warmup, val_fraction,
    n_init, candidates, device, threads, progress
        As for every encoder learner (:class:`~lpbook.neural.base.EncoderLearner`).
    K : int, optional
        Teacher blocks averaged into the target, ``1 <= K <= n_layers`` (default: ``n_layers``).
    teacher_input : "all" or "hidden"
        What the teacher reads: every token (data2vec's choice), or only the
        tokens hidden from the student (default).
    mask_range : pair of floats (low, high) in (0, 1), low <= high
        The range of per-string mask rates (default ``(0.4, 0.95)``).
    ema : (float, float)
        Teacher decay at the first and the last step, each in ``[0, 1]`` (default ``(0.99, 0.999)``).
    mask_level : int
        Masked blocks span ``s**mask_level`` tokens, ``0 <= mask_level < L`` (default 1).
    beta : float
        Smooth-L1 threshold, ``> 0`` (default 1).
    probe_steps : int
        Step budget of the token probe (default 6000; 0: no probe).
    read : "student" or "teacher"
        The network ``transform`` reads (default ``"student"``).

    Attributes (after ``fit``)
    --------------------------
    network_ : Data2VecNetwork
    curve_ : LearningCurve, the smooth-L1 training loss against steps.
    token_head_, probe_curve_ : the token probe and its learning curve (``None`` without a probe).
    readout_ : NeighbourReadout of the network named by ``read``.

    Copies of the network along the training, and their readouts: pass
    :class:`~lpbook.neural.snapshots.Snapshots` to ``fit`` as ``on_step``.
    """

    option_values = {
        "K": "an integer in [1, n_layers]",
        "teacher_input": "one of " + ", ".join(map(repr, TEACHER_INPUTS)),
        "ema": "a pair [first, last] in [0, 1]",
        "mask_level": "an integer in [0, L)",
        "beta": "a number > 0",
        "probe_steps": "an integer >= 0 (0: no token probe)",
        "read": "one of 'student', 'teacher'",
    }
    retired_params = frozenset({"trace_steps"})  # saved files name it; it kept copies and changed no fit
    #: Before ``teacher_input`` was an option, the teacher read every token.
    introduced_params = {**EncoderLearner.introduced_params, "teacher_input": "all"}
    #: Parts of a saved state that this class ignores on load (copies along the training, the fit's strings).
    _RETIRED_STATE = ("traces_", "train_tokens_", "val_tokens_")

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        return {**super().computed_defaults(), "K": "n_layers"}

    def __init__(self, v, s, L, seed=0, K=None, teacher_input="hidden", ema=(0.99, 0.999), mask_level=1, beta=1.0,
                 probe_steps=6000, read="student", mask_range=(0.4, 0.95), **options):
        super().__init__(v, s, L, seed, mask_range=mask_range, **options)
        self.K = self.n_layers if K is None else check_int("K", K, minimum=1)
        if self.K > self.n_layers:
            raise ValueError(f"K must be <= n_layers = {self.n_layers} (the blocks it averages), got {K}")
        if teacher_input not in TEACHER_INPUTS:
            raise ValueError(f"teacher_input must be one of {', '.join(map(repr, TEACHER_INPUTS))}, got {teacher_input!r}")
        self.teacher_input = teacher_input
        self.ema = check_pair("ema", ema, low=0.0, high=1.0, closed=True)
        self.mask_level = check_int("mask_level", mask_level, minimum=0)
        if self.mask_level >= self.L:
            raise ValueError(f"mask_level must be < L = {self.L}, got {mask_level}")
        self.beta = check_float("beta", beta, low=0.0)
        self.probe_steps = check_int("probe_steps", probe_steps, minimum=0)
        if read not in ("student", "teacher"):
            raise ValueError(f"read must be 'student' or 'teacher', got {read!r}")
        self.read = read

    # ------------------------------------------------------------- fitting
    def build(self) -> Data2VecNetwork:
        """The untrained network of this seed, on the CPU: the weights :meth:`fit` starts from."""
        with seeded(self.seed):
            return Data2VecNetwork(self._encoder(), self.d_model)

    def _build_networks(self) -> dict[str, nn.Module]:
        """The untrained networks (on the CPU) under the attributes that hold them: ``network_``, and ``token_head_`` with a probe."""
        networks = super()._build_networks()
        if self.probe_steps:
            networks["token_head_"] = self._token_head()
        return networks

    def _token_head(self) -> TokenHead:
        with seeded(self.seed):
            return TokenHead(self.d_model, self.v)

    def _restore_state(self, state: dict) -> None:
        """The default restore, ignoring the parts of :attr:`_RETIRED_STATE` that a saved file may hold."""
        super()._restore_state({name: value for name, value in state.items() if name not in self._RETIRED_STATE})

    def _train(self, network: Data2VecNetwork, split: Split, rng, on_step=None, checkpoint=None) -> LearningCurve:
        """The student's regression of the teacher's targets for ``max_steps`` steps, the teacher following it
        after each step (then ``on_step`` sees both); then the token probe."""
        x = split.train

        def batch_loss(index: torch.Tensor) -> torch.Tensor:
            mask = self._mask(len(index), rng).to(self.device)
            return network.loss(x[index], mask, self.K, self.beta, self.teacher_input)

        def after_step(step: int, model: Data2VecNetwork) -> None:
            if step > 0:
                model.update_teacher(ema_decay(step, self.max_steps, *self.ema))
            if on_step is not None:
                on_step(step, model)

        curve = train(
            network, batch_loss, x.shape[0], max_steps=self.max_steps, batch_size=self.batch_size,
            lr=self.lr, schedule=self.schedule, warmup=self.warmup, rng=rng, progress=self.progress,
            desc=type(self).__name__, on_step=after_step, checkpoint=checkpoint,
        )
        network.requires_grad_(False).eval()
        self.token_head_, self.probe_curve_ = self._fit_token_head(network, split, rng) if self.probe_steps else (None, None)
        return curve

    def _fit_token_head(self, network: Data2VecNetwork, split: Split, rng: torch.Generator):
        """Train the token probe on the frozen student's predictions, with early stopping on the validation split."""
        head = self._token_head().to(self.device)

        def probe_loss(batch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                features = network(batch, mask)
            total = F.cross_entropy(head(features)[mask], batch[mask], reduction="sum")
            return total / mask.sum().clamp(min=1)

        def val_loss() -> float:
            with torch.no_grad():
                return probe_loss(split.val, split.val_mask).item()

        curve = train(
            head, lambda index: probe_loss(split.train[index], self._mask(len(index), rng).to(self.device)),
            split.train.shape[0], max_steps=self.probe_steps, batch_size=self.batch_size, lr=self.lr, rng=rng,
            eval_every=max(self.probe_steps // 20, 1), val_loss=val_loss, patience=4,
            progress=self.progress, desc="token probe",
        )
        head.requires_grad_(False).eval()
        return head, curve

    # ------------------------------------------------------------- reading
    def _readable(self, network: Data2VecNetwork, which: str | None = None) -> nn.Module:
        """The student (``network`` itself) or the teacher (:class:`TeacherView`); ``which`` defaults to ``read``."""
        if (which or self.read) not in ("student", "teacher"):
            raise ValueError(f"which must be 'student' or 'teacher', got {which!r}")
        return network if (which or self.read) == "student" else TeacherView(network, self.K)

    def targets(self, tokens, mask) -> np.ndarray:
        """The trained teacher's targets for ``tokens`` (P, s**L) shown to the student with the bool ``mask`` (same shape, ``True`` = hidden).

        What the student regresses at the masked positions
        (:func:`teacher_targets` with this learner's ``K`` and
        ``teacher_input``: the mask matters only for ``"hidden"``), as a
        float32 array ``(P, s**L, d_model)``, computed without gradient.
        """
        self._check_fitted("network_")
        tokens = self._check_tokens(tokens)
        mask = check_hidden_mask(mask, tokens.shape)
        with torch_threads(self.threads):
            x = as_long_tensor(tokens, self.device)
            hide = None if self.teacher_input == "all" else ~torch.as_tensor(mask, device=self.device)
            return in_batches(
                lambda rows: teacher_targets(self.network_.teacher, x[rows], self.K, None if hide is None else hide[rows]),
                torch.arange(len(x))).numpy()

    def masked_token_loss(self, tokens, mask) -> float:
        """The token probe's cross-entropy in nats per hidden token, for ``tokens`` and a bool ``mask`` of shape ``(P, s**L)``.

        Compare it with :func:`lpbook.bp.bayes_masked_token_loss` on the same
        tokens and mask: the difference is the excess loss of the probe on the
        student's predictions.
        """
        self._check_fitted("network_")
        if self.token_head_ is None:
            raise RuntimeError("this Data2Vec was fitted with probe_steps=0: it has no token probe")
        tokens = self._check_tokens(tokens)
        mask = check_hidden_mask(mask, tokens.shape)
        with torch_threads(self.threads):
            x = as_long_tensor(tokens, self.device)
            m = torch.as_tensor(mask, device=self.device)
            logits = in_batches(lambda rows: self.token_head_(self.network_(x[rows], m[rows])), torch.arange(len(x)))
        hidden = m.cpu()
        return float(F.cross_entropy(logits[hidden], x.cpu()[hidden], reduction="mean"))
