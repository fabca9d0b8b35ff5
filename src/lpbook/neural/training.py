"""What every neural learner shares: option checks, devices, seeding, the training loop.

Determinism. A learner with seed ``seed`` initialises its network from
``torch.manual_seed(seed)`` inside :func:`torch.random.fork_rng` (see
:func:`seeded`), so the caller's global random state is left untouched, and
draws its batches (and masks) from its own ``torch.Generator`` seeded with
``seed`` (see :func:`generator`). Networks are built on the CPU and then moved
to the device, so their initial weights do not depend on the device.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm



def check_float(name: str, value, *, low: float, high: float = float("inf"), closed: bool = False) -> float:
    """Return ``value`` as a float in the open interval ``(low, high)`` (``[low, high)`` if ``closed``), or raise.

    Non-real values (booleans included) raise ``TypeError``, values outside the
    interval ``ValueError``; both messages name the option.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    above = value >= low if closed else value > low
    if not (above and value < high):
        interval = f"{'[' if closed else '('}{low}, {high})"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


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


def train(
    model: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: torch.Generator,
    progress: bool,
    desc: str,
    stop_below: float = 0.0,
) -> list[float]:
    """Train ``model``'s parameters with Adam on minibatches; return the mean loss of each epoch.

    Each epoch visits the ``n_samples`` training samples once, in an order
    drawn from ``rng``; ``batch_loss(index)`` gets the int64 indices of one
    batch, shape ``(B,)`` with ``B <= batch_size``, and returns the scalar
    loss of that batch. Training stops after ``epochs`` epochs, or as soon as
    an epoch's mean loss falls below ``stop_below``. ``progress`` shows a tqdm
    bar over epochs, labelled ``desc``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses: list[float] = []
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(n_samples, generator=rng)
        total = 0.0
        for index in order.split(batch_size):
            loss = batch_loss(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        losses.append(total / n_samples)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if losses[-1] < stop_below:
            break
    bar.close()
    model.eval()
    return losses


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
