"""Tests of lpbook.neural.readout: the one readout of every neural learner."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpbook import RHM, level_accuracy  # noqa: E402
from lpbook.neural import MaskedTokenModel  # noqa: E402
from lpbook.neural.readout import NeighbourReadout, candidate_names  # noqa: E402


class OracleNetwork(torch.nn.Module):
    """A network that knows the grammar: it follows the readout's contract with hand-made states.

    Layer 0 is zero. Layer 1 holds, at every position, the one-hot of the
    highest-level node that the visible tokens determine (``(level, symbol)``
    over ``L * v`` values): synonym-invariant by construction. Layer 2 holds
    the one-hot of the first visible token: informative, but not about the
    latents. ``output`` is layer 1 again.
    """

    def __init__(self, rhm: RHM):
        super().__init__()
        self.rhm = rhm
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def states(self, tokens, mask):
        rhm, (B, n) = self.rhm, tokens.shape
        visible = np.where(mask.numpy(), -1, tokens.numpy())
        levels, _ = rhm._parse(visible)
        node = np.zeros((B, rhm.L * rhm.v), dtype=np.float32)
        for level in range(1, rhm.L):
            defined = levels[level] >= 0
            rows = np.flatnonzero(defined.any(1))
            symbol = levels[level][rows, defined[rows].argmax(1)]
            node[rows] = 0
            node[rows, level * rhm.v + symbol] = 1
        first = np.zeros((B, rhm.v), dtype=np.float32)
        has = (visible >= 0).any(1)
        first[has, visible[has, (visible[has] >= 0).argmax(1)]] = 1
        spread = lambda x: torch.as_tensor(np.repeat(x[:, None, :], n, axis=1))
        return [torch.zeros(B, n, 1), spread(node), spread(first)]

    def output(self, states):
        return states[1]


@pytest.fixture(scope="module")
def grammar():
    # m = 4: the 32 productions of a level hold every one of the 8 symbols in
    # each slot, so every slot's k-means has v = 8 true clusters to find (with
    # fewer, k-means must split one symbol, see the readout's docstring).
    rhm = RHM(8, 4, 2, 3, seed=0)
    return rhm, rhm.sample(1000, seed=1), rhm.sample(300, seed=2), rhm.sample(300, seed=3)


def test_candidate_names():
    assert candidate_names(2, True) == ["layer 1", "layer 2", "output"]
    assert candidate_names(1, False) == ["layer 1"]


def test_an_oracle_network_is_read_exactly_and_the_noise_layer_is_not_chosen(grammar):
    # Reading layer 1 of the oracle must give every level exactly, in every
    # slot (which tests the alignment of the slots' clusterings), and the
    # label-free choice must prefer it to layer 2.
    rhm, train, val, test = grammar
    network = OracleNetwork(rhm)
    readout = NeighbourReadout(8, 2, 3, seed=0).fit(network, train.tokens, val.tokens)
    assert set(readout.choice_) == {1, 2}
    for level in (1, 2):
        assert readout.choice_[level] in ("layer 1", "output")
        assert readout.val_loss_[level]["layer 1"] < readout.val_loss_[level]["layer 2"]
    codes = readout.transform(network, test.tokens)
    for level in (1, 2):
        assert codes[level].shape == (300, 2 ** (3 - level)) and codes[level].dtype == np.uint8
        assert level_accuracy(test.levels[level], codes[level]) == 1.0
    fixed = NeighbourReadout(8, 2, 3, candidates=["layer 2"]).fit(network, train.tokens, val.tokens)
    assert fixed.choice_ == {1: "layer 2", 2: "layer 2"}
    assert level_accuracy(test.levels[1], fixed.transform(network, test.tokens)[1]) < 0.9


def test_readout_is_deterministic_given_the_seed(grammar):
    rhm, train, val, test = grammar
    network = OracleNetwork(rhm)
    a, b = (NeighbourReadout(8, 2, 3, seed=1).fit(network, train.tokens, val.tokens) for _ in range(2))
    assert a.val_loss_ == b.val_loss_
    for level, codes in a.transform_candidates(network, test.tokens).items():
        for name, c in codes.items():
            np.testing.assert_array_equal(c, b.transform_candidates(network, test.tokens)[level][name])


def test_a_saved_readout_keeps_its_centroids_and_codes_through_kmeans_assignment(grammar):
    """from_state keeps the fitted centroids (no k-means is refitted), and a code is the nearest centroid, as in k-means."""
    from sklearn.cluster import KMeans

    from lpbook.neural.readout import _nearest

    rhm, train, val, test = grammar
    network = OracleNetwork(rhm)
    readout = NeighbourReadout(8, 2, 3, seed=1, n_init=2).fit(network, train.tokens, val.tokens)
    loaded = NeighbourReadout.from_state(readout.get_state())
    for level, by_name in readout.fitted_.items():
        for name, (_, centroids, _) in by_name.items():
            kept = loaded.fitted_[level][name][1]
            assert all(type(c) is np.ndarray and np.array_equal(c, k) for c, k in zip(centroids, kept))
    assert loaded.transform(network, test.tokens).keys() == {1, 2}
    for level, codes in readout.transform_candidates(network, test.tokens).items():
        for name, c in codes.items():
            np.testing.assert_array_equal(c, loaded.transform_candidates(network, test.tokens)[level][name])
    points = np.random.default_rng(0).normal(size=(500, 6))
    kmeans = KMeans(n_clusters=5, n_init=1, random_state=0).fit(points)
    np.testing.assert_array_equal(_nearest(points, kmeans.cluster_centers_), kmeans.predict(points))


def test_readout_errors(grammar):
    rhm, train, val, _ = grammar
    network = OracleNetwork(rhm)
    with pytest.raises(RuntimeError, match="not fitted"):
        NeighbourReadout(8, 2, 3).transform(network, train.tokens)
    with pytest.raises(TypeError, match="states"):
        NeighbourReadout(8, 2, 3).fit(torch.nn.Linear(1, 1), train.tokens, val.tokens)
    with pytest.raises(ValueError, match=r"s\*\*L = 8"):
        NeighbourReadout(8, 2, 3).fit(network, train.tokens[:, :4], val.tokens)
    with pytest.raises(ValueError, match=r"integers in \[0, 8\)"):
        NeighbourReadout(8, 2, 3).fit(network, train.tokens + 8, val.tokens)
    with pytest.raises(ValueError, match="not offered"):
        NeighbourReadout(8, 2, 3, candidates=["layer 7"]).fit(network, train.tokens, val.tokens)
    with pytest.raises(TypeError, match="candidates"):
        NeighbourReadout(8, 2, 3, candidates=[1])
    with pytest.raises(ValueError, match="L must be >= 2"):
        NeighbourReadout(8, 2, 1)


@pytest.mark.slow
def test_a_trained_network_is_read_better_than_an_untrained_one():
    # v=8, m=2, s=2, L=2: level 1 has 16 tuples in 8 synonym pairs. After 300
    # steps of masked-token training the readout found 0.70-0.88 at level 1
    # over grammar seeds 0-2 (measured), against 0.50-0.52 for the same
    # network at initialisation; a margin of 0.15 on seed 0 (0.88 against
    # 0.52) leaves room for platform noise yet fails a readout that ignores
    # what training did. 1000 test samples give 2000 nodes: sigma < 0.012.
    rhm = RHM(8, 2, 2, 2, seed=0)
    train, test = rhm.sample(2000, seed=1), rhm.sample(1000, seed=2)
    options = dict(d_model=32, n_heads=2, lr=3e-3, eval_every=50, progress=False)
    trained = MaskedTokenModel(8, 2, 2, max_steps=300, **options).fit(train.tokens)
    untrained = MaskedTokenModel(8, 2, 2, max_steps=1, **options).fit(train.tokens)
    accuracy = [level_accuracy(test.levels[1], model.transform(test.tokens)[1]) for model in (trained, untrained)]
    assert accuracy[0] > accuracy[1] + 0.15


def test_measure_masked_token_reports_the_loss_against_the_bayes_floor():
    from lpbook import bp
    from lpbook.neural.measure import measure_fitted, measure_masked_token, seconds_per_step

    grammar = dict(v=4, m=2, s=2, L=3)
    options = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10, n_init=1)
    point = measure_masked_token(grammar, 200, seed=1, n_test=300, options=options)
    rhm = RHM(4, 2, 2, 3, seed=1)
    test = rhm.sample(300, seed=3)
    mask = MaskedTokenModel(4, 2, 3, **options).sample_mask(300, seed=3)
    assert point.bayes_loss == pytest.approx(bp.bayes_masked_token_loss(rhm, test.tokens, mask))
    # No predictor beats the Bayes floor by more than the test set's noise; an
    # untrained 20-step network stays well above it.
    assert point.excess_loss == point.test_loss - point.bayes_loss and point.excess_loss > 0.05
    # The ladder of floors ends at the Bayes floor; the validation floors are on fit's own validation pairs.
    assert sorted(point.floors) == sorted(point.val_floors) == [0, 1, 2, 3] and point.floors[3] == point.bayes_loss
    assert point.floors[2] == pytest.approx(bp.bayes_masked_token_loss(rhm, test.tokens, mask, levels=2))
    model = MaskedTokenModel(4, 2, 3, seed=1, **options, progress=False).fit(rhm.sample(200, seed=2).tokens)
    val_tokens, val_mask = model.validation_split(rhm.sample(200, seed=2).tokens)
    assert model.masked_token_loss(val_tokens, val_mask) == pytest.approx(model.curve_.best_val_loss, abs=1e-6)
    assert point.val_floors[3] == pytest.approx(bp.bayes_masked_token_loss(rhm, val_tokens, val_mask))
    # the same network measured after the fact (as a loaded one is) gives the same point, its training CPU aside
    again = measure_fitted(model, grammar, 200, seed=1, n_test=300)
    assert dataclasses.replace(again, seconds=point.seconds) == point and again.seconds == model.curve_.seconds[-1]
    with pytest.raises(ValueError, match="model was built for"):
        measure_fitted(model, grammar, 200, seed=2)
    # a point kept as JSON (a sweep row's extra) comes back whole, the curve's CPU seconds included
    from lpbook.neural.measure import MaskedTokenPoint

    back = MaskedTokenPoint.from_record(json.loads(json.dumps({"L": 3, **point.to_record()})))
    assert back == point and back.seconds == point.seconds and back.curve.seconds == point.curve.seconds
    assert back.floors.keys() == point.floors.keys() and back.excess_loss == point.excess_loss
    below_root = bp.masked_token_nll(rhm, test.tokens, mask, levels=2)[mask]
    assert point.loss_noise == pytest.approx(2 * below_root.std() / np.sqrt(mask.sum())) and point.loss_noise > 0
    assert set(point.accuracy) == set(point.clean_accuracy) == set(point.choice) == {1, 2}
    assert all(0 <= a <= 1 for a in [*point.accuracy.values(), *point.clean_accuracy.values()])
    assert point.curve.steps == [10, 20] and point.seconds > 0
    assert point.curve.seconds[-1] > 0 and len(point.curve.seconds) == 2
    assert seconds_per_step(grammar, options, steps=3) > 0
    assert seconds_per_step(grammar, {**options, "schedule": "cosine", "warmup": 300}, steps=3) > 0  # warmup > steps
    with pytest.raises(ValueError, match="steps must be >= 1"):
        seconds_per_step(grammar, options, steps=0)


def test_measure_network_reads_both_networks_against_the_bayes_floor():
    from lpbook import bp
    from lpbook.neural import Data2Vec
    from lpbook.neural.measure import measure_fitted, measure_network

    grammar = dict(v=4, m=2, s=2, L=3)
    rhm = RHM(4, 2, 2, 3, seed=1)
    train, test = rhm.sample(200, seed=2), rhm.sample(300, seed=3)  # the sweep point's strings for seed 1
    options = dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, n_init=1, progress=False)
    mlm = MaskedTokenModel(4, 2, 3, seed=1, eval_every=10, **options).fit(train.tokens)
    point = measure_network(mlm, grammar, 200, seed=1, n_test=300)
    reference = measure_fitted(mlm, grammar, 200, seed=1, n_test=300)
    assert (point.accuracy, point.test_loss, point.bayes_loss) == (reference.accuracy, reference.test_loss,
                                                                   reference.bayes_loss)
    assert point.steps == 20 and point.converged == (point.excess_loss <= bp.CONVERGED_EXCESS)
    assert point.trends == {} and not point.improving  # two evaluations: too few for a trend
    assert point.row() == {"L": 3, "P": 200, "seed": 1, "accuracy": point.accuracy, "excess_loss": point.excess_loss}
    d2v = Data2Vec(4, 2, 3, seed=1, K=1, probe_steps=20, **options).fit(train.tokens)
    probed = measure_network(d2v, grammar, 200, seed=1, n_test=300)
    mask = d2v.sample_mask(300, seed=3)
    assert probed.test_loss == pytest.approx(d2v.masked_token_loss(test.tokens, mask))
    assert probed.bayes_loss == pytest.approx(bp.bayes_masked_token_loss(rhm, test.tokens, mask))
    assert set(probed.accuracy) == {1, 2}
    with pytest.raises(ValueError, match="model was built for"):
        measure_network(mlm, grammar, 200, seed=2)
    with pytest.raises(TypeError, match="MaskedTokenModel or Data2Vec"):
        measure_network(object(), grammar, 200)


def test_a_measured_network_carries_the_trends_of_its_losses_over_its_last_evaluations():
    from lpbook.neural.measure import TREND_EVALUATIONS, measure_network

    grammar = dict(v=4, m=2, s=2, L=3)
    train = RHM(4, 2, 2, 3, seed=1).sample(200, seed=2)
    evaluations = TREND_EVALUATIONS + 5
    mlm = MaskedTokenModel(4, 2, 3, seed=1, d_model=8, n_heads=2, n_layers=1, max_steps=10 * evaluations,
                           eval_every=10, patience=evaluations, n_init=1, progress=False).fit(train.tokens)
    assert len(mlm.curve_.val_loss) == evaluations
    point = measure_network(mlm, grammar, 200, seed=1, n_test=300)
    assert point.trends == {loss: mlm.curve_.trend(loss, last=TREND_EVALUATIONS) for loss in ("train", "val")}
    slope, width = point.trends["val"]
    assert point.improving == (slope + width < 0) and point.stopped == mlm.curve_.stopped
    assert point.unfinished == (point.improving and point.stopped == "patience")


def test_training_excess_is_the_excess_on_the_strings_fit_trained_on():
    """On its own training split a network fits better than on new strings when it has few of them; the value
    is the loss over the Bayes floor on those strings, under masks drawn from seed + 2."""
    from lpbook import bp
    from lpbook.neural.measure import measure_network, training_excess

    grammar = dict(v=4, m=2, s=2, L=3)
    rhm = RHM(4, 2, 2, 3, seed=1)
    train = rhm.sample(40, seed=2)  # the sweep point's training strings for seed 1
    mlm = MaskedTokenModel(4, 2, 3, seed=1, d_model=16, n_heads=2, n_layers=1, max_steps=400, eval_every=400,
                           n_init=1, progress=False).fit(train.tokens)
    strings = mlm.training_strings(train.tokens)[:10]
    assert strings.shape == (10, 8) and len(mlm.training_strings(train.tokens)) == 36  # 4 held out
    mask = mlm.sample_mask(10, seed=3)
    assert training_excess(mlm, grammar, 40, seed=1, n=10) == pytest.approx(
        mlm.masked_token_loss(strings, mask) - bp.bayes_masked_token_loss(rhm, strings, mask))
    assert training_excess(mlm, grammar, 40, seed=1) < measure_network(mlm, grammar, 40, seed=1).excess_loss - 0.1
    with pytest.raises(ValueError, match="n must be"):
        training_excess(mlm, grammar, 40, seed=1, n=0)
