"""Tests of lpbook.neural.data2vec: the EMA teacher, the targets, the masks, the learner."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lpbook  # noqa: E402
from conftest import killed_then_resumed, same_weights  # noqa: E402
from lpbook import RHM, exact, level_accuracy  # noqa: E402
from lpbook.tree import Node  # noqa: E402
from lpbook.learners import REGISTRY  # noqa: E402
from lpbook.neural import Encoder  # noqa: E402
from lpbook.neural.masking import block_mask  # noqa: E402
from lpbook.neural.snapshots import Snapshots, read_network  # noqa: E402
from lpbook.neural.data2vec import (  # noqa: E402
    Data2Vec,
    Data2VecNetwork,
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
    hidden_targets = teacher_targets(net.teacher, tokens, K=1, hide=~mask)  # the teacher reads the hidden tokens only
    expected = torch.nn.functional.smooth_l1_loss(predictions[:, :2], hidden_targets[:, :2], beta=0.5)
    torch.testing.assert_close(net.loss(tokens, mask, K=1, beta=0.5, teacher_input="hidden"), expected)
    assert not torch.allclose(hidden_targets[:, :2], targets[:, :2])


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
        (dict(mask_range=(0.0, 0.5)), ValueError, r"mask_range must lie in \(0.0, 1.0\)"),
        (dict(mask_range=(0.5, 1.0)), ValueError, r"mask_range must lie in \(0.0, 1.0\)"),
        (dict(mask_level=3), ValueError, "mask_level must be < L = 3"),
        (dict(beta=0), ValueError, "beta must lie in"),
        (dict(d_model=9), ValueError, "d_model must be divisible by n_heads"),
        (dict(device="tpu"), ValueError, "device must"),
        (dict(schedule="linear"), ValueError, "schedule must be one of"),
        (dict(teacher_input="visible"), ValueError, "teacher_input must be one of 'all', 'hidden'"),
        (dict(warmup=10, max_steps=10), ValueError, "warmup must be < max_steps = 10"),
    ],
)
def test_bad_options_raise_naming_them(options, error, message):
    with pytest.raises(error, match=message):
        Data2Vec(v=4, s=2, L=3, **options)


@pytest.fixture(scope="module")
def small():
    """A v=4, m=2, s=2, L=3 grammar with a train and a test sample."""
    rhm = RHM(4, 2, 2, 3, seed=0)
    return rhm, rhm.sample(300, seed=1), rhm.sample(60, seed=2)


def test_protocol_curve_snapshots_and_probe(small):
    rhm, train, test = small
    learner = Data2Vec(4, 2, 3, probe_steps=4, **FAST)
    kept = Snapshots([0, 3, 6, 100])  # a step past the end is never reached
    assert learner.fit(train.tokens, on_step=kept) is learner
    out = learner.transform(test.tokens)
    assert sorted(out) == [1, 2]
    for level, codes in out.items():
        assert codes.shape == (test.P, 2 ** (3 - level)) and codes.dtype == np.uint8
        assert codes.min() >= 0 and codes.max() < 4
    assert learner.curve_.steps[-1] == FAST["max_steps"] and len(learner.curve_.train_loss) >= 1
    assert sorted(kept.networks) == [0, 3, 6]
    for which in ("student", "teacher"):
        read = kept.read(learner, test.tokens, train.tokens, which)
        assert sorted(read) == [0, 3, 6] and all(sorted(codes) == [1, 2] for codes in read.values())
    mask = np.zeros(test.tokens.shape, dtype=bool)
    mask[:, :2] = True
    loss = learner.masked_token_loss(test.tokens, mask)
    assert 0 < loss < 10 and learner.probe_curve_.val_loss


def test_the_callback_changes_nothing_the_fit_computes(small):
    """A fit with on_step gives the same weights, curve and codes as one without: no part of its identity."""
    _, train, test = small
    plain = Data2Vec(4, 2, 3, probe_steps=3, n_init=1, **FAST).fit(train.tokens)
    watched = Data2Vec(4, 2, 3, probe_steps=3, n_init=1, **FAST).fit(train.tokens, on_step=Snapshots(range(7)))
    assert watched.get_params() == plain.get_params() and watched.curve_ == plain.curve_
    for a, b in zip(plain.network_.state_dict().values(), watched.network_.state_dict().values()):
        assert torch.equal(a, b)
    assert all(np.array_equal(plain.transform(test.tokens)[level], watched.transform(test.tokens)[level]) for level in (1, 2))
    with pytest.raises(TypeError, match="on_step must be callable"):
        Data2Vec(4, 2, 3, probe_steps=0, **FAST).fit(train.tokens, on_step=[0, 3])


def test_reading_the_trained_network_again_gives_its_own_codes(small):
    """read_network on the fitted network, with the strings given to fit, is the learner's own readout."""
    _, train, test = small
    learner = Data2Vec(4, 2, 3, probe_steps=0, n_init=1, **FAST).fit(train.tokens)
    again = read_network(learner, learner.network_, test.tokens, train.tokens)
    own = learner.transform(test.tokens)
    assert all(again[level].dtype == own[level].dtype and np.array_equal(again[level], own[level]) for level in (1, 2))
    teacher = Data2Vec(4, 2, 3, probe_steps=0, n_init=1, read="teacher", **FAST).fit(train.tokens)
    by_teacher = read_network(teacher, teacher.network_, test.tokens, train.tokens, "teacher")
    assert all(np.array_equal(by_teacher[level], teacher.transform(test.tokens)[level]) for level in (1, 2))
    with pytest.raises(ValueError, match="which must be 'student' or 'teacher'"):
        read_network(learner, learner.network_, test.tokens, train.tokens, "both")
    with pytest.raises(TypeError, match="learner must be an encoder learner"):
        read_network(object(), learner.network_, test.tokens, train.tokens)


@pytest.mark.parametrize("probe_steps", [0, 3])
def test_save_and_load_give_the_same_codes_and_probe(small, tmp_path, probe_steps):
    from lpbook.learners import Learner

    _, train, test = small
    learner = Data2Vec(4, 2, 3, probe_steps=probe_steps, n_init=1, **FAST).fit(train.tokens)
    learner.save(tmp_path / "d2v.npz")
    with np.load(tmp_path / "d2v.npz") as saved:  # no training data: no array holds a training string
        strings = {row.tobytes() for row in train.tokens.astype(np.int64)}
        assert not any(a.ndim == 2 and a.shape[1] == 8 and a.dtype.kind in "iu" and
                       {row.tobytes() for row in a.astype(np.int64)} & strings for a in saved.values())
    for loader in (Learner, Data2Vec):
        loaded = loader.load(tmp_path / "d2v.npz")
        assert type(loaded) is Data2Vec and loaded.get_params() == learner.get_params()
        assert loaded.curve_ == learner.curve_
        for which in ("student", "teacher"):
            expected = read_network(learner, learner.network_, test.tokens, train.tokens, which)
            got = read_network(loaded, loaded.network_, test.tokens, train.tokens, which)
            assert all(got[level].dtype == expected[level].dtype and np.array_equal(got[level], expected[level])
                       for level in (1, 2))
        assert all(np.array_equal(loaded.transform(test.tokens)[level], learner.transform(test.tokens)[level])
                   for level in (1, 2))
        if probe_steps:
            mask = learner.sample_mask(test.P, seed=3)
            assert loaded.masked_token_loss(test.tokens, mask) == learner.masked_token_loss(test.tokens, mask)
        else:
            assert loaded.token_head_ is None


def test_the_snapshots_are_the_training_path(small):
    """Step 0 holds the initial weights, with the teacher equal to the student; the last copy is the result."""
    rhm, train, _ = small
    kept = Snapshots([0, 6])
    learner = Data2Vec(4, 2, 3, probe_steps=0, **FAST).fit(train.tokens, on_step=kept)
    initial = learner.build()
    for a, b in zip(kept.networks[0].state_dict().values(), initial.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(kept.networks[6].state_dict().values(), learner.network_.state_dict().values()):
        assert torch.equal(a, b.cpu())
    student = torch.cat([p.ravel() for p in learner.network_.encoder.parameters()])
    teacher = torch.cat([p.ravel() for p in learner.network_.teacher.parameters()])
    assert not torch.equal(student, teacher)


def test_snapshots_check_their_steps():
    with pytest.raises(TypeError, match="steps must be a sequence"):
        Snapshots(5)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        Snapshots([-1])
    with pytest.raises(ValueError, match="steps must name at least one step"):
        Snapshots([])


def test_the_schedule_reaches_the_optimiser(small):
    """A warmed-up cosine schedule takes other steps than the constant rate from the same start and batches."""
    rhm, train, _ = small
    constant = Data2Vec(4, 2, 3, probe_steps=0, **FAST).fit(train.tokens)
    cosine = Data2Vec(4, 2, 3, probe_steps=0, schedule="cosine", warmup=2, **FAST).fit(train.tokens)
    assert cosine.schedule == "cosine" and cosine.warmup == 2
    weights = [torch.cat([p.ravel() for p in run.network_.encoder.parameters()]) for run in (constant, cosine)]
    assert not torch.allclose(*weights)


def test_same_seed_same_bytes(small):
    rhm, train, test = small
    runs = [Data2Vec(4, 2, 3, seed=3, probe_steps=2, **FAST).fit(train.tokens) for _ in range(2)]
    for a, b in zip(runs[0].network_.state_dict().values(), runs[1].network_.state_dict().values()):
        assert torch.equal(a, b)
    assert runs[0].curve_.train_loss == runs[1].curve_.train_loss
    codes = [run.transform(test.tokens) for run in runs]
    assert all(np.array_equal(codes[0][level], codes[1][level]) for level in (1, 2))
    other = Data2Vec(4, 2, 3, seed=4, probe_steps=2, **FAST).fit(train.tokens)
    assert other.curve_.train_loss != runs[0].curve_.train_loss


def test_the_caller_random_state_is_left_alone(small):
    _, train, _ = small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Data2Vec(4, 2, 3, probe_steps=0, **FAST).fit(train.tokens)
    assert torch.equal(torch.rand(3), expected)


def test_masked_token_loss_checks_its_input(small):
    _, train, test = small
    learner = Data2Vec(4, 2, 3, probe_steps=2, **FAST).fit(train.tokens)
    with pytest.raises(ValueError, match="mask must be a bool array"):
        learner.masked_token_loss(test.tokens, np.zeros(test.tokens.shape, dtype=int))
    with pytest.raises(ValueError, match="mask must hide at least one token"):
        learner.masked_token_loss(test.tokens, np.zeros(test.tokens.shape, dtype=bool))
    no_probe = Data2Vec(4, 2, 3, probe_steps=0, **FAST).fit(train.tokens)
    with pytest.raises(RuntimeError, match="no token probe"):
        no_probe.masked_token_loss(test.tokens, np.ones(test.tokens.shape, dtype=bool))


def test_unfitted_learner_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        Data2Vec(4, 2, 3, progress=False).transform(np.zeros((2, 8), dtype=int))


@pytest.mark.slow
def test_training_finds_latents_the_untrained_network_does_not_show():
    """v=8, m=2, L=3: the shared readout of a trained Data2Vec beats the same readout of its initial network.

    The margin, 0.2 in the accuracy of level 1 after 1,000 steps, is fixed in
    advance (level 2 needs far more steps, see Chapter 5); the held-out set
    has 2,000 strings x 4 level-1 nodes, so the accuracies' sampling noise
    (< 0.02) is far below it.
    """
    from lpbook.neural.readout import NeighbourReadout
    from lpbook.neural.training import split_validation

    rhm = RHM(8, 2, 2, 3, seed=0)
    train, test = rhm.sample(4000, seed=1), rhm.sample(2000, seed=2)
    learner = Data2Vec(8, 2, 3, seed=0, d_model=32, n_heads=2, lr=3e-3, max_steps=1000, probe_steps=0, progress=False)
    learner.fit(train.tokens)
    trained = learner.transform(test.tokens)
    untrained = learner.build().eval()
    train_rows, val_rows = split_validation(len(train.tokens), learner.val_fraction, learner.seed)  # the fit's split
    readout = NeighbourReadout(8, 2, 3, seed=0).fit(untrained, train.tokens[train_rows], train.tokens[val_rows])
    before = readout.transform(untrained, test.tokens)
    acc = {name: level_accuracy(test.levels[1], codes[1]) for name, codes in (("trained", trained), ("untrained", before))}
    assert acc["trained"] >= acc["untrained"] + 0.2, acc


def test_sample_mask_is_the_masked_token_scheme():
    from lpbook.neural import MaskedTokenModel

    d2v = Data2Vec(4, 2, 3, mask_range=(0.3, 0.9), progress=False)
    mtm = MaskedTokenModel(4, 2, 3, mask_range=(0.3, 0.9), progress=False)
    assert np.array_equal(d2v.sample_mask(50, seed=7), mtm.sample_mask(50, seed=7))


# ------------------------------------------------------------------ are the targets synonym-invariant?
def _one_hot_tokens(tokens, v, swap):
    """Targets (P, n, v): at position p the one-hot token of position p XOR swap (swap 2: the other tuple of the pair)."""
    return np.eye(v, dtype=np.float32)[tokens[:, np.arange(tokens.shape[1]) ^ swap]]


def test_target_synonymy_separates_invariant_from_leaking_targets(monkeypatch):
    """The neighbour's own tokens are invariant given the node's latent; the node's tokens, copied there, are not."""
    from lpbook.neural.measure import target_synonymy

    rhm = RHM(8, 2, 2, 3, seed=0)
    learner = Data2Vec(8, 2, 3, probe_steps=0, **FAST).fit(rhm.sample(200, seed=1).tokens)
    monkeypatch.setattr(learner, "targets", lambda tokens, mask: _one_hot_tokens(tokens, 8, 0))
    invariant = target_synonymy(learner, rhm, [1], n=20000)[1]
    # a key mean over about 20000 / 16 strings: its noise is corrected, and what is left fluctuates by a few 1e-3
    assert abs(invariant.share) < 0.02 and invariant.ideal_accuracy >= 0.95 and invariant.n == 20000
    monkeypatch.setattr(learner, "targets", lambda tokens, mask: _one_hot_tokens(tokens, 8, 2))
    leaking = target_synonymy(learner, rhm, [1], n=20000)[1]
    assert leaking.share > 0.3


def test_target_synonymy_reads_a_trained_teacher_and_checks_its_input(small):
    from lpbook.neural.measure import target_synonymy

    rhm, train, _ = small
    learner = Data2Vec(4, 2, 3, probe_steps=0, **FAST).fit(train.tokens)
    both = target_synonymy(learner, rhm, n=500)
    assert sorted(both) == [1, 2]
    result = both[2]
    assert result.level == 2 and np.isfinite(result.share) and 0 <= result.ideal_accuracy <= 1
    spans = {tuple(row) for row in rhm.sample(500, seed=0).tokens[:, :4]}  # the left level-2 node's spans seen
    assert 500 / len(spans) == pytest.approx(result.per_span, rel=0.3)
    mask = np.zeros((3, 8), dtype=bool)
    mask[:, :2] = True
    assert learner.targets(train.tokens[:3], mask).shape == (3, 8, 8)
    with pytest.raises(TypeError, match="model must be a fitted Data2Vec"):
        target_synonymy(object(), rhm)
    with pytest.raises(ValueError, match="rhm must be an RHM with v=4"):
        target_synonymy(learner, RHM(5, 2, 2, 3, seed=0))
    with pytest.raises(ValueError, match="levels must be below the root"):
        target_synonymy(learner, rhm, [1, 3])


def test_a_teacher_of_the_hidden_tokens_never_sees_what_the_student_sees(small):
    """teacher_input="hidden": the targets do not change with the visible tokens; with "all" they do."""
    rhm, train, _ = small
    mask = np.ones((len(train.tokens), 8), dtype=bool)
    mask[:, :2] = False  # the student sees the first tuple only
    changed = train.tokens.copy()
    changed[:, :2] = (changed[:, :2] + 1) % 4  # other visible tokens, the same hidden ones
    for teacher_input, moves in (("hidden", False), ("all", True)):
        learner = Data2Vec(4, 2, 3, probe_steps=0, teacher_input=teacher_input, **FAST).fit(train.tokens)
        before, after = learner.targets(train.tokens, mask), learner.targets(changed, mask)
        assert np.allclose(before[:, 2:], after[:, 2:], atol=1e-6) is not moves


# ------------------------------------------------------------------ prop-d2v-ilc-step (Chapter 5)
@pytest.mark.parametrize(("v", "m", "s", "rank"), [(8, 2, 2, 14), (16, 3, 2, 30), (8, 3, 3, 21)])
def test_additive_targets_span_too_few_dimensions_for_the_joint_context(v, m, s, rank):
    """The tuples under a level-2 node, as concatenated one-hots, have rank <= s (v - 1) + 1 < v m: a bound through
    the smallest singular value of the joint map is empty (seed 0, L = 3)."""
    onehots = exact.production_onehots(RHM(v, m, s, 3, seed=0), 2)
    assert onehots.shape == (v * m, s * v)
    assert np.linalg.matrix_rank(onehots) == rank <= s * (v - 1) + 1 < v * m
    assert np.linalg.svd(onehots, compute_uv=False).min() < 1e-12


@pytest.mark.parametrize(("v", "m", "s"), [(8, 2, 2), (8, 3, 3)])
def test_regression_onto_additive_targets_sees_the_one_child_marginals(v, m, s):
    """The optimal prediction at w' given w's symbol is sum_b q_a(b) F(b) = (Phi_i mu_a^i)_i, and it obeys the
    per-block bound of prop-d2v-ilc-step with equality of predictions exactly where the marginals agree."""
    rhm = RHM(v, m, s, 3, seed=0)
    w, w_prime = Node(2, 0), Node(2, 1)  # two children of the root
    q = exact.parent_context(rhm, w, w_prime, joint=True)  # (v, v*m): the joint law of w''s tuple given w's symbol
    d = v  # targets per position: span(u_i) holds s positions at l = 1, so each block has s d >= v rows
    rng = np.random.default_rng(0)
    Phi = [rng.normal(size=(s * d, v)) for _ in range(s)]  # block i: the targets f_p(c) stacked over span(u_i)
    F = np.concatenate([np.stack([Phi[i][:, c] for c in rhm.rules[2][:, :, i].ravel()]) for i in range(s)], axis=1)
    y_hat = q @ F  # (v, s * s * d): the conditional mean of the targets at span(w')
    mu = [exact.parent_context(rhm, w, Node(1, s * w_prime.pos + i), joint=False) for i in range(s)]  # (v, v) each
    np.testing.assert_allclose(y_hat, np.concatenate([mu[i] @ Phi[i].T for i in range(s)], axis=1), atol=1e-12)
    lam = [np.linalg.svd(P, compute_uv=False).min() for P in Phi]  # min over unit x of ||Phi_i x||: s d >= v
    assert min(lam) > 0
    for a in range(v):
        for b in range(a + 1, v):
            gap = np.sum((y_hat[a] - y_hat[b]) ** 2)
            bound = sum(lam[i] ** 2 * np.sum((mu[i][a] - mu[i][b]) ** 2) for i in range(s))
            assert gap >= bound - 1e-12
            same_marginals = all(np.allclose(mu[i][a], mu[i][b], atol=1e-12) for i in range(s))
            assert same_marginals == (gap < 1e-20)


# ------------------------------------------------------------------ the defaults are the recipe that converges
def test_the_defaults_are_the_committed_recipe():
    """``Data2Vec(v, s, L)`` trains as the networks of the depth experiment were trained (all but the readout's
    restarts, which change no training), with targets over every block whatever the number of blocks."""
    from lpbook.experiments import NETWORKS

    recipe = dict(NETWORKS["d2v-depth-seed0"].fits[0].options)
    defaults = Data2Vec(16, 2, 3)
    for name, value in recipe.items():
        if name != "n_init":
            assert np.array_equal(getattr(defaults, name), value), name
    assert Data2Vec(16, 2, 3, n_layers=2).K == 2 and Data2Vec(16, 2, 3, max_steps=500).warmup == 5


def test_a_file_without_an_option_loads_with_the_value_it_was_fitted_with(small, tmp_path):
    """A file saved before ``teacher_input``, ``schedule`` and ``warmup`` were options names none of them:
    it loads as fitted then (a teacher of every token, a constant rate, no warmup), not with today's defaults."""
    import json

    from lpbook.learners import Learner

    _, train, _ = small
    Data2Vec(4, 2, 3, probe_steps=0, n_init=1, **FAST).fit(train.tokens).save(tmp_path / "d2v.npz")
    with np.load(tmp_path / "d2v.npz") as saved:
        arrays = dict(saved)
    header = json.loads(str(arrays["__header__"]))
    for name in ("teacher_input", "schedule", "warmup"):
        del header["params"][name]
    arrays["__header__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = Learner.load(tmp_path / "old.npz")
    assert (loaded.teacher_input, loaded.schedule, loaded.warmup) == ("all", "constant", 0)
    assert Data2Vec(4, 2, 3).teacher_input == "hidden"


def test_a_fit_killed_on_the_way_goes_on_from_its_checkpoint_to_the_same_network(small, tmp_path):
    """Killed in its second epoch, fitted again with the same file: the student, the teacher, the probe and the
    codes of a fit never stopped (the generator goes on where the checkpoint left it)."""
    _, train, test = small
    options = dict(FAST, max_steps=20, probe_steps=3, n_init=1)
    plain, resumed = killed_then_resumed(lambda: Data2Vec(4, 2, 3, **options), train.tokens,
                                         tmp_path / "fit.checkpoint", 14)
    assert resumed.curve_ == plain.curve_ and resumed.probe_curve_ == plain.probe_curve_
    assert same_weights(plain.network_, resumed.network_) and same_weights(plain.token_head_, resumed.token_head_)
    assert all(np.array_equal(plain.transform(test.tokens)[level], resumed.transform(test.tokens)[level])
               for level in (1, 2))
