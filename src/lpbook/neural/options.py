"""The options shared by the learners built on :class:`~lpbook.neural.encoder.Encoder`
(``MaskedTokenModel`` and ``Data2Vec``): one check each, so that both learners accept and
reject the same values with the same messages."""

from __future__ import annotations

import numbers

from .._validate import check_bool, check_int
from .readout import NeighbourReadout
from .training import check_float, resolve_device


#: The valid values, in words, of the options :func:`set_encoder_options` checks (see ``Learner.option_values``).
ENCODER_OPTION_VALUES = {
    "d_model": "an integer >= 1, a multiple of n_heads",
    "n_layers": "an integer >= 1",
    "n_heads": "an integer >= 1",
    "mask_range": "a pair [low, high] with 0 < low <= high < 1",
    "max_steps": "an integer >= 1",
    "batch_size": "an integer >= 1",
    "lr": "a number > 0",
    "val_fraction": "a number in (0, 1)",
    "n_init": "an integer >= 1",
    "candidates": "a list of names of lpbook.neural.readout.candidate_names",
    "device": "a torch device: 'cpu', 'cuda', 'cuda:N' or 'mps'",
    "threads": "an integer >= 1",
    "progress": "true or false",
}
#: The defaults, in words, of the options of :data:`ENCODER_OPTION_VALUES` whose signature default is ``None``.
ENCODER_COMPUTED_DEFAULTS = {"candidates": "every candidate"}


def check_pair(name: str, value, *, low: float, high: float, closed: bool) -> tuple[float, float]:
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


def set_encoder_options(learner, *, d_model, n_layers, n_heads, mask_range, max_steps, batch_size, lr,
                        val_fraction, n_init, candidates, device, threads, progress) -> None:
    """Check the shared options and set them as attributes of ``learner`` (which has ``v, s, L``).

    ``mask_range`` is the interval of the per-string fraction of hidden blocks, inside ``(0, 1)``.
    """
    learner.d_model = check_int("d_model", d_model, minimum=1)
    learner.n_layers = check_int("n_layers", n_layers, minimum=1)
    learner.n_heads = check_int("n_heads", n_heads, minimum=1)
    if learner.d_model % learner.n_heads:
        raise ValueError(f"d_model must be divisible by n_heads, got d_model={d_model}, n_heads={n_heads}")
    learner.mask_range = check_pair("mask_range", mask_range, low=0.0, high=1.0, closed=False)
    learner.max_steps = check_int("max_steps", max_steps, minimum=1)
    learner.batch_size = check_int("batch_size", batch_size, minimum=1)
    learner.lr = check_float("lr", lr, low=0.0)
    learner.val_fraction = check_float("val_fraction", val_fraction, low=0.0, high=1.0)
    learner.n_init = check_int("n_init", n_init, minimum=1)
    learner.candidates = None if candidates is None else tuple(candidates)
    NeighbourReadout(learner.v, learner.s, learner.L, candidates=learner.candidates)  # checks the option
    learner.device = resolve_device(device, check_available=False)  # checked where the data move, in fit
    learner.threads = check_int("threads", threads, minimum=1)
    learner.progress = check_bool("progress", progress)
