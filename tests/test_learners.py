"""Tests of the learner protocol as users call it: any integer tokens, one labels rule,
one dtype for codes, sizes checked up front, scikit-learn conventions, save and load."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lpbook import ILC, RHM, ILCWithProbe, SupervisedClustering, TokenClustering, level_accuracy
from lpbook.grammar import smallest_uint
from lpbook.learners import REGISTRY, Learner, available, describe

from conftest import ends_at_total

CLUSTERING = [TokenClustering, SupervisedClustering, ILC, ILCWithProbe]


def neural_learners():
    """The torch learners with small, fast options, or none without torch."""
    try:
        from lpbook.neural import SLC, MaskedTokenModel, SupervisedCNN
    except ModuleNotFoundError:
        return []
    return [
        (SupervisedCNN, dict(width=8, epochs=2, progress=False)),
        (MaskedTokenModel, dict(d_model=8, n_heads=2, n_layers=1, max_steps=20, eval_every=10, n_init=1, progress=False)),
        (SLC, dict(steps=10, restarts=2, progress=False)),
    ]


EVERY_LEARNER = [(cls, {}) for cls in CLUSTERING] + neural_learners()
IDS = [cls.__name__ for cls, _ in EVERY_LEARNER]


@pytest.fixture(scope="module")
def data():
    rhm = RHM(4, 2, 2, 3, seed=0)
    return rhm, rhm.sample(300, seed=1), rhm.sample(60, seed=2)


def fitted(cls, options, train, **more):
    learner = cls(v=4, s=2, L=3, seed=0, **options, **more)
    return learner.fit(train.tokens, train.labels if cls.uses_labels else None)


# ------------------------------------------------------------ integer tokens
CONVERSIONS = {
    "uint8": lambda a: a.astype(np.uint8),
    "int8": lambda a: a.astype(np.int8),
    "int32": lambda a: a.astype(np.int32),
    "int64": lambda a: a.astype(np.int64),
    "list": lambda a: a.tolist(),
    "np.array(list)": lambda a: np.array(a.tolist()),
}


@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_codes_do_not_depend_on_the_integer_type_of_the_tokens(cls, options, data):
    _, train, test = data
    codes = {}
    for name, convert in CONVERSIONS.items():
        learner = cls(v=4, s=2, L=3, seed=0, **options)
        labels = convert(np.asarray(train.labels)) if cls.uses_labels else None
        learner.fit(convert(np.asarray(train.tokens)), labels)
        codes[name] = learner.transform(convert(np.asarray(test.tokens)))
    reference = codes["uint8"]
    for name, other in codes.items():
        assert other.keys() == reference.keys(), name
        for level in reference:
            assert other[level].dtype == reference[level].dtype, (name, level)
            assert np.array_equal(other[level], reference[level]), (name, level)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), cls=st.sampled_from(CLUSTERING), dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint64]))
def test_clustering_codes_do_not_depend_on_the_dtype_property(seed, cls, dtype):
    rhm = RHM(4, 2, 2, 3, seed=seed)
    train, test = rhm.sample(200, seed=seed), rhm.sample(30, seed=seed + 1)
    labels = train.labels if cls.uses_labels else None
    expected = cls(4, 2, 3, seed=seed).fit(train.tokens, labels).transform(test.tokens)
    got = cls(4, 2, 3, seed=seed).fit(train.tokens.astype(dtype), labels).transform(test.tokens.astype(dtype))
    assert all(np.array_equal(expected[level], got[level]) for level in expected)


# ------------------------------------------------------------------- labels
@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_labels_are_checked_by_every_learner(cls, options, data):
    _, train, _ = data
    learner = cls(v=4, s=2, L=3, seed=0, **options)
    with pytest.raises(ValueError, match=r"labels must have shape \(P,\) = \(300,\)"):
        learner.fit(train.tokens, np.zeros(299, dtype=int))
    with pytest.raises(TypeError, match="labels must hold integers"):
        learner.fit(train.tokens, np.array(["a"] * 300))
    with pytest.raises(ValueError, match=r"labels must hold values in \[0, "):
        learner.fit(train.tokens, -np.ones(300, dtype=int))
    if cls.uses_labels:
        with pytest.raises(ValueError, match="needs labels"):
            learner.fit(train.tokens)


@pytest.mark.parametrize("cls", [TokenClustering, ILC])
def test_learners_without_labels_ignore_valid_labels(cls, data):
    _, train, test = data
    plain = cls(4, 2, 3).fit(train.tokens).transform(test.tokens)
    given_labels = cls(4, 2, 3).fit(train.tokens, np.arange(300)).transform(test.tokens)
    assert all(np.array_equal(plain[level], given_labels[level]) for level in plain)


# --------------------------------------------------------------- code dtypes
@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_codes_of_every_level_come_in_the_smallest_unsigned_dtype(cls, options, data):
    _, train, test = data
    learner = fitted(cls, options, train)
    codes = learner.transform(test.tokens)
    assert tuple(codes) == learner.levels
    for level, level_codes in codes.items():
        alphabet = learner.n_classes if level == learner.L else 4
        assert level_codes.dtype == smallest_uint(alphabet), (level, level_codes.dtype)
        assert level_codes.shape == (test.P, 2 ** (3 - level))


def test_root_and_levels_share_the_dtype_rule_with_many_classes():
    rhm = RHM(32, 2, 2, 2, n_classes=300, seed=0)  # root alphabet > 256: uint16 at the root, uint8 below
    train, test = rhm.sample(500, seed=0), rhm.sample(50, seed=1)
    codes = ILCWithProbe(32, 2, 2, n_classes=300).fit(train.tokens, train.labels).transform(test.tokens)
    assert codes[1].dtype == np.uint8 and codes[2].dtype == np.uint16 == test.levels[2].dtype


# --------------------------------------------------------------------- sizes
def test_a_huge_grammar_is_refused_at_once():
    with pytest.raises(ValueError, match=r"L=1000000 is too large: one string .* would need about 10\^301030 bytes"):
        RHM(v=8, m=2, s=2, L=10**6)
    with pytest.raises(ValueError, match=r"P=10000000000000 is too large: .* would need [0-9.]+ TiB"):
        RHM(8, 2, 2, 3).sample(10**13, seed=0)


def test_a_huge_number_of_clusters_is_refused_before_any_work(data, monkeypatch):
    _, train, _ = data
    learner = ILC(4, 2, 3, n_clusters=10**6)

    def no_work(*args, **kwargs):
        raise AssertionError("fit started counting before checking the sizes")

    monkeypatch.setattr(ILC, "_count", no_work)
    with pytest.raises(ValueError, match=r"n_clusters=1000000 is too large: the level-2 count table .* would need"):
        learner.fit(train.tokens)
    with pytest.raises(ValueError, match=r"max_clusters=100000 is too large"):
        ILC(4, 2, 3, n_clusters="auto", max_clusters=10**5).fit(train.tokens)


def test_level_accuracy_with_huge_codes():
    assert level_accuracy([0, 1], [0, 10**12]) == 1.0
    assert level_accuracy([0, 1, 1], [7, 10**12, 10**12]) == 1.0
    n = 10**6  # a million distinct codes on each side: the confusion matrix would need 8 TB
    with pytest.raises(ValueError, match=r"learned_codes=<1000000 distinct codes> is too large: the confusion matrix"):
        level_accuracy(np.arange(n), np.arange(n))


# ---------------------------------------------------- scikit-learn conventions
def test_repr_shows_the_options_that_differ_from_their_defaults():
    assert repr(ILC(8, 2, 3)) == "ILC(v=8, s=2, L=3, seed=0)"
    assert repr(ILC(v=8, s=2, L=3, context="cousin_symbols", method="single")) == (
        "ILC(v=8, s=2, L=3, seed=0, context='cousin_symbols', method='single')"
    )
    assert repr(ILCWithProbe(8, 2, 3, seed=4, n_labelled=10, n_init=3)) == (
        "ILCWithProbe(v=8, s=2, L=3, seed=4, n_init=3, n_labelled=10)"
    )


@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_get_params_set_params_and_sklearn_clone(cls, options, data):
    clone = pytest.importorskip("sklearn.base").clone
    _, train, test = data
    learner = cls(v=4, s=2, L=3, seed=1, **options)
    params = learner.get_params()
    assert {"v", "s", "L", "seed"} <= params.keys() and params["seed"] == 1
    assert all(params[k] == v for k, v in options.items())
    copy = clone(learner)
    assert type(copy) is cls and copy.get_params() == params and repr(copy) == repr(learner)
    learner.fit(train.tokens, train.labels if cls.uses_labels else None)
    assert learner.set_params(seed=2) is learner
    assert learner.get_params()["seed"] == 2 and learner.seed == 2
    with pytest.raises(RuntimeError, match="not fitted"):  # a new parameter forgets the fit
        learner.transform(test.tokens)
    with pytest.raises(ValueError, match="has no parameter bogus"):
        learner.set_params(bogus=1)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        learner.set_params(seed=-1)


# ----------------------------------------------------------------- save, load
@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_save_and_load_give_identical_codes(cls, options, data, tmp_path):
    _, train, test = data
    extra = dict(n_clusters="auto") if cls is ILC else {}
    learner = fitted(cls, options, train, **extra)
    learner.save(tmp_path / "learner.npz")
    for loader in (Learner, cls):
        loaded = loader.load(tmp_path / "learner.npz")
        assert type(loaded) is cls and loaded.get_params() == learner.get_params()
        expected, got = learner.transform(test.tokens), loaded.transform(test.tokens)
        assert expected.keys() == got.keys()
        for level in expected:
            assert got[level].dtype == expected[level].dtype and np.array_equal(got[level], expected[level])


def test_load_checks_the_file_and_the_class(data, tmp_path):
    _, train, _ = data
    ILC(4, 2, 3).fit(train.tokens).save(tmp_path / "ilc.npz")
    with pytest.raises(TypeError, match="holds a ILC, not a TokenClustering"):
        TokenClustering.load(tmp_path / "ilc.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"not a learner saved by lpbook \(Learner.save\): it holds other arrays \(x.npy\)"):
        Learner.load(tmp_path / "other.npz")
    unfitted = ILC(4, 2, 3, method="single")
    unfitted.save(tmp_path / "unfitted.npz")
    back = Learner.load(tmp_path / "unfitted.npz")
    assert repr(back) == repr(unfitted) and not hasattr(back, "assignments_")
    assert Learner.load(tmp_path / "ilc.npz", seed=5).seed == 5  # parameters can be overridden


def test_loading_anything_but_a_saved_learner_gives_one_clear_error(data, tmp_path):
    import io
    import json
    import pickle

    _, train, _ = data
    good = tmp_path / "ilc.npz"
    ILC(4, 2, 3).fit(train.tokens).save(good)
    saved = good.read_bytes()
    with np.load(good) as file:
        arrays = {name: file[name] for name in file.files}
    header = json.loads(str(arrays["__header__"]))
    npy, bad_json, missing_array, wrong_format = (io.BytesIO() for _ in range(4))
    np.save(npy, np.arange(3))
    np.savez(bad_json, __header__=np.array("{not json"))
    np.savez(missing_array, __header__=arrays["__header__"])  # the header names arrays that are not there
    np.savez(wrong_format, **(arrays | {"__header__": np.array(json.dumps(header | {"format": 7}))}))
    middle = len(saved) // 2
    files = {
        "empty": b"",
        "truncated": saved[:middle],
        "flipped": saved[:middle] + bytes([saved[middle] ^ 0xFF]) + saved[middle + 1 :],
        "text": b"v,m,s\n4,2,3\n",
        "pickle": pickle.dumps({"v": 4}),
        "npy": npy.getvalue(),
        "bad-header": bad_json.getvalue(),
        "missing-arrays": missing_array.getvalue(),
        "wrong-format": wrong_format.getvalue(),
    }
    for name, content in files.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(ValueError) as info:
            Learner.load(path)
        message = str(info.value)
        assert message.startswith(f"{str(path)!r} is not a learner saved by lpbook (Learner.save): "), (name, message)
        assert "pickle" not in message.removeprefix(repr(str(path))).lower(), (name, message)


class Holder(Learner):
    """A learner whose fitted state is one saved object, as the default hooks write it."""

    def __init__(self, v, s, L, seed=0):
        super().__init__(v, s, L, seed)

    def fit(self, tokens, labels=None):
        from lpbook.learners import OBJECT_KEY

        self.thing_ = {OBJECT_KEY: "lpbook.neural.training:LearningCurve", "state": {}}
        return self


def test_a_saved_state_rebuilds_only_objects_of_lpbook(tmp_path):
    """A fitted state names the classes of its saved objects; load rebuilds only classes of lpbook."""
    import json

    path = tmp_path / "holder.npz"
    Holder(4, 2, 3).fit(None).save(path)
    with np.load(path) as file:
        arrays = {name: file[name] for name in file.files}
    header = json.loads(str(arrays["__header__"]))
    for name, message in [("os:system", "only objects of lpbook are rebuilt"),
                          ("lpbook.grammar:smallest_uint", "no class of lpbook with a from_state")]:
        text = json.dumps(header).replace("lpbook.neural.training:LearningCurve", name)
        np.savez(path, **(arrays | {"__header__": np.array(text)}))
        with pytest.raises(ValueError, match=f"its fitted state is damaged .*{message}"):
            Learner.load(path)


def test_learner_table_lists_every_learner():
    names = available()
    assert {"ilc", "ilc-probe", "token-clustering", "supervised-clustering"} <= set(names)
    table = {entry["name"]: entry for entry in describe()}
    assert table["ilc"]["labels"] is False and table["ilc-probe"]["labels"] is True
    assert table["ilc"]["options"]["method"]["default"] == "'kmeans'"
    assert {"n_classes", "n_labelled", "context"} <= table["supervised-clustering"]["options"].keys()
    for name in names:  # every learner of the book says which levels it returns
        options = {"progress": False} if "progress" in table[name]["options"] else {}
        assert REGISTRY[name](v=4, s=2, L=3, **options).levels, name


def test_the_learner_table_shows_real_defaults_and_every_option_s_valid_values():
    from lpbook.clustering import METHODS
    from lpbook.contexts import CONTEXTS

    own = [entry for entry in describe() if REGISTRY[entry["name"]].__module__.startswith("lpbook.")]  # not a test's
    table = {entry["name"]: entry["options"] for entry in own}
    for name, options in table.items():
        for option, shown in options.items():
            assert shown["values"], f"{name}: option {option} lists no valid values"
            assert shown["default"] != "null", f"{name}: option {option} shows no real default"
    assert table["ilc"]["context"]["default"] == "'cousin_tuples'"
    assert table["token-clustering"]["context"]["default"] == "'leaf_tuples'"
    assert table["supervised-clustering"]["context"]["default"] == "'labels'"
    assert table["ilc"]["n_clusters"]["default"] == "v" and table["ilc"]["max_clusters"]["default"] == "2*v"
    assert all(repr(c) in table["ilc"]["context"]["values"] for c in CONTEXTS)
    assert all(repr(m) in table["ilc"]["method"]["values"] for m in METHODS)
    if "slc" in table:  # the neural learners, with torch
        from lpbook.neural.data2vec import TEACHER_INPUTS
        from lpbook.neural.slc import MODES
        from lpbook.neural.training import SCHEDULES

        assert all(repr(m) in table["slc"]["mode"]["values"] for m in MODES)
        assert all(repr(t) in table["data2vec"]["teacher_input"]["values"] for t in TEACHER_INPUTS)
        assert all(repr(s) in table["masked-token"]["schedule"]["values"] for s in SCHEDULES)
        assert table["masked-token"]["mask_range"]["default"] == "[0.2, 0.95]"
        assert table["supervised-cnn"]["n_classes"]["default"] == "v"


def test_readme_table_lists_every_learner_with_its_labels_and_options():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `([\w-]+)` \| (yes|no) \| (.*) \|$", readme, re.M)
    table = {entry["name"]: entry for entry in describe()}
    listed = {name for _, name, _, _ in rows}
    assert set(table) <= listed, "the README's learner table must list every learner"
    if importlib.util.find_spec("torch") is not None:  # without torch, the neural learners are not registered
        assert listed == set(table), "the README's learner table lists a learner that is not registered"
    rows = [row for row in rows if row[1] in table]
    previous: set = set()
    for cls_name, name, labels, options in rows:
        listed = set(re.findall(r"`(\w+)`", options))
        if options.startswith("the same, plus"):
            listed |= previous
        assert table[name]["cls"] == cls_name and table[name]["labels"] == (labels == "yes"), name
        assert listed == set(table[name]["options"]), (name, listed ^ set(table[name]["options"]))
        previous = listed


def test_readme_says_which_levels_each_learner_returns():
    import re
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    said = re.search(r"A learner returns codes for the levels of its `levels`: (.*?) return levels 1 to L-1 .*?; "
                     r"(.*?) return levels 1 to L, .*?; (.*?) returns the root L only\.", readme)
    assert said, "the README must say which levels each learner returns"
    claimed = {}
    for levels, names in zip(("1..L-1", "1..L", "L"), said.groups()):
        claimed |= {name: levels for name in re.findall(r"`(\w+)`", names)}
    returned = {}
    for entry in describe():
        if not REGISTRY[entry["name"]].__module__.startswith("lpbook."):  # a test's own learner
            continue
        options = {"progress": False} if "progress" in entry["options"] else {}
        levels = REGISTRY[entry["name"]](v=4, s=2, L=3, **options).levels
        returned[entry["cls"]] = {(1, 2): "1..L-1", (1, 2, 3): "1..L", (3,): "L"}[levels]
    assert {name: claimed.get(name) for name in returned} == returned


def test_load_gives_back_list_and_tuple_parameters_as_given(data, tmp_path):
    torch_learners = pytest.importorskip("lpbook.neural")
    _, train, _ = data
    options = dict(d_model=8, n_heads=2, n_layers=1, max_steps=5, eval_every=5, n_init=1, progress=False)
    for mask_range in ([0.3, 0.9], (0.3, 0.9)):
        learner = torch_learners.MaskedTokenModel(4, 2, 3, mask_range=mask_range, **options).fit(train.tokens)
        learner.save(tmp_path / "learner.npz")
        loaded = Learner.load(tmp_path / "learner.npz")
        assert loaded.get_params() == learner.get_params()
        assert type(loaded.get_params()["mask_range"]) is type(mask_range)


# ------------------------------------------------------------ input checks, progress
@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_fit_refuses_fewer_samples_than_the_learner_can_use(cls, options, data):
    _, train, _ = data
    learner = cls(v=4, s=2, L=3, seed=0, **options)
    minimum = learner.min_samples
    assert minimum >= 2

    def fit(P):
        return learner.fit(train.tokens[:P], train.labels[:P] if cls.uses_labels else None)

    for P in range(minimum):
        with pytest.raises(ValueError, match=rf"{cls.__name__}.fit needs at least {minimum} samples, got {P}"):
            fit(P)
    assert fit(minimum) is learner


@pytest.mark.parametrize("cls, options", EVERY_LEARNER, ids=IDS)
def test_progress_must_be_a_bool(cls, options):
    for bad in ("maybe", "false", 1, None):
        with pytest.raises(TypeError, match=rf"progress must be True or False, got {bad!r}"):
            cls(v=4, s=2, L=3, **(options | {"progress": bad}))


@pytest.mark.parametrize("cls", CLUSTERING, ids=[cls.__name__ for cls in CLUSTERING])
def test_clustering_fits_show_a_bar_on_request_that_ends_at_its_total(cls, data, capsys):
    _, train, _ = data
    fitted(cls, {}, train)
    assert capsys.readouterr().err == "", "a clustering learner shows no bar by default"
    fitted(cls, {}, train, progress=True)
    err = capsys.readouterr().err
    assert cls.__name__ in err and ends_at_total(err), err


def test_every_learner_is_found_in_the_source_without_importing_it():
    from lpbook.learners import available, learner_modules, neural_learners

    found = learner_modules()
    available()
    ours = {name: (cls.__module__, cls.__name__) for name, cls in REGISTRY.items() if cls.__module__.startswith("lpbook.")}
    assert ours.items() <= found.items()
    if importlib.util.find_spec("torch") is not None:
        assert found == ours
    assert set(neural_learners()) == {"data2vec", "masked-token", "slc", "supervised-cnn"}

