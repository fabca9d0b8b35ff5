"""Tests of the shared training loop of lpbook.neural: early stopping, the step budget, the learning curve."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpbook.neural.training import (  # noqa: E402
    Checkpoint,
    LearningCurve,
    check_schedule,
    generator,
    learning_rate_factor,
    split_validation,
    torch_threads,
    train,
)


def regression(n=64, seed=0):
    """A linear model and a noiseless linear target: the training loss falls towards 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1)
    loss = lambda index: ((model(x[index]).squeeze(1) - y[index]) ** 2).mean()
    return model, loss


def test_budget_and_curve():
    model, loss = regression()
    curve = train(model, loss, 64, max_steps=50, batch_size=16, lr=1e-2, rng=generator(0), eval_every=10)
    assert curve.steps == [10, 20, 30, 40, 50]
    assert len(curve.train_loss) == 5 and curve.val_loss == []
    assert curve.stopped == "budget" and curve.best_step == 50
    assert len(curve.seconds) == 5 and curve.seconds == sorted(curve.seconds)
    assert curve.train_loss[-1] < curve.train_loss[0]
    assert np.isnan(curve.best_val_loss)


def test_last_partial_interval_is_recorded():
    model, loss = regression()
    curve = train(model, loss, 64, max_steps=25, batch_size=16, lr=1e-2, rng=generator(0), eval_every=10)
    assert curve.steps == [10, 20, 25]


def test_early_stopping_on_a_rising_validation_loss_keeps_the_best_weights():
    # A validation loss that is lowest at the 3rd evaluation, then rises: with
    # patience 2 training stops at the 5th, and the model ends with the
    # weights it had at the 3rd.
    model, loss = regression()
    scripted = iter([3.0, 2.0, 1.0, 1.5, 1.7, 0.1, 0.1])
    weights = {}

    def val_loss():
        weights[len(weights) + 1] = model.weight.detach().clone()
        return next(scripted)

    curve = train(model, loss, 64, max_steps=1000, batch_size=16, lr=1e-2, rng=generator(0),
                  eval_every=4, val_loss=val_loss, patience=2)
    assert curve.stopped == "patience"
    assert curve.steps == [4, 8, 12, 16, 20] and curve.val_loss == [3.0, 2.0, 1.0, 1.5, 1.7]
    assert curve.best_step == 12 and curve.best_val_loss == 1.0
    torch.testing.assert_close(model.weight, weights[3], rtol=0, atol=0)
    assert not model.training


def test_min_delta_counts_small_gains_as_no_gain():
    model, loss = regression()
    scripted = iter([1.0, 0.99, 0.98, 0.97])
    curve = train(model, loss, 64, max_steps=1000, batch_size=16, lr=1e-2, rng=generator(0),
                  eval_every=4, val_loss=lambda: next(scripted), patience=2, min_delta=0.05)
    assert curve.steps == [4, 8, 12] and curve.best_step == 4


def test_stop_below_ends_on_the_training_loss():
    model, loss = regression()
    curve = train(model, loss, 64, max_steps=10**5, batch_size=16, lr=5e-2, rng=generator(0), stop_below=1e-3)
    assert curve.stopped == "target" and curve.train_loss[-1] < 1e-3
    assert curve.steps[-1] % 4 == 0  # evaluations once per epoch of 64 / 16 = 4 steps


def test_same_generator_same_curve():
    curves = []
    for _ in range(2):
        torch.manual_seed(0)
        model, loss = regression()
        curves.append(train(model, loss, 64, max_steps=30, batch_size=16, lr=1e-2, rng=generator(3)).train_loss)
    assert curves[0] == curves[1]


def test_split_validation():
    train_rows, val_rows = split_validation(100, 0.1, seed=0)
    assert len(val_rows) == 10 and len(train_rows) == 90
    assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(100))
    again = split_validation(100, 0.1, seed=0)
    np.testing.assert_array_equal(again[1], val_rows)
    assert len(split_validation(3, 0.01, seed=0)[1]) == 1 and len(split_validation(3, 0.99, seed=0)[0]) == 1
    with pytest.raises(ValueError, match="at least 2 samples"):
        split_validation(1, 0.1, seed=0)


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_curve_round_trips_through_its_state_and_leaves_out_keys_it_lacks():
    curve = LearningCurve(steps=[1, 2], train_loss=[1.0, 0.5], best_step=2, seconds=[0.1, 0.2])
    assert curve == LearningCurve.from_state(curve.get_state())
    assert curve == LearningCurve(steps=[1, 2], train_loss=[1.0, 0.5], best_step=2, seconds=[9.0, 9.0])  # seconds aside
    assert curve != LearningCurve(steps=[1, 2], train_loss=[1.0, 0.4], best_step=2)
    saved = dict(curve.get_state(), loss=None, balance=None, assignments=None)  # as the committed networks hold it
    assert LearningCurve.from_state(saved) == curve


def test_learning_rate_factor_warms_up_then_follows_the_schedule():
    assert [learning_rate_factor(t, 10, "constant", 4) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert learning_rate_factor(0, 10, "cosine", 0) == 1.0
    assert learning_rate_factor(5, 10, "cosine", 0) == pytest.approx(0.5)
    assert learning_rate_factor(10, 10, "cosine", 0) == pytest.approx(0.0)
    assert learning_rate_factor(2, 10, "cosine", 2) == 1.0 and learning_rate_factor(6, 10, "cosine", 2) == pytest.approx(0.5)


def test_the_schedule_sets_the_optimiser_learning_rate():
    """A loss with constant gradient 1: Adam's bias-corrected step is then exactly its learning rate (up to eps)."""
    for schedule, warmup in (("cosine", 3), ("constant", 2)):
        w = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(w.weight)
        seen = []

        def loss(index):
            seen.append(w.weight.item())
            return w.weight.sum() + 10.0  # positive: stop_below = 0 never ends it

        train(w, loss, 4, max_steps=8, batch_size=4, lr=0.5, rng=generator(0), schedule=schedule, warmup=warmup)
        seen.append(w.weight.item())
        steps = -np.diff(seen)
        expected = [0.5 * learning_rate_factor(t, 8, schedule, warmup) for t in range(8)]
        np.testing.assert_allclose(steps, expected, rtol=1e-6, atol=1e-7)


def test_check_schedule():
    assert check_schedule("cosine", 10, 100) == ("cosine", 10)
    with pytest.raises(ValueError, match="schedule must be one of 'constant', 'cosine'"):
        check_schedule("linear", 0, 100)
    with pytest.raises(ValueError, match="warmup must be < max_steps = 100"):
        check_schedule("cosine", 100, 100)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        check_schedule("cosine", -1, 100)


@pytest.mark.parametrize("patience", [2, 1000], ids=["early-stop", "budget"])
def test_the_bar_ends_at_its_total_whether_training_stops_early_or_not(capsys, patience):
    from conftest import ends_at_total, last_bar

    model, loss = regression()
    scripted = iter([3.0, 2.0, 1.0, 1.5, 1.7] + [2.0] * 100)
    curve = train(model, loss, 64, max_steps=60, batch_size=16, lr=1e-2, rng=generator(0), eval_every=4,
                  val_loss=lambda: next(scripted), patience=patience, progress=True, desc="BAR")
    err = capsys.readouterr().err
    assert curve.stopped == ("patience" if patience == 2 else "budget")
    assert last_bar(err).startswith("BAR") and ends_at_total(err), err


def test_on_step_sees_step_zero_then_every_step_after_the_optimiser():
    """The callback gets 0 before any step, then 1..n with the weights that step produced; the run is unchanged."""
    model, loss = regression()
    seen = []
    train(model, loss, 64, max_steps=7, batch_size=16, lr=1e-2, rng=generator(0), eval_every=3,
          on_step=lambda step, m: seen.append((step, m.weight.detach().clone())))
    assert [step for step, _ in seen] == list(range(8))
    assert torch.equal(seen[-1][1], model.weight.detach())
    assert all(not torch.equal(a, b) for (_, a), (_, b) in zip(seen, seen[1:]))  # each step moved the weights
    torch.manual_seed(1)  # the same initial weights for both runs
    plain, plain_loss = regression()
    curve = train(plain, plain_loss, 64, max_steps=7, batch_size=16, lr=1e-2, rng=generator(0), eval_every=3)
    torch.manual_seed(1)
    watched, watched_loss = regression()
    assert train(watched, watched_loss, 64, max_steps=7, batch_size=16, lr=1e-2, rng=generator(0), eval_every=3,
                 on_step=lambda step, m: None) == curve
    assert torch.equal(plain.weight, watched.weight)


def test_on_step_stops_with_early_stopping():
    """Training that stops on its patience calls the callback up to the last step it took."""
    model, loss = regression()
    seen = []
    curve = train(model, loss, 64, max_steps=200, batch_size=16, lr=1e-2, rng=generator(0), eval_every=5,
                  val_loss=lambda: 1.0, patience=2, on_step=lambda step, m: seen.append(step))
    assert curve.stopped == "patience" and seen == list(range(curve.steps[-1] + 1))


class Killed(Exception):
    """What a test raises inside a run to stand for the process being killed."""


def kill_at(step_to_die: int):
    """An ``on_step`` that kills the run when it reaches ``step_to_die``."""
    def on_step(step, model):
        if step == step_to_die:
            raise Killed
    return on_step


def checkpointed_run(checkpoint, on_step=None):
    """The regression trained with a cosine schedule, early stopping and evaluations mid-epoch (3 batches an epoch,
    one evaluation every 5 steps): its model, curve and generator."""
    torch.manual_seed(1)  # the same initial weights for every run
    model, loss = regression()
    rng = generator(0)
    curve = train(model, loss, 64, max_steps=40, batch_size=24, lr=1e-2, rng=rng, eval_every=5,
                  val_loss=lambda: float(loss(torch.arange(64)).detach()), patience=100, schedule="cosine", warmup=3,
                  on_step=on_step, checkpoint=checkpoint)
    return model, curve, rng


@pytest.mark.parametrize("dies_at", [13, 15, 39])
def test_a_run_killed_on_the_way_goes_on_from_its_checkpoint_to_the_bytes_of_an_uninterrupted_one(tmp_path, dies_at):
    plain, plain_curve, plain_rng = checkpointed_run(None)
    checkpoint = Checkpoint(tmp_path / "run.checkpoint", {"run": "regression"})
    with pytest.raises(Killed):
        checkpointed_run(checkpoint, kill_at(dies_at))
    assert torch.load(checkpoint.path, weights_only=True)["step"] == 5 * ((dies_at - 1) // 5)  # the last evaluation
    seen = []
    resumed, curve, rng = checkpointed_run(checkpoint, lambda step, model: seen.append(step))
    assert seen == list(range(5 * ((dies_at - 1) // 5) + 1, 41))  # the steps it ran, and only those
    assert curve == plain_curve and len(curve.seconds) == len(curve.steps)
    assert torch.equal(resumed.weight, plain.weight) and torch.equal(resumed.bias, plain.bias)
    assert torch.equal(rng.get_state(), plain_rng.get_state())
    again, curve_again, _ = checkpointed_run(checkpoint, kill_at(1))  # done: returns at once, the same result
    assert curve_again == plain_curve and torch.equal(again.weight, plain.weight)


def test_a_checkpoint_of_another_fit_is_refused(tmp_path):
    path = tmp_path / "run.checkpoint"
    checkpointed_run(Checkpoint(path, {"run": "regression", "lr": 0.01}))
    with pytest.raises(ValueError, match="belongs to another fit"):
        checkpointed_run(Checkpoint(path, {"run": "regression", "lr": 0.02}))
    with pytest.raises(TypeError, match="checkpoint identity must be a mapping"):
        Checkpoint(path, ["regression"])
    with pytest.raises(TypeError, match="checkpoint path must be a str or a path"):
        Checkpoint(3, {})


def test_trend_is_the_slope_of_the_last_evaluations_with_an_interval_that_shrinks_with_noise():
    steps = list(range(500, 20001, 500))  # 40 evaluations
    noise = np.random.default_rng(0).normal(0, 0.002, len(steps))
    # falling by 1e-6 per step over the last 20 evaluations, flat before; the validation loss flat and noisy
    train_loss = [2.0 - 1e-6 * max(0, step - 10000) + e for step, e in zip(steps, noise)]
    curve = LearningCurve(steps=steps, train_loss=train_loss, val_loss=[2.0 + e for e in noise])
    slope, width = curve.trend("train", last=20)
    # the standard error of a least-squares slope: sigma / sqrt(sum (x - mean x)^2), here 0.002 / 12,900
    assert abs(slope + 1e-6) < 3 * 0.002 / np.std(steps[-20:]) / np.sqrt(20) and 0 < width < 1e-6
    val_slope, val_width = curve.trend("val", last=20)
    assert abs(val_slope) < val_width  # flat: the interval holds 0
    exact = LearningCurve(steps=steps, train_loss=[3.0 - 2e-5 * step for step in steps], val_loss=[])
    assert exact.trend(last=3) == pytest.approx((-2e-5, 0.0), abs=1e-12)
    with pytest.raises(ValueError, match="loss"):
        curve.trend("test")
    with pytest.raises(ValueError, match="last"):
        exact.trend("val")
    with pytest.raises(ValueError, match="last"):
        curve.trend(last=2)
