"""What the neural learners share: runtime options, devices, seeding, the training loop.

Determinism. A learner with seed ``seed`` initialises its network from
``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng` (see
:func:`seeded`), so the caller's global random state is left untouched, and
draws its batches (and masks) from its own ``torch.Generator`` seeded with
``seed`` (see :func:`generator`). Networks are built on the CPU and then moved
to the device, so their initial weights do not depend on the device.

Training. :func:`train` is the loop of the encoder learners (the network and
the token probe of :class:`~lpbook.neural.data2vec.Data2Vec`, and
:class:`~lpbook.neural.masked.MaskedTokenModel`) and of
:class:`~lpbook.neural.cnn.SupervisedCNN`: Adam on minibatches, a validation
loss evaluated every ``eval_every`` steps, early stopping with a patience, a
step budget, and the learning curve (:class:`LearningCurve`) that the learner
keeps as ``curve_``. :class:`~lpbook.neural.slc.SLC` trains its stack stage by
stage in a loop of its own, and records a :class:`LearningCurve` too. A
learner holds out its validation rows with :func:`split_validation`. Its
``on_step`` callback sees the model after every step: what a chapter
watches along the way (copies at chosen steps) is passed in there, not made
an option of a learner. A :class:`Checkpoint` keeps the loop's whole state
at every evaluation, so that a fit killed on the way resumes where it was and
ends with the bytes an uninterrupted fit ends with.

Runtime options. Every neural learner takes ``device``, ``threads`` (default
1; it trains and infers inside :func:`torch_threads`) and ``progress``
(:data:`RUNTIME_PARAMS`, checked by :func:`check_runtime`): they say how a fit
runs, not what it computes, so they are no part of a result's identity.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from scipy.stats import linregress

from .._progress import finish, progress_bar
from .._validate import check_bool, check_int

#: The runtime parameters of every neural learner (see ``Learner.runtime_params``): where and with how many
#: threads it trains, and whether it shows a bar. None of them changes what a fit computes on the CPU.
RUNTIME_PARAMS = frozenset({"device", "threads", "progress"})
#: Their valid values, in words (see ``Learner.option_values``).
RUNTIME_OPTION_VALUES = {
    "device": "a torch device: 'cpu', 'cuda', 'cuda:N' or 'mps'",
    "threads": "an integer >= 1",
    "progress": "true or false",
}


def resolve_device(device, *, check_available: bool = True) -> torch.device:
    """``device`` (a string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or a ``torch.device``) checked.

    Raises ``TypeError`` for other types and ``ValueError`` for a string torch
    does not parse, a device type other than cpu, cuda and mps, or (unless
    ``check_available`` is false) a device this machine does not have. The
    learners check only the form when they are built, since a sweep builds
    each learner once on its client, which may have no GPU while its workers
    do; :func:`as_long_tensor` checks availability where the data move.
    """
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or a torch.device, got {type(device).__name__}")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from error
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be a cpu, cuda or mps device, got {str(device)!r}")
    if not check_available:
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r} is not available: torch sees no CUDA device here")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r} is not available: torch sees {count} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} is not available on this machine")
    return device


def check_runtime(device, threads, progress) -> tuple[torch.device, int, bool]:
    """The runtime options of a neural learner checked: ``device`` in form only (:func:`resolve_device`
    without ``check_available``; whether it exists is checked where the data move), ``threads >= 1``
    and ``progress`` a bool."""
    return (resolve_device(device, check_available=False), check_int("threads", threads, minimum=1),
            check_bool("progress", progress))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded by ``seed``, restoring the global state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` of its own, seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def as_long_tensor(tokens: np.ndarray, device: torch.device) -> torch.Tensor:
    """Checked integer tokens of shape ``(P, n)`` as an int64 tensor on ``device`` (checked to exist here)."""
    device = resolve_device(device)
    return torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=device)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``threads``, restoring it after.

    The book's networks are small: on one core a fit runs about ten times
    faster with one thread than with torch's default of one per core when
    other processes compete for the cores, so every neural learner takes a
    ``threads`` option (default 1) and trains and infers inside this block.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def split_validation(n_samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` of a random split of ``range(n_samples)``, both sorted int64.

    The validation part holds ``round(fraction * n_samples)`` rows, at least 1
    and at most ``n_samples - 1``; it is drawn with ``numpy``'s generator
    seeded by ``seed``. Raises ``ValueError`` when ``n_samples < 2``.
    """
    if n_samples < 2:
        raise ValueError(f"tokens must hold at least 2 samples to hold out a validation split, got {n_samples}")
    n_val = min(max(int(round(fraction * n_samples)), 1), n_samples - 1)
    order = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class LearningCurve:
    """What :func:`train` records: one entry per evaluation.

    Attributes
    ----------
    steps : list[int]
        Optimiser steps done at each evaluation.
    train_loss : list[float]
        Mean training loss of the minibatches since the previous evaluation
        (weighted by batch size).
    val_loss : list[float]
        Validation loss at each evaluation (empty without a validation loss).
    best_step : int
        The step whose weights the model holds at the end: the lowest
        validation loss (the last step without a validation loss).
    stopped : str
        Why training ended: ``"patience"`` (validation loss stopped
        improving), ``"target"`` (training loss below ``stop_below``) or
        ``"budget"`` (``max_steps`` reached).
    seconds : list[float]
        CPU seconds of this process (``time.process_time``) spent in the loop
        up to each evaluation, evaluations included. A measurement, so it is
        left out of comparisons of curves (``==``).
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_step: int = 0
    stopped: str = "budget"
    seconds: list[float] = field(default_factory=list, compare=False)

    def get_state(self) -> dict:
        """The curve as lists, values and arrays, for :meth:`from_state` (used by ``Learner.save``)."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> LearningCurve:
        """The curve that :meth:`get_state` described.

        Keys that are not fields of the curve are left out, so that files whose
        curve carries more keys load: the committed networks' files hold
        ``loss``, ``balance`` and ``assignments`` (each ``None``), per-module
        records that SLC hands to a callback instead (:class:`lpbook.neural.slc.Record`).
        """
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in state.items() if key in names})

    @property
    def best_val_loss(self) -> float:
        """The lowest validation loss (``nan`` without a validation loss)."""
        return min(self.val_loss) if self.val_loss else float("nan")

    def trend(self, loss: str = "train", last: int = 20) -> tuple[float, float]:
        """The least-squares slope of ``loss`` (``"train"`` or ``"val"``) against the steps over the ``last``
        evaluations, in nats per step, and the half-width of its 95% interval (normal, from the fit's standard
        error): whether a loss was still falling when training stopped."""
        if loss not in ("train", "val"):
            raise ValueError(f"loss must be 'train' or 'val', got {loss!r}")
        check_int("last", last, minimum=3)
        values = self.train_loss if loss == "train" else self.val_loss
        if len(values) < last:
            raise ValueError(f"last must be at most the {len(values)} evaluations of the curve, got {last}")
        fitted = linregress(self.steps[-last:], values[-last:])
        return float(fitted.slope), float(1.96 * fitted.stderr)


#: The learning-rate schedules of :func:`train`.
SCHEDULES = ("constant", "cosine")


def learning_rate_factor(step: int, max_steps: int, schedule: str, warmup: int) -> float:
    """The factor of the learning rate at optimiser step ``step`` (0-based) of ``max_steps``.

    ``(step + 1) / warmup`` during the first ``warmup`` steps; after them 1
    (``"constant"``), or ``(1 + cos(pi t)) / 2`` with ``t`` the fraction of
    the steps after the warmup that are done (``"cosine"``: 1 at the end of
    the warmup, 0 at ``max_steps``).
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    done = (step - warmup) / max(max_steps - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


def check_schedule(schedule, warmup, max_steps: int) -> tuple[str, int]:
    """``(schedule, warmup)`` checked: ``schedule`` one of :data:`SCHEDULES`, ``0 <= warmup < max_steps``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")
    warmup = check_int("warmup", warmup, minimum=0)
    if warmup >= max_steps:
        raise ValueError(f"warmup must be < max_steps = {max_steps}, got {warmup}")
    return schedule, warmup


@dataclass(frozen=True)
class Checkpoint:
    """Where :func:`train` keeps its state, and what it must belong to.

    ``path`` is a file (written atomically at every evaluation); ``identity``
    a mapping of plain values (numbers, strings, lists, dicts) that names the
    fit, e.g. a learner's options and a digest of its training strings. A
    checkpoint whose identity differs is refused (``ValueError``), never
    resumed. The file holds the model's and the optimiser's state, the
    generator's, the epoch's order and the learning curve so far: what the
    loop needs to go on as if it had not stopped. :func:`train` leaves it in
    place when it ends (marked done); the caller deletes the file once its
    result is saved.
    """

    path: Path
    identity: Mapping

    def __post_init__(self):
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"checkpoint path must be a str or a path, got {type(self.path).__name__}")
        if not isinstance(self.identity, Mapping):
            raise TypeError(f"checkpoint identity must be a mapping, got {type(self.identity).__name__}")
        object.__setattr__(self, "path", Path(self.path))

    def load(self) -> dict | None:
        """The state saved here (``None`` without a file); ``ValueError`` if it belongs to another fit."""
        if not self.path.is_file():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("identity") != dict(self.identity):
            raise ValueError(f"checkpoint {str(self.path)!r} belongs to another fit (its identity differs from "
                             f"this one's): delete it to train this fit from the start")
        return state

    def save(self, state: dict) -> None:
        """Write ``state`` with this checkpoint's identity, atomically (a temporary file, then a rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        torch.save({**state, "identity": dict(self.identity)}, partial)
        os.replace(partial, self.path)


def train(
    model: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int,
    *,
    max_steps: int,
    batch_size: int,
    lr: float,
    rng: torch.Generator,
    eval_every: int | None = None,
    val_loss: Callable[[], float] | None = None,
    patience: int = 5,
    min_delta: float = 0.0,
    stop_below: float = 0.0,
    schedule: str = "constant",
    warmup: int = 0,
    progress: bool = False,
    desc: str = "train",
    on_step: Callable[[int, torch.nn.Module], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> LearningCurve:
    """Train ``model`` with Adam until the validation loss stops improving, or ``max_steps`` run out.

    The training loop of the encoder learners and of the CNN (SLC has its own, see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        Its parameters are optimised; it is put in ``train()`` mode for the
        steps and ``eval()`` mode for evaluations and at the end.
    batch_loss : callable
        ``batch_loss(index)`` gets the int64 indices of one minibatch of the
        training set, shape ``(B,)`` with ``B <= batch_size``, and returns the
        scalar loss of that batch. Epochs visit the ``n_samples`` training
        rows once each, in an order drawn from ``rng``.
    max_steps : int
        The step budget.
    batch_size, lr
        Minibatch size and Adam learning rate.
    rng : torch.Generator
        Draws the batch order (``batch_loss`` may draw its masks from it too).
    eval_every : int, optional
        Steps between evaluations (default: one epoch, ``ceil(n_samples / batch_size)``).
    val_loss : callable, optional
        ``val_loss()`` returns the validation loss as a float (computed
        without gradients, deterministically, e.g. with masks fixed in
        advance). With it, training stops once the validation loss has not
        improved by more than ``min_delta`` for ``patience`` evaluations in a
        row, and the model ends with the weights of its best evaluation.
    stop_below : float
        Stop once the mean training loss since the last evaluation is below
        this (default 0: never).
    schedule, warmup
        The learning rate at each step (:func:`learning_rate_factor`): ``lr``
        times a linear ramp over the first ``warmup`` steps, then constant
        (``"constant"``, the default) or decaying to 0 along a half cosine at
        ``max_steps`` (``"cosine"``).
    progress, desc
        A tqdm bar over steps, labelled ``desc``; it stays on screen and ends at the steps taken
        (``max_steps``, or fewer when training stops early).
    on_step : callable, optional
        ``on_step(step, model)`` is called once before the first step with
        ``step = 0``, then after every optimiser step (and its learning-rate
        step) with the number of steps done, before any evaluation. A learner
        uses it for what follows each step (data2vec's teacher), a reader to
        look at the model along the way (:class:`lpbook.neural.snapshots.Snapshots`);
        it must not change what the loop draws from ``rng``. A resumed run
        calls it for the steps it runs only (not for step 0).
    checkpoint : Checkpoint, optional
        Save the loop's state there at every evaluation and at the end, and,
        if it holds a state already, go on from it: the same weights, curve
        and generator state as a run that was never stopped (the curve's
        ``seconds`` go on from the saved ones). The model and its optimiser
        must be built as for the first run. A state saved at the end returns
        at once.

    Returns
    -------
    LearningCurve
    """
    steps_per_epoch = -(-n_samples // batch_size)
    eval_every = steps_per_epoch if eval_every is None else eval_every
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = None
    if schedule != "constant" or warmup:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: learning_rate_factor(step, max_steps, schedule, warmup)
        )
    curve = LearningCurve()
    best_state, best, waited = None, float("inf"), 0
    total, count, step = 0.0, 0, 0
    order, position, done, spent = None, 0, False, 0.0  # the epoch's order and its batches done; seconds before
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        rng.set_state(saved["rng"])
        curve = LearningCurve.from_state(saved["curve"])
        best_state, best, waited, step = saved["best_state"], saved["best"], saved["waited"], saved["step"]
        order, position, done = saved["order"], saved["position"], saved["done"]
        spent = curve.seconds[-1] if curve.seconds else 0.0

    def save(done: bool) -> None:
        checkpoint.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None, "rng": rng.get_state(),
            "curve": curve.get_state(), "best_state": best_state, "best": best, "waited": waited, "step": step,
            "order": order, "position": position, "done": done})

    if done:
        model.eval()
        return curve
    bar = progress_bar(max_steps, desc, progress)
    bar.update(step)
    start = time.process_time() - spent
    model.train()
    if on_step is not None and saved is None:
        on_step(0, model)
    while curve.stopped == "budget" and step < max_steps:
        if order is None:
            order, position = torch.randperm(n_samples, generator=rng), 0
        for index in order.split(batch_size)[position:]:
            position += 1
            loss = batch_loss(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total, count, step = total + loss.item() * len(index), count + len(index), step + 1
            if on_step is not None:
                on_step(step, model)
            bar.update()
            if step % eval_every and step < max_steps:
                continue
            curve.steps.append(step)
            curve.train_loss.append(total / count)
            total, count = 0.0, 0
            if val_loss is not None:
                model.eval()
                curve.val_loss.append(float(val_loss()))
                model.train()
                if curve.val_loss[-1] < best - min_delta:
                    best, waited, curve.best_step = curve.val_loss[-1], 0, step
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    waited += 1
                bar.set_postfix(train=f"{curve.train_loss[-1]:.4f}", val=f"{curve.val_loss[-1]:.4f}")
                if waited >= patience:
                    curve.stopped = "patience"
            else:
                curve.best_step = step
                bar.set_postfix(train=f"{curve.train_loss[-1]:.4f}")
            curve.seconds.append(time.process_time() - start)
            if curve.train_loss[-1] < stop_below:
                curve.stopped = "target"
            if curve.stopped != "budget" or step >= max_steps:
                break
            if checkpoint is not None:
                save(done=False)
        else:
            order = None  # the epoch is done: the next one draws its order
    finish(bar)  # a run that stopped early ends its bar at the steps it took
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if checkpoint is not None:
        save(done=True)
    return curve


#: Rows per forward pass at inference (no gradients, so far larger than a training batch).
INFERENCE_BATCH = 4096


@torch.no_grad()
def in_batches(function: Callable[[torch.Tensor], torch.Tensor], tokens: torch.Tensor):
    """``function`` applied to ``tokens`` of shape ``(P, n)`` in batches of :data:`INFERENCE_BATCH` rows, without gradients.

    ``function`` returns a tensor, or a list of tensors, with ``B`` rows for a
    batch of ``B``; the batches are concatenated along rows and moved to the CPU.
    """
    outputs = [function(batch) for batch in tokens.split(INFERENCE_BATCH)]
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs).cpu()
    return [torch.cat(parts).cpu() for parts in zip(*outputs)]
