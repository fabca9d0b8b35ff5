"""Tests of lpbook.neural.masked: the masked-token transformer, its masks, loss and early stopping."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import killed_then_resumed, same_weights  # noqa: E402
from lpbook import RHM  # noqa: E402
from lpbook.neural import MaskedTokenModel  # noqa: E402

FAST_MT = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10, n_init=1, progress=False)


@pytest.fixture(scope="module")
def small():
    """A v=4, m=2, s=2, L=3 grammar with a train and a test sample."""
    rhm = RHM(4, 2, 2, 3, seed=0)
    return rhm, rhm.sample(200, seed=1), rhm.sample(50, seed=2)


def test_masked_token_protocol(small):
    rhm, train, test = small
    model = MaskedTokenModel(4, 2, 3, **FAST_MT)
    assert model.fit(train.tokens) is model
    out = model.transform(test.tokens)
    candidates = model.transform_candidates(test.tokens)
    assert sorted(out) == sorted(candidates) == [1, 2]
    for level in (1, 2):
        assert sorted(candidates[level]) == ["layer 1", "output"]
        np.testing.assert_array_equal(out[level], candidates[level][model.readout_.choice_[level]])
        for codes in candidates[level].values():
            assert codes.shape == (test.P, 2 ** (3 - level)) and codes.dtype == np.uint8
            assert codes.min() >= 0 and codes.max() < 4
    states = model.hidden_states(test.tokens)
    assert len(states) == 2 and all(s.shape == (test.P, 8, 8) and s.dtype == np.float32 for s in states)
    curve = model.curve_
    assert curve.steps == [10, 20] and len(curve.val_loss) == 2 and curve.stopped == "budget"
    fixed = MaskedTokenModel(4, 2, 3, candidates=["output"], **FAST_MT).fit(train.tokens)
    assert fixed.readout_.choice_ == {1: "output", 2: "output"}


def test_masked_token_masks_whole_tuples_at_rates_from_the_range():
    model = MaskedTokenModel(4, 2, 3, mask_range=(0.5, 0.5))
    mask = model.sample_mask(4000, seed=0)
    assert mask.shape == (4000, 8) and mask.dtype == bool
    np.testing.assert_array_equal(mask[:, 0::2], mask[:, 1::2])  # whole s-tuples
    # 16000 tuples hidden with probability 1/2: 5 sigma is 0.02.
    assert abs(mask.mean() - 0.5) < 0.02
    np.testing.assert_array_equal(mask, model.sample_mask(4000, seed=0))
    wide = MaskedTokenModel(4, 2, 3, mask_range=(0.2, 0.95)).sample_mask(4000, seed=0)
    rates = wide[:, ::2].mean(axis=1)
    assert rates.std() > 0.25  # per-sample rates vary (uniform on the range: 0.22 + binomial noise)
    assert abs(wide.mean() - 0.575) < 0.02


def test_masked_token_loss_is_in_nats_per_hidden_token(small):
    rhm, train, test = small
    model = MaskedTokenModel(4, 2, 3, **FAST_MT).fit(train.tokens)
    mask = model.sample_mask(test.P, seed=3)
    loss = model.masked_token_loss(test.tokens, mask)
    logits = model.network_(torch.as_tensor(test.tokens.astype(np.int64)), torch.as_tensor(mask))
    expected = torch.nn.functional.cross_entropy(logits[torch.as_tensor(mask)], torch.as_tensor(test.tokens.astype(np.int64))[torch.as_tensor(mask)])
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="at least one token"):
        model.masked_token_loss(test.tokens, np.zeros(test.tokens.shape, dtype=bool))
    with pytest.raises(ValueError, match="mask must be a bool array"):
        model.masked_token_loss(test.tokens, mask[:, :4])


@pytest.mark.slow
def test_masked_token_training_stops_early_with_its_best_weights():
    # v=4, m=2, s=2, L=2 (32 strings). The first validation loss is near a
    # uniform guess, log(4) = 1.39; training lowers it, and with patience 2
    # the loop stops on a plateau before a generous budget and keeps the best
    # evaluation.
    rhm = RHM(4, 2, 2, 2, seed=0)
    train = rhm.sample(1000, seed=1)
    model = MaskedTokenModel(4, 2, 2, d_model=16, lr=3e-3, max_steps=5000, eval_every=25, patience=2, n_init=1,
                             progress=False).fit(train.tokens)
    curve = model.curve_
    assert curve.stopped == "patience" and curve.steps[-1] < 5000
    assert curve.best_val_loss == curve.val_loss[curve.steps.index(curve.best_step)]
    assert curve.val_loss[0] > 1.2 and curve.best_val_loss < curve.val_loss[0] - 0.05  # measured: 1.37 to 1.29


def test_masked_token_needs_a_latent_level():
    with pytest.raises(ValueError, match="L must be >= 2"):
        MaskedTokenModel(4, 2, 1)


def test_the_defaults_are_the_committed_recipe():
    """``MaskedTokenModel(v, s, L)`` trains as Chapter 2's committed networks were trained (all but the readout's
    restarts), and its warmup scales with its budget."""
    from lpbook.experiments import NETWORKS

    recipe = next(fit.options for fit in NETWORKS["depth-networks"].fits if fit.grammar["L"] == 3)
    defaults = MaskedTokenModel(16, 2, 3)
    for name, value in recipe.items():
        assert np.array_equal(getattr(defaults, name), value), name
    assert MaskedTokenModel(16, 2, 3, max_steps=500).warmup == 5


def test_a_fit_killed_on_the_way_goes_on_from_its_checkpoint_to_the_same_network(small, tmp_path):
    """Killed between evaluations (mid-epoch), fitted again with the same file: the weights, curve and codes of
    a fit never stopped; the file is refused for other strings."""
    _, train, test = small
    options = dict(FAST_MT, max_steps=30, eval_every=7, batch_size=32)
    path = tmp_path / "fit.checkpoint"
    plain, resumed = killed_then_resumed(lambda: MaskedTokenModel(4, 2, 3, **options), train.tokens, path, 17)
    assert resumed.curve_ == plain.curve_ and same_weights(plain.network_, resumed.network_)
    assert all(np.array_equal(plain.transform(test.tokens)[level], resumed.transform(test.tokens)[level])
               for level in (1, 2))
    with pytest.raises(ValueError, match="belongs to another fit"):
        MaskedTokenModel(4, 2, 3, **options).fit(train.tokens[::-1], checkpoint=path)
