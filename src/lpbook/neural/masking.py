"""The masks of the book's masked learners: whole blocks hidden at a per-string rate, and the check of a given mask.

:class:`~lpbook.neural.masked.MaskedTokenModel` and
:class:`~lpbook.neural.data2vec.Data2Vec` draw their training, validation and
test masks with :func:`block_mask`, so that with the same seed and options the
two learners see the same masks, draw for draw; their ``masked_token_loss``
checks its mask with :func:`check_hidden_mask`.
"""

from __future__ import annotations

import numpy as np
import torch


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


def check_hidden_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a bool array of ``shape`` (the tokens') that hides at least one token, or ``ValueError``."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != tuple(shape):
        raise ValueError(f"mask must be a bool array of the tokens' shape {tuple(shape)}, got {mask.dtype} {mask.shape}")
    if not mask.any():
        raise ValueError("mask must hide at least one token")
    return mask
