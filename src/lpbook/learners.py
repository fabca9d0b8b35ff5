"""The protocol that every learner of the book implements.

A learner is built from the grammar's shape and a seed, with its own options as
keywords, ``Learner(v=..., s=..., L=..., seed=0, **options)``, and offers

- ``fit(tokens, labels=None) -> self``: learn from training tokens of shape
  ``(P, s**L)`` (and root labels of shape ``(P,)`` for learners that use them);
- ``transform(tokens) -> {level: codes}``: for each level in :attr:`Learner.levels`,
  codes of shape ``(P, s**(L - level))`` holding ints in ``[0, V)``, where ``V``
  is the level's alphabet size (``v`` unless an option changes it,
  ``n_classes`` at the root ``level == L``).

Inputs. ``tokens`` may be any integer array or nested list (uint8, int8,
int64, ``.tolist()``...) with values in ``[0, v)``; every learner gives the
same codes whatever the dtype. ``labels`` follow one rule: when given, they
are always checked (shape ``(P,)``, integers, ``>= 0``, and ``< n_classes``
for learners that use them); learners whose ``uses_labels`` is false then
ignore them, learners that use them raise when they are missing.

Outputs. Codes of every level a learner returns (its :attr:`Learner.levels`;
the root too, for those that return it) come in the smallest unsigned dtype
that holds the level's alphabet (:func:`lpbook.grammar.smallest_uint`, so
uint8 up to 256 symbols), the dtype of :attr:`lpbook.grammar.Sample.levels`.

Seeds. ``seed`` is the book's name for what scikit-learn calls
``random_state``: an int ``>= 0``, and learners are deterministic given it.

scikit-learn conventions. Every learner records the arguments it was built
with: ``get_params()`` returns them (so ``sklearn.base.clone`` works),
``set_params(**params)`` rebuilds the learner with some of them changed (and
forgets any fit), and ``repr`` shows ``v, s, L, seed`` and every option that
differs from its default.

Saving. ``learner.save(path)`` writes one ``.npz`` file (a zip of numpy
arrays, read back with ``allow_pickle=False``: never a pickle) holding the
learner's class, its parameters as JSON and its fitted state;
``Learner.load(path)`` (or ``ILC.load(path)``, which also checks the class)
rebuilds the learner from its parameters and restores the state, so that
``transform`` gives identical codes. The state comes from two hooks:

- ``_fitted_state() -> dict``: a tree of dicts (int or str keys), lists and
  leaves, each leaf a numpy array or a JSON value (None, bool, int, float,
  str). The default returns every public fitted attribute (a name ending in
  ``_``), which suffices for learners whose fitted state is arrays, dicts of
  arrays and numbers (the clustering learners);
- ``_restore_state(state)``: receives that tree back (arrays as numpy
  arrays) on a learner freshly built from the saved parameters, and sets the
  fitted attributes. The default sets one attribute per key.

Torch learners implement one more hook, ``_build_networks() -> dict``: fresh
networks built from the learner's parameters, keyed by the fitted attribute
that holds each (``{"network_": HierarchicalCNN(...)}``), the same code that
``fit`` uses to build them. The default hooks then save each network's
``state_dict`` as arrays, and on load rebuild the networks, load the
``state_dict`` and move them to ``self.device``. A fitted object that saves
itself (a method ``get_state()`` returning such a tree, and a class method
``from_state(state)`` rebuilding the object, as the shared readout
:class:`lpbook.neural.NeighbourReadout` and the learning curve
:class:`lpbook.neural.training.LearningCurve` do) is saved and restored by the
default hooks too. A learner with other fitted objects extends both hooks for
those only: :class:`lpbook.clustering.LabelledClustering` for its root probe,
:class:`lpbook.neural.Data2Vec` for its traced networks. Such an object is
rebuilt only from a class of ``lpbook`` (see :data:`OBJECT_KEY`).

Learners register themselves under a short name with :func:`register`,
which is how the command line finds them; :func:`learner_modules` finds every
learner of ``lpbook`` in its source, without importing it (the neural ones need torch). ``lpbook learners`` prints every
registered learner with its command-line name, whether it needs labels, and
its options with their defaults (:func:`describe`); the README holds the same
table for the learners of the book (a test keeps the two in step).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import os
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from ._files import atomic_write
from ._validate import check_int, check_int_array, check_range
from .grammar import smallest_uint

#: Learners by their command-line name, filled by :func:`register`.
REGISTRY: dict[str, type[Learner]] = {}

#: What a neural learner says where torch is missing.
NEEDS_TORCH = ("needs torch, which is not installed: install lpbook's neural extra, lpbook[neural] "
               "(pip install '.[neural]' in lpbook's repository, or pip install 'torch>=2.2')")


def torch_missing(what: str) -> ModuleNotFoundError:
    """The error for ``what`` (a learner, a module) where torch is not installed; its ``name`` is ``"torch"``."""
    return ModuleNotFoundError(f"{what} {NEEDS_TORCH}", name="torch")


def register(name: str):
    """Class decorator: make a learner available as ``name`` (e.g. on the command line)."""

    def decorate(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"a learner is already registered as {name!r}")
        REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorate


@functools.cache
def learner_modules() -> dict[str, tuple[str, str]]:
    """Every learner of lpbook, ``{name: (module, class name)}``, found without importing anything.

    Read from the package's source: each class decorated with
    ``@register("name")``. So a new learner is known, to :func:`get`, to
    ``lpbook learners`` and to ``lpbook.ClassName``, once its module holds it;
    those of ``lpbook.neural`` are known where torch is missing too (see :func:`unavailable`).
    """
    root = Path(__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "@register(" not in text:
            continue
        module = ".".join(("lpbook", *path.relative_to(root).with_suffix("").parts))
        for node in ast.parse(text).body:
            for decorator in getattr(node, "decorator_list", ()):
                if (isinstance(node, ast.ClassDef) and isinstance(decorator, ast.Call)
                        and getattr(decorator.func, "id", None) == "register" and decorator.args
                        and isinstance(decorator.args[0], ast.Constant)):
                    found[decorator.args[0].value] = (module, node.name)
    return found


def neural_learners() -> dict[str, str]:
    """The learners of ``lpbook.neural``, which need torch: ``{name: class name}`` (see :func:`learner_modules`)."""
    return {name: cls for name, (module, cls) in learner_modules().items() if module.startswith("lpbook.neural.")}


def available() -> list[str]:
    """The sorted names of every registered learner, importing the learner modules first.

    The neural learners are left out when torch is not installed (see :func:`unavailable`).
    """
    for module in sorted({module for module, _ in learner_modules().values()}):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != "torch":
                raise
    return sorted(REGISTRY)


def unavailable() -> dict[str, str]:
    """The learners that cannot be loaded here, ``{name: class name}``: the neural ones where torch is missing."""
    available()
    return {name: cls for name, cls in neural_learners().items() if name not in REGISTRY}


def get(name: str) -> type[Learner]:
    """The learner registered as ``name``, importing the learner modules if needed.

    Raises ``ValueError`` listing the registered names when there is none, and
    ``ModuleNotFoundError`` saying how to install torch for a neural learner where it is missing.
    """
    if name not in REGISTRY:
        available()
    if name not in REGISTRY and name in neural_learners():
        raise torch_missing(f"learner {name!r}")
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise ValueError(f"learner must be a registered name (registered: {known}), got {name!r}")
    return REGISTRY[name]


#: Parameters that :meth:`Learner.__repr__` always shows.
_SHOWN = ("v", "s", "L", "seed")
#: Version of the file format of :meth:`Learner.save`.
SAVE_FORMAT = 1


def _recording(init):
    """Wrap a learner's ``__init__`` so that it records the arguments it was called with.

    After ``init`` returns, its named arguments (defaults filled in, ``*args``
    and ``**kwargs`` left out) are merged into ``self._params`` and their
    defaults into ``self._defaults``. Subclass ``__init__`` methods run their
    wrapper last, so the arguments the user gave win over what a subclass
    passes on to ``super().__init__``.
    """
    signature = inspect.signature(init)
    named = [
        p for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.__dict__.setdefault("_params", {}).update({p.name: bound.arguments[p.name] for p in named})
        self.__dict__.setdefault("_defaults", {}).update({p.name: p.default for p in named})

    return wrapper


def _differs(value, default) -> bool:
    if value is default:
        return False
    try:
        return not bool(value == default)
    except (TypeError, ValueError):  # e.g. arrays
        return True


#: Marks, in a saved fitted state, an object saved by its ``get_state()`` and rebuilt by its class's
#: ``from_state``: the class, as ``module:qualname``, which must be of ``lpbook`` (:func:`_saved_class`).
OBJECT_KEY = "__object__"


def _saved_class(name: str) -> type:
    """The class that a saved fitted state names as ``module:qualname`` (:data:`OBJECT_KEY`): only one of
    ``lpbook`` with a ``from_state``, so that a file never makes :meth:`Learner.load` import anything else."""
    module, _, qualname = name.partition(":")
    if module.split(".")[0] != "lpbook":
        raise ValueError(f"it names the object {name!r}, and only objects of lpbook are rebuilt")
    found = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and callable(getattr(found, "from_state", None))):
        raise ValueError(f"it names the object {name!r}, which is no class of lpbook with a from_state")
    return found


def _pack(value, arrays: dict, where: str):
    """``value`` as JSON, its numpy arrays moved into ``arrays`` (see the module docstring)."""
    if isinstance(value, np.ndarray):
        name = f"array{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if isinstance(value, dict):
        if not all(isinstance(k, (int, str)) and not isinstance(k, bool) for k in value):
            raise TypeError(f"cannot save {where}: dict keys must be int or str")
        return {"dict": [[k, _pack(v, arrays, f"{where}[{k!r}]")] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [_pack(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(
        f"cannot save {where} of type {type(value).__name__}: override _fitted_state and _restore_state "
        "(see lpbook.learners)"
    )


def _unpack(packed, arrays):
    """The inverse of :func:`_pack`."""
    if "array" in packed:
        return arrays[packed["array"]]
    if "dict" in packed:
        return {k: _unpack(v, arrays) for k, v in packed["dict"]}
    if "list" in packed:
        return [_unpack(v, arrays) for v in packed["list"]]
    return packed["value"]


def _not_saved(path, what: str) -> ValueError:
    """The one error of :meth:`Learner.load` for a file that is not a saved learner: names ``path`` and says ``what``."""
    return ValueError(f"{os.fspath(path)!r} is not a learner saved by lpbook (Learner.save): {what}")


def _read_saved(path) -> tuple[dict, dict, type]:
    """The header, the arrays and the learner class of the file ``path`` that :meth:`Learner.save` wrote.

    Anything else (not a zip of arrays, truncated, damaged, or another
    program's ``.npz``) raises :func:`_not_saved`'s ``ValueError``; a missing
    file raises ``FileNotFoundError``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise _not_saved(path, "it is a folder")
    try:  # np.load would take a file that is no zip for a pickle
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise _not_saved(path, "it is not a zip of arrays (.npz), or it is truncated") from None
    if "__header__.npy" not in names:
        raise _not_saved(path, f"it holds other arrays ({', '.join(names[:5]) or 'none'}) and no header")
    try:
        with np.load(path, allow_pickle=False) as file:
            header = json.loads(str(file["__header__"]))
            arrays = {name: file[name] for name in file.files if name != "__header__"}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if "pickle" not in str(exc) else "it holds Python objects"
        raise _not_saved(path, f"it is damaged ({detail})") from None
    if not isinstance(header, dict) or header.get("format") != SAVE_FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise _not_saved(path, f"its save format is {found!r}, and this lpbook reads format {SAVE_FORMAT}")
    try:
        module, _, qualname = header["class"].partition(":")
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        dict(header["params"])
    except (KeyError, AttributeError, TypeError, ValueError, ImportError) as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "torch":  # a neural learner, and no torch here
            raise
        raise _not_saved(path, f"its header is damaged ({type(exc).__name__}: {exc})") from None
    if not (isinstance(found, type) and issubclass(found, Learner)):
        raise _not_saved(path, f"its header names {header['class']!r}, which is not a learner")
    return header, arrays, found


def _param_json(value):
    """``json.dumps`` fallback for parameters: torch devices as their name."""
    if type(value).__module__.split(".")[0] == "torch":
        return str(value)
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} cannot be saved as JSON")


class Learner:
    """Base class: stores and checks ``v, s, L, seed``, checks inputs, and gives every
    learner the scikit-learn conventions and ``save``/``load`` (see the module docstring).

    Subclasses implement :meth:`fit`, :meth:`transform` and :attr:`levels`;
    ``uses_labels`` says whether :meth:`fit` needs labels, and ``min_samples``
    is the fewest training samples :meth:`fit` accepts.
    """

    name: ClassVar[str] = ""
    uses_labels: ClassVar[bool] = False
    #: The fewest samples ``fit`` accepts: one string shows no variation between strings to learn from
    #: (and the neural learners hold out a validation split of at least one string).
    min_samples: ClassVar[int] = 2
    #: Each option's valid values in words, for ``lpbook learners`` (:func:`describe`); a subclass
    #: adds its own options to those of its bases.
    option_values: ClassVar[dict[str, str]] = {}
    #: The options that say how a fit runs, not what it computes (``device``, ``threads``, ``progress``):
    #: they are left out of a result's identity (a sweep point's key, a sidecar's settings; see
    #: :func:`split_runtime`), so a sweep started on a GPU resumes on a CPU.
    runtime_params: ClassVar[frozenset[str]] = frozenset()
    #: Parameters that a saved file may name and that this class no longer takes: :meth:`load` drops
    #: them. Only a parameter that never changed what a fit computes may be listed here.
    retired_params: ClassVar[frozenset[str]] = frozenset()
    #: Parameters added after some files were saved, each with the value that every fit had before it:
    #: :meth:`load` gives a file that does not name one this value, whatever the default is now.
    introduced_params: ClassVar[dict[str, object]] = {}

    @classmethod
    def computed_defaults(cls) -> dict[str, str]:
        """The defaults that ``__init__`` computes (an option whose signature default is ``None``), in
        words such as ``"v"``, for ``lpbook learners`` (:func:`describe`). None by default."""
        return {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)

    def __init__(self, v, s, L, seed=0):
        self.v = check_int("v", v, minimum=2)
        self.s = check_int("s", s, minimum=2)
        self.L = check_int("L", L, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)

    @property
    def levels(self) -> tuple[int, ...] | None:
        """The levels that :meth:`transform` returns, in increasing order.

        ``None`` means that the learner does not say; the sweeps then cannot
        refuse a learner that recovers no level before running it.
        """
        return None

    # ------------------------------------------------ scikit-learn conventions
    def get_params(self, deep: bool = True) -> dict:
        """The arguments this learner was built with (defaults filled in), as given."""
        return dict(self.__dict__.get("_params", {}))

    def set_params(self, **params) -> Learner:
        """Rebuild this learner with ``params`` changed; the checks of ``__init__`` apply, and any fit is forgotten."""
        current = self.get_params()
        unknown = params.keys() - current.keys()
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameter {', '.join(sorted(unknown))}; "
                f"its parameters are {', '.join(current)}"
            )
        rebuilt = type(self)(**(current | params))  # raises, leaving self as it was, on a bad value
        self.__dict__.clear()
        self.__dict__.update(rebuilt.__dict__)
        return self

    def __repr__(self) -> str:
        params, defaults = self.get_params(), self.__dict__.get("_defaults", {})
        shown = [
            f"{name}={value!r}" for name, value in params.items()
            if name in _SHOWN or _differs(value, defaults.get(name, inspect.Parameter.empty))
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------ protocol
    def fit(self, tokens, labels=None) -> Learner:
        raise NotImplementedError

    def transform(self, tokens) -> dict[int, np.ndarray]:
        raise NotImplementedError

    def fit_transform(self, tokens, labels=None) -> dict[int, np.ndarray]:
        return self.fit(tokens, labels).transform(tokens)

    # ------------------------------------------------------------ save, load
    def _build_networks(self) -> dict:
        """Fresh torch networks built from the parameters, keyed by the fitted attribute that holds each.

        The hook of torch learners (see the module docstring); none by default.
        """
        return {}

    def _fitted_state(self) -> dict:
        """The fitted state to save: every public attribute whose name ends in ``_``, networks
        (anything with a ``state_dict``) as ``{name: array}``."""
        state = {}
        for name, value in vars(self).items():
            if name.endswith("_") and not name.startswith("_"):
                if hasattr(value, "state_dict"):
                    value = {key: tensor.detach().cpu().numpy() for key, tensor in value.state_dict().items()}
                elif hasattr(value, "get_state"):  # an object that saves itself, rebuilt by its from_state
                    cls = type(value)
                    value = {OBJECT_KEY: f"{cls.__module__}:{cls.__qualname__}", "state": value.get_state()}
                state[name] = value
        return state

    def _restore_state(self, state: dict) -> None:
        """Set the fitted state that :meth:`_fitted_state` returned: one attribute per key, the
        networks of :meth:`_build_networks` rebuilt, loaded and moved to ``self.device``."""
        networks = self._build_networks() if state else {}
        for name, value in state.items():
            if name in networks:
                import torch  # only torch learners have networks

                network = networks[name]
                network.load_state_dict({key: torch.from_numpy(array) for key, array in value.items()})
                value = network.to(self.device).eval()
            elif isinstance(value, dict) and OBJECT_KEY in value:
                value = _saved_class(value[OBJECT_KEY]).from_state(value["state"])
            setattr(self, name, value)

    def save(self, path) -> None:
        """Write this learner (class, parameters, fitted state) to the file ``path`` (see the module docstring).

        The file is written whole or not at all: it replaces ``path`` only once complete.
        """
        arrays: dict[str, np.ndarray] = {}
        cls = type(self)
        header = {
            "format": SAVE_FORMAT,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "params": json.loads(json.dumps(self.get_params(), default=_param_json)),
            # JSON writes tuples and lists alike: record which parameters were lists, so that
            # load gives back the arguments as they were given (get_params compares equal)
            "list_params": sorted(name for name, value in self.get_params().items() if isinstance(value, list)),
            "state": _pack(self._fitted_state(), arrays, "the fitted state"),
        }
        with atomic_write(path) as file:  # an interrupted save leaves the previous file, or none
            np.savez(file, __header__=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path, **params) -> Learner:
        """The learner saved in ``path``; ``params`` override saved parameters (e.g. ``device="cpu"``).

        Called on a subclass, checks that the saved learner is one (``TypeError``
        if not). A file that :meth:`save` did not write, or a damaged one,
        raises one ``ValueError`` that names the file and says what is wrong.
        """
        header, arrays, found = _read_saved(path)
        if not issubclass(found, cls):
            raise TypeError(f"{os.fspath(path)!r} holds a {found.__qualname__}, not a {cls.__name__}")
        lists = set(header.get("list_params", ()))
        saved = {name: tuple(value) if isinstance(value, list) and name not in lists else value
                 for name, value in header["params"].items() if name not in found.retired_params}
        learner = found(**(found.introduced_params | saved | params))
        try:
            learner._restore_state(_unpack(header["state"], arrays))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: torch's load_state_dict
            raise _not_saved(path, f"its fitted state is damaged ({type(exc).__name__}: {exc})") from None
        return learner

    # ------------------------------------------------------------- checks
    def _check_tokens(self, tokens, *, minimum: int = 1, action: str = "tokens") -> np.ndarray:
        """``tokens`` (any integer array or nested list) checked, of shape ``(P, s**L)`` with ``P >= minimum``
        and values in ``[0, v)``, returned in ``smallest_uint(v)`` so that every dtype gives the same codes.
        ``action`` names, in the message for too few samples, what needs them."""
        tokens = check_int_array("tokens", tokens, ndim=2)
        if tokens.shape[1] != self.s**self.L:
            raise ValueError(
                f"tokens must have shape (P, s**L = {self.s**self.L}) for s={self.s}, L={self.L}, "
                f"got {tokens.shape}"
            )
        if tokens.shape[0] < minimum:
            needs = "must hold at least one sample" if minimum == 1 else f"needs at least {minimum} samples"
            raise ValueError(f"{action} {needs}, got {tokens.shape[0]}")
        check_range("tokens", tokens, 0, self.v)
        return tokens.astype(smallest_uint(self.v), copy=False)

    def _check_labels(self, labels, P: int, n_classes: int | None = None) -> np.ndarray:
        """``labels`` as an integer array of shape ``(P,)`` (values in ``[0, n_classes)`` if given, else ``>= 0``)."""
        if labels is None:
            raise ValueError(f"{type(self).__name__}.fit needs labels")
        labels = check_int_array("labels", labels, ndim=1)
        if labels.shape[0] != P:
            raise ValueError(f"labels must have shape (P,) = ({P},) to match tokens, got {labels.shape}")
        check_range("labels", labels, 0, np.iinfo(np.int64).max if n_classes is None else n_classes)
        return labels

    def _fit_inputs(self, tokens, labels) -> tuple[np.ndarray, np.ndarray | None]:
        """``(tokens, labels)`` checked by the one rule of the module docstring.

        ``labels`` comes back ``None`` for a learner that does not use them.
        """
        tokens = self._check_tokens(tokens, minimum=self.min_samples, action=f"{type(self).__name__}.fit")
        if labels is None and not self.uses_labels:
            return tokens, None
        n_classes = getattr(self, "n_classes", None) if self.uses_labels else None
        labels = self._check_labels(labels, tokens.shape[0], n_classes)
        return tokens, labels if self.uses_labels else None

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(tokens) first")


def parameters(cls: type[Learner]) -> dict:
    """The parameters of learner class ``cls`` and their defaults, over every ``__init__`` of its MRO.

    Required parameters (``v, s, L``) map to ``inspect.Parameter.empty``.
    """
    params = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                params[p.name] = p.default
    return params


def split_runtime(cls: type[Learner], options) -> tuple[dict, dict]:
    """``options`` of learner class ``cls`` split into ``(identity, runtime)``: those that say what a fit computes,
    and its :attr:`Learner.runtime_params` (how it runs). Both are new dicts; ``None`` is ``{}``."""
    options = dict(options or {})
    runtime = {name: options.pop(name) for name in list(options) if name in cls.runtime_params}
    return options, runtime


def _shown(default) -> str:
    """A default as ``--option KEY=VALUE`` writes it: JSON (``true``, ``[0.2, 0.95]``), strings quoted as in Python."""
    if isinstance(default, str):
        return repr(default)
    try:
        return json.dumps(default)
    except TypeError:
        return repr(default)


def option_values(cls: type[Learner]) -> dict[str, str]:
    """The valid values of the options of learner class ``cls``, in words: its ``option_values`` and its bases'."""
    values: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        values.update(klass.__dict__.get("option_values", {}))
    return values


def describe() -> list[dict]:
    """Every registered learner (see :func:`available`) as ``{name, cls, labels, options}``.

    ``options`` maps each parameter other than ``v, s, L, seed`` to
    ``{"default": text, "values": text}``: the default as it is shown (the
    signature's default as ``--option`` reads it, JSON but for strings, which
    are quoted as in Python; or for a default that ``__init__`` computes, its
    :meth:`Learner.computed_defaults` text such as ``"v"``), and the valid
    values in words (:func:`option_values`).
    """
    entries = []
    for name in available():
        cls = REGISTRY[name]
        values, computed = option_values(cls), cls.computed_defaults()
        options = {
            key: {"default": computed.get(key, _shown(default)), "values": values.get(key, "")}
            for key, default in parameters(cls).items() if key not in _SHOWN
        }
        entries.append(dict(name=name, cls=cls.__name__, labels=cls.uses_labels, options=options))
    return entries
