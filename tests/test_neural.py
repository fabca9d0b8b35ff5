"""Tests of what the neural learners share (lpbook.neural, lpbook.neural.training): registration, determinism,
input and option checks, devices, threads, progress bars, and torch kept out of the rest of lpbook."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpbook import RHM  # noqa: E402
from lpbook.learners import REGISTRY  # noqa: E402
from lpbook.neural import MaskedTokenModel, SupervisedCNN  # noqa: E402

# Small, fast networks for the protocol tests.
FAST_CNN = dict(width=16, epochs=3, progress=False)
FAST_MT = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10, n_init=1, progress=False)


@pytest.fixture(scope="module")
def small():
    """A v=4, m=2, s=2, L=3 grammar with a train and a test sample."""
    rhm = RHM(4, 2, 2, 3, seed=0)
    return rhm, rhm.sample(200, seed=1), rhm.sample(50, seed=2)


def weights(learner) -> torch.Tensor:
    return torch.cat([p.detach().ravel() for p in learner.network_.parameters()])


def test_learners_are_registered():
    assert REGISTRY["supervised-cnn"] is SupervisedCNN and SupervisedCNN.uses_labels
    assert REGISTRY["masked-token"] is MaskedTokenModel and not MaskedTokenModel.uses_labels


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
