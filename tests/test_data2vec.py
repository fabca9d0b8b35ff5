"""Tests of lpbook.neural.data2vec: the EMA teacher, the targets, the masks, the learner."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lpbook  # noqa: E402
from lpbook import RHM  # noqa: E402
from lpbook.learners import REGISTRY  # noqa: E402
from lpbook.neural import Encoder  # noqa: E402
from lpbook.neural.data2vec import (  # noqa: E402
    Data2Vec,
    Data2VecNetwork,
    block_mask,
    ema_decay,
    ema_update,
    normalise,
    teacher_targets,
)

FAST = dict(d_model=8, n_heads=2, n_layers=2, max_steps=6, batch_size=32, progress=False)


def network(seed=0, d_model=8, n_layers=3) -> Data2VecNetwork:
    torch.manual_seed(seed)
    return Data2VecNetwork(Encoder(4, 8, d_model, n_layers, 2), d_model)


def test_registered_and_importable_from_the_top():
    assert REGISTRY["data2vec"] is Data2Vec and not Data2Vec.uses_labels
    assert lpbook.Data2Vec is Data2Vec


# ------------------------------------------------------------------ the teacher
@pytest.mark.parametrize("tau", [0.0, 0.3, 0.99, 1.0])
def test_ema_moves_the_teacher_by_exactly_one_minus_tau(tau):
    net = network()
    with torch.no_grad():  # make student and teacher differ
        for p in net.encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [t.clone() for t in net.teacher.parameters()]
    student = [p.clone() for p in net.encoder.parameters()]
    net.update_teacher(tau)
    for t0, s, t1 in zip(before, student, net.teacher.parameters(), strict=True):
        torch.testing.assert_close(t1 - t0, (1 - tau) * (s - t0), rtol=1e-6, atol=1e-6)
    for p, s in zip(net.encoder.parameters(), student):  # the student is untouched
        assert torch.equal(p, s)


def test_ema_update_needs_matching_modules():
    with pytest.raises(ValueError):
        ema_update(network(n_layers=2).teacher, network(n_layers=3).encoder, 0.5)


def test_ema_decay_schedule_is_linear_from_first_to_last():
    assert ema_decay(0, 101, 0.9, 0.99) == 0.9
    assert ema_decay(100, 101, 0.9, 0.99) == pytest.approx(0.99)
    assert ema_decay(50, 101, 0.9, 0.99) == pytest.approx(0.945)
    assert ema_decay(500, 101, 0.9, 0.99) == pytest.approx(0.99)  # past the budget: the last value
    assert ema_decay(0, 1, 0.9, 0.99) == 0.99


def test_the_teacher_starts_as_the_student_and_gets_no_gradient():
    net = network()
    for t, s in zip(net.teacher.parameters(), net.encoder.parameters()):
        assert torch.equal(t, s) and not t.requires_grad and s.requires_grad


# ------------------------------------------------------------------ the targets
def test_targets_are_computed_without_gradient():
    net = network()
    tokens = torch.randint(0, 4, (5, 8))
    for p in net.teacher.parameters():
        p.requires_grad_(True)  # even a teacher that could take gradients gives none through the targets
    targets = teacher_targets(net.teacher, tokens, K=2)
    assert not targets.requires_grad and targets.grad_fn is None
    mask = block_mask(5, 2, 3, 1, (0.5, 0.5), torch.Generator().manual_seed(0))
    net.loss(tokens, mask | (torch.arange(8) == 0), K=2, beta=1.0).backward()
    assert all(p.grad is None for p in net.teacher.parameters())
    assert all(p.grad is not None for p in net.head.parameters())


def test_targets_average_the_normalised_top_K_blocks():
    net = network(n_layers=3)
    tokens = torch.randint(0, 4, (5, 8))
    states = net.teacher(tokens)
    expected = normalise((normalise(states[2]) + normalise(states[3])) / 2)
    torch.testing.assert_close(teacher_targets(net.teacher, tokens, K=2), expected)
    # K = 1: the second normalisation changes the first only through its epsilon
    torch.testing.assert_close(teacher_targets(net.teacher, tokens, K=1), normalise(states[3]), atol=1e-4, rtol=0)
    target = teacher_targets(net.teacher, tokens, K=3)
    torch.testing.assert_close(target.mean(-1), torch.zeros(5, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.var(-1, unbiased=False), torch.ones(5, 8), atol=1e-3, rtol=0)


def test_loss_is_zero_when_the_student_predicts_the_targets_and_counts_only_masked_positions():
    net = network()
    tokens = torch.randint(0, 4, (3, 8))
    mask = torch.zeros(3, 8, dtype=torch.bool)
    assert net.loss(tokens, mask, K=1, beta=1.0).item() == 0.0  # nothing masked
    mask[:, :2] = True
    targets = teacher_targets(net.teacher, tokens, K=1)
    predictions = net(tokens, mask)
    expected = torch.nn.functional.smooth_l1_loss(predictions[:, :2], targets[:, :2], beta=0.5)
    torch.testing.assert_close(net.loss(tokens, mask, K=1, beta=0.5), expected)


# ------------------------------------------------------------------ the masks
@pytest.mark.parametrize("mask_level", [0, 1, 2])
def test_block_mask_hides_whole_blocks_at_the_drawn_rate(mask_level):
    s, L, n = 2, 4, 4000
    mask = block_mask(n, s, L, mask_level, (0.2, 0.6), torch.Generator().manual_seed(1))
    assert mask.shape == (n, s**L) and mask.dtype == torch.bool
    blocks = mask.reshape(n, -1, s**mask_level)
    assert (blocks.all(-1) | ~blocks.any(-1)).all(), "a block is either hidden whole or visible"
    rate = mask.float().mean().item()  # mean of the per-string rate: 0.4
    n_blocks = n * s ** (L - mask_level)
    assert abs(rate - 0.4) < 5 * np.sqrt(0.25 / n_blocks) + 5 * 0.2 / np.sqrt(12 * n)


def test_block_mask_is_reproducible():
    a = block_mask(10, 2, 3, 1, (0.1, 0.9), torch.Generator().manual_seed(3))
    b = block_mask(10, 2, 3, 1, (0.1, 0.9), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


# ------------------------------------------------------------------ the learner
@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(ema=(1.2, 1.0)), ValueError, r"ema must lie in \[0.0, 1.0\]"),
        (dict(ema=(-0.1, 0.9)), ValueError, r"ema must lie in \[0.0, 1.0\]"),
        (dict(ema=(0.99, 0.9)), ValueError, "ema must be .*first <= last"),
        (dict(ema=0.9), TypeError, "ema must be a pair"),
        (dict(K=3, n_layers=2), ValueError, "K must be <= n_layers = 2"),
        (dict(K=0), ValueError, "K must be >= 1"),
        (dict(mask_rate=(0.0, 0.5)), ValueError, r"mask_rate must lie in \(0.0, 1.0\)"),
        (dict(mask_rate=(0.5, 1.0)), ValueError, r"mask_rate must lie in \(0.0, 1.0\)"),
        (dict(mask_level=3), ValueError, "mask_level must be < L = 3"),
        (dict(trace_steps=[10], max_steps=5), ValueError, "trace_steps must be <= max_steps = 5"),
        (dict(beta=0), ValueError, "beta must lie in"),
        (dict(d_model=9), ValueError, "d_model must be divisible by n_heads"),
        (dict(device="tpu"), ValueError, "device must"),
    ],
)
def test_bad_options_raise_naming_them(options, error, message):
    with pytest.raises(error, match=message):
        Data2Vec(v=4, s=2, L=3, **options)
