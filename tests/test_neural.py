"""Tests of lpbook.neural: the supervised CNN, the masked-token transformer and the latent probe."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpbook import RHM, level_accuracy  # noqa: E402
from lpbook.learners import REGISTRY  # noqa: E402
from lpbook.neural import Encoder, LatentProbe, MaskedTokenModel, SupervisedCNN, pool, score_layers  # noqa: E402

# Small, fast networks for the protocol tests.
FAST_CNN = dict(width=16, epochs=3, progress=False)
FAST_MT = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10, n_init=1, progress=False)


def chance_tolerance(p: float, n: int, z: float = 5.0) -> float:
    """``z`` binomial standard deviations of an accuracy of mean ``p`` over ``n`` independent items."""
    return z * np.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def small():
    """A v=4, m=2, s=2, L=3 grammar with a train and a test sample."""
    rhm = RHM(4, 2, 2, 3, seed=0)
    return rhm, rhm.sample(200, seed=1), rhm.sample(50, seed=2)


def weights(learner) -> torch.Tensor:
    return torch.cat([p.detach().ravel() for p in learner.network_.parameters()])


# ------------------------------------------------------------------ protocol
def test_learners_are_registered():
    assert REGISTRY["supervised-cnn"] is SupervisedCNN and SupervisedCNN.uses_labels
    assert REGISTRY["masked-token"] is MaskedTokenModel and not MaskedTokenModel.uses_labels


def test_supervised_cnn_protocol(small):
    rhm, train, test = small
    cnn = SupervisedCNN(4, 2, 3, **FAST_CNN)
    assert cnn.fit(train.tokens, train.labels) is cnn
    out = cnn.transform(test.tokens)
    assert list(out) == [3]
    assert out[3].shape == (test.P, 1) and out[3].dtype == np.uint8
    assert out[3].min() >= 0 and out[3].max() < rhm.n_classes
    assert len(cnn.losses_) <= FAST_CNN["epochs"]


def test_supervised_cnn_n_classes():
    rhm = RHM(4, 2, 2, 2, n_classes=2, seed=0)
    train = rhm.sample(100, seed=1)
    out = SupervisedCNN(4, 2, 2, n_classes=2, **FAST_CNN).fit(train.tokens, train.labels).transform(train.tokens)
    assert out[2].max() < 2 and out[2].shape == (100, 1)


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


def test_encoder_returns_every_layer_and_masks():
    torch.manual_seed(0)
    encoder = Encoder(v=4, n_positions=8, d_model=8, n_layers=3, n_heads=2).eval()
    tokens = torch.randint(0, 4, (5, 8))
    mask = torch.zeros(5, 8, dtype=torch.bool)
    mask[:, 2] = True
    states = encoder(tokens)
    assert len(states) == 4 and all(s.shape == (5, 8, 8) for s in states)
    masked = encoder(tokens, mask)[0]
    # Layer 0 is the embedding: only the masked position changes, to the [MASK] embedding.
    torch.testing.assert_close(masked[:, [0, 1, 3]], states[0][:, [0, 1, 3]])
    expected = encoder.token_embedding.weight[4] + encoder.position_embedding[2]
    torch.testing.assert_close(masked[:, 2], expected.expand(5, -1))


# --------------------------------------------------------------- determinism
@pytest.mark.parametrize("cls, options", [(SupervisedCNN, FAST_CNN), (MaskedTokenModel, FAST_MT)])
def test_same_seed_same_model_other_seed_other_weights(small, cls, options):
    _, train, test = small
    fit = lambda seed: cls(4, 2, 3, seed=seed, **options).fit(train.tokens, train.labels)
    a, b, c = fit(0), fit(0), fit(1)
    torch.testing.assert_close(weights(a), weights(b), rtol=0, atol=0)
    assert a.curve_ == b.curve_
    for level, codes in a.transform(test.tokens).items():
        np.testing.assert_array_equal(codes, b.transform(test.tokens)[level])
    assert not torch.equal(weights(a), weights(c))


def test_fit_leaves_the_global_rng_alone(small):
    _, train, _ = small
    state = torch.random.get_rng_state()
    SupervisedCNN(4, 2, 3, **FAST_CNN).fit(train.tokens, train.labels)
    MaskedTokenModel(4, 2, 3, **FAST_MT).fit(train.tokens)
    assert torch.equal(torch.random.get_rng_state(), state)


# ------------------------------------------------------------------ learning
def test_supervised_cnn_learns_an_easy_grammar():
    # v=8, m=2, s=2, L=4 generates 8 * 2**15 ~ 2.6e5 strings, so the 1000
    # training strings cover < 0.4% of them and test accuracy measures
    # generalisation, not recall. The supervised scale is n_c * m**L = 128;
    # at P = 1000 ~ 8x that scale our CNN reaches test accuracy 1.00 (0.96
    # already at P = 300), so 0.95 leaves a margin yet fails for a CNN that
    # does not learn the rules (chance is 1/8).
    rhm = RHM(8, 2, 2, 4, seed=0)
    train, test = rhm.sample(1000, seed=1), rhm.sample(2000, seed=2)
    cnn = SupervisedCNN(8, 2, 4, progress=False).fit(train.tokens, train.labels)
    assert cnn.losses_[-1] < cnn.stop_loss  # trained to (near) zero training loss
    assert level_accuracy(test.levels[4], cnn.transform(test.tokens)[4]) >= 0.95


def test_supervised_cnn_is_near_chance_with_a_handful_of_samples():
    # 8 training strings for a grammar whose supervised scale is
    # n_c * m**L = 8 * 4**3 = 512: the CNN memorises them but cannot
    # generalise. Plain (unmatched) accuracy is then chance, 1/8, up to the
    # binomial noise of the test set (5 sigma) and a small excess (over
    # seeds 0..5 we measured 0.120..0.136, sigma = 0.005).
    v, n_test = 8, 4000
    rhm = RHM(v, 4, 2, 3, seed=0)
    train, test = rhm.sample(8, seed=1), rhm.sample(n_test, seed=2)
    cnn = SupervisedCNN(v, 2, 3, progress=False).fit(train.tokens, train.labels)
    accuracy = np.mean(cnn.transform(test.tokens)[3][:, 0] == test.labels)
    assert abs(accuracy - 1 / v) < chance_tolerance(1 / v, n_test)


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


# --------------------------------------------------------------------- probe
def test_pool_averages_each_span():
    states = np.arange(2 * 8 * 3, dtype=float).reshape(2, 8, 3)
    pooled = pool(states, 2, 2)
    assert pooled.shape == (2, 2, 3)
    np.testing.assert_allclose(pooled[1, 1], states[1, 4:8].mean(axis=0))


def test_probe_recovers_latents_encoded_exactly():
    # Layer 0 holds each token's level-1 ancestor as a one-hot vector, layer 1
    # its level-2 ancestor: pooling over a level-l span keeps layer l-1 exact.
    v, s, L = 4, 2, 3
    rhm = RHM(v, 2, s, L, seed=3)
    train, test = rhm.sample(300, seed=0), rhm.sample(100, seed=1)

    def states(sample):
        ancestors = [np.repeat(sample.levels[level], s**level, axis=1) for level in (1, 2)]
        return [np.eye(v, dtype=np.float32)[a] for a in ancestors]  # each (P, s**L, v)

    probe = LatentProbe(v, s, L, seed=0).fit(states(train))
    codes = probe.transform(states(test))
    assert codes[1][0].shape == (100, 4) and codes[2][1].shape == (100, 2)
    scores = score_layers(codes, test.levels)
    assert scores.accuracy[1][0] == 1.0 and scores.accuracy[2][1] == 1.0
    assert scores.best_layer == {1: 0, 2: 1}


def test_score_layers_breaks_ties_towards_the_lowest_layer():
    truth = [None, np.array([[0, 1], [1, 0]])]
    scores = score_layers({1: {0: truth[1], 1: 1 - truth[1], 2: np.zeros((2, 2), int)}}, truth)
    assert scores.accuracy[1] == {0: 1.0, 1: 1.0, 2: 0.5} and scores.best_layer == {1: 0}


@pytest.mark.parametrize(
    "states, error, match",
    [
        (np.zeros((3, 8, 2)), TypeError, "sequence of arrays"),
        ([], TypeError, "sequence of arrays"),
        ([np.zeros((3, 8, 2), dtype=int)], TypeError, r"states\[0\] must hold floats"),
        ([np.zeros((3, 4, 2))], ValueError, r"s\*\*L = 8"),
        ([np.zeros((3, 8, 2)), np.zeros((4, 8, 2))], ValueError, "has 4 rows"),
        ([np.full((3, 8, 2), np.nan)], ValueError, "finite"),
        ([np.zeros((1, 8, 2))], ValueError, "P >= v / s"),
    ],
)
def test_probe_rejects_bad_states(states, error, match):
    with pytest.raises(error, match=match):
        LatentProbe(4, 2, 3).fit(states)


def test_probe_checks_widths_and_fitting():
    states = [np.random.default_rng(0).normal(size=(20, 8, 3))]
    with pytest.raises(RuntimeError, match="not fitted"):
        LatentProbe(4, 2, 3).transform(states)
    probe = LatentProbe(4, 2, 3).fit(states)
    with pytest.raises(ValueError, match="layer widths"):
        probe.transform([np.zeros((5, 8, 4))])
    with pytest.raises(ValueError, match="L must be >= 2"):
        LatentProbe(4, 2, 1)
    with pytest.raises(ValueError, match="n_init must be >= 1"):
        LatentProbe(4, 2, 3, n_init=0)


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [SupervisedCNN, MaskedTokenModel])
def test_transform_before_fit_raises(cls):
    with pytest.raises(RuntimeError, match="not fitted"):
        cls(4, 2, 3).transform(np.zeros((2, 8), dtype=int))


@pytest.mark.parametrize("cls, options", [(SupervisedCNN, FAST_CNN), (MaskedTokenModel, FAST_MT)])
@pytest.mark.parametrize(
    "tokens, error, match",
    [
        (np.zeros((5, 4), dtype=int), ValueError, r"s\*\*L = 8"),
        (np.full((5, 8), 4), ValueError, r"tokens must hold values in \[0, 4\)"),
        (np.zeros((5, 8)), TypeError, "tokens must hold integers"),
        (np.zeros((0, 8), dtype=int), ValueError, r"\.fit needs at least 2 samples, got 0"),
    ],
)
def test_bad_tokens_raise(cls, options, tokens, error, match):
    labels = np.zeros(len(tokens), dtype=int)
    with pytest.raises(error, match=match):
        cls(4, 2, 3, **options).fit(tokens, labels)


def test_bad_labels_raise(small):
    _, train, _ = small
    cnn = SupervisedCNN(4, 2, 3, **FAST_CNN)
    with pytest.raises(ValueError, match="needs labels"):
        cnn.fit(train.tokens)
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, 2\)"):
        SupervisedCNN(4, 2, 3, n_classes=2, **FAST_CNN).fit(train.tokens, train.labels * 0 + 3)
    with pytest.raises(ValueError, match=r"labels must have shape \(P,\)"):
        cnn.fit(train.tokens, train.labels[:-1])


@pytest.mark.parametrize(
    "cls, options, error, match",
    [
        (SupervisedCNN, dict(epochs=0), ValueError, "epochs must be >= 1"),
        (SupervisedCNN, dict(width=0), ValueError, "width must be >= 1"),
        (SupervisedCNN, dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (SupervisedCNN, dict(lr=0.0), ValueError, r"lr must lie in \(0.0, inf\)"),
        (SupervisedCNN, dict(lr="1e-3"), TypeError, "lr must be a real number"),
        (SupervisedCNN, dict(stop_loss=-1.0), ValueError, r"stop_loss must lie in \[0.0, inf\)"),
        (SupervisedCNN, dict(n_classes=0), ValueError, "n_classes must be >= 1"),
        (MaskedTokenModel, dict(d_model=30, n_heads=4), ValueError, "d_model must be divisible by n_heads"),
        (MaskedTokenModel, dict(mask_range=(0.0, 0.5)), ValueError, r"mask_range must lie in \(0.0, 1.0\)"),
        (MaskedTokenModel, dict(mask_range=(0.6, 0.5)), ValueError, "first <= last"),
        (MaskedTokenModel, dict(mask_range=(0.5, 1.0)), ValueError, r"mask_range must lie in \(0.0, 1.0\)"),
        (MaskedTokenModel, dict(mask_range=0.5), TypeError, "mask_range must be a pair"),
        (MaskedTokenModel, dict(max_steps=0), ValueError, "max_steps must be >= 1"),
        (MaskedTokenModel, dict(patience=0), ValueError, "patience must be >= 1"),
        (MaskedTokenModel, dict(val_fraction=1.0), ValueError, r"val_fraction must lie in \(0.0, 1.0\)"),
        (MaskedTokenModel, dict(n_layers=0), ValueError, "n_layers must be >= 1"),
        (MaskedTokenModel, dict(candidates=[0]), TypeError, "candidates must be"),
        (MaskedTokenModel, dict(threads=0), ValueError, "threads must be >= 1"),
        (SupervisedCNN, dict(threads=0), ValueError, "threads must be >= 1"),
        (MaskedTokenModel, dict(n_heads=1.5), TypeError, "n_heads must be an integer"),
    ],
)
def test_bad_options_raise(cls, options, error, match):
    with pytest.raises(error, match=match):
        cls(4, 2, 3, **options)


def test_masked_token_needs_a_latent_level():
    with pytest.raises(ValueError, match="L must be >= 2"):
        MaskedTokenModel(4, 2, 1)


# ------------------------------------------------------------------- devices
@pytest.mark.parametrize("cls", [SupervisedCNN, MaskedTokenModel])
def test_devices(cls):
    assert cls(4, 2, 3, device="cpu").device == torch.device("cpu")
    assert cls(4, 2, 3, device=torch.device("cpu")).device == torch.device("cpu")
    for bad in ("gpu", "not-a-device", "meta"):
        with pytest.raises(ValueError, match="device"):
            cls(4, 2, 3, device=bad)
    with pytest.raises(TypeError, match="device must be a string or a torch.device"):
        cls(4, 2, 3, device=0)
    if not torch.cuda.is_available():
        # Built anywhere (a sweep's client may have no GPU while its workers do); fit checks the device.
        model = cls(4, 2, 3, device="cuda")
        tokens = RHM(4, 2, 2, 3, seed=0).sample(8, seed=0).tokens
        with pytest.raises(ValueError, match="not available"):
            model.fit(tokens, np.zeros(8, dtype=np.int64))


def test_progress_bar_is_optional(small, capsys):
    _, train, _ = small
    SupervisedCNN(4, 2, 3, width=8, epochs=2, progress=False).fit(train.tokens, train.labels)
    assert capsys.readouterr().err == ""
    SupervisedCNN(4, 2, 3, width=8, epochs=2, progress=True).fit(train.tokens, train.labels)
    assert "SupervisedCNN" in capsys.readouterr().err


def test_the_rest_of_lpbook_does_not_import_torch():
    code = "import sys, lpbook, lpbook.learners, lpbook.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_neural_learners_are_importable_from_the_top_level_package():
    code = (
        "import sys, lpbook\n"
        "from lpbook import ILC, TokenClustering\n"
        "assert 'torch' not in sys.modules\n"
        "from lpbook import MaskedTokenModel, SupervisedCNN\n"
        "from lpbook.learners import get\n"
        "assert get('supervised-cnn') is SupervisedCNN and get('masked-token') is MaskedTokenModel\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cls, options, module", [(SupervisedCNN, FAST_CNN, "cnn"), (MaskedTokenModel, FAST_MT, "masked")])
def test_threads_option_is_honoured_and_restored(small, monkeypatch, threads, cls, options, module):
    import importlib

    _, train, _ = small
    where = importlib.import_module(f"lpbook.neural.{module}")
    seen, real = [], where.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(where, "train", spy)
    before = torch.get_num_threads()
    cls(4, 2, 3, threads=threads, **options).fit(train.tokens, train.labels)
    assert seen == [threads] and torch.get_num_threads() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the client side of a sweep without a GPU")
@pytest.mark.parametrize("learner", ["supervised-cnn", "masked-token"])
def test_a_sweep_without_a_gpu_passes_device_cuda_to_its_workers(learner):
    from lpbook.sweep import make_points, run_point

    # The sweep's machine checks the options without a GPU (its workers may have one) ...
    (point,) = make_points(learner, [dict(v=4, m=2, s=2, L=2)], [8], 1, options={"device": "cuda"}, n_test=8)
    assert point.options == {} and point.runtime == {"device": "cuda"}  # no part of the point's key
    # ... and the learner gets the device where the point runs: here, on no GPU, it says so.
    with pytest.raises(ValueError, match="'cuda' is not available"):
        run_point(point)
