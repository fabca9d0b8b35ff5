"""The protocol that every learner of the book implements.

A learner is built from the grammar's shape and a seed, with its own options as
keywords, ``Learner(v=..., s=..., L=..., seed=0, **options)``, and offers

- ``fit(tokens, labels=None) -> self``: learn from training tokens of shape
  ``(P, s**L)`` (and root labels of shape ``(P,)`` for learners that use them);
- ``transform(tokens) -> {level: codes}``: for each level it recovers, codes of
  shape ``(P, s**(L - level))`` holding ints in ``[0, v)`` (in ``[0, n_classes)``
  at the root ``level == L``).

Metrics, sweeps and plots use only this protocol. Learners are deterministic
given ``seed``. :class:`Learner` holds the shared argument checks; concrete
learners register themselves under a short name with :func:`register`, which
is how the command line finds them.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import numpy as np

from ._validate import check_int, check_int_array, check_range

#: Learners by their command-line name, filled by :func:`register`.
REGISTRY: dict[str, type[Learner]] = {}

#: The modules that define learners; :func:`get` imports them on demand.
#: ``lpbook.neural`` needs torch, an optional dependency.
LEARNER_MODULES = ("lpbook.baselines", "lpbook.ilc", "lpbook.neural")


def register(name: str):
    """Class decorator: make a learner available as ``name`` (e.g. on the command line)."""

    def decorate(cls):
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"a learner is already registered as {name!r}")
        REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorate


def get(name: str) -> type[Learner]:
    """The learner registered as ``name``, importing the learner modules if needed.

    Raises ``ValueError`` listing the registered names when there is none.
    """
    if name not in REGISTRY:
        for module in LEARNER_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name != "torch":
                    raise
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise ValueError(f"learner must be a registered name (registered: {known}), got {name!r}")
    return REGISTRY[name]


class Learner:
    """Base class: stores and checks ``v, s, L, seed``, and checks inputs.

    Subclasses implement :meth:`fit` and :meth:`transform`; ``uses_labels``
    says whether :meth:`fit` needs labels.
    """

    name: ClassVar[str] = ""
    uses_labels: ClassVar[bool] = False

    def __init__(self, v, s, L, seed=0):
        self.v = check_int("v", v, minimum=2)
        self.s = check_int("s", s, minimum=2)
        self.L = check_int("L", L, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(v={self.v}, s={self.s}, L={self.L}, seed={self.seed})"

    def fit(self, tokens, labels=None) -> Learner:
        raise NotImplementedError

    def transform(self, tokens) -> dict[int, np.ndarray]:
        raise NotImplementedError

    def fit_transform(self, tokens, labels=None) -> dict[int, np.ndarray]:
        return self.fit(tokens, labels).transform(tokens)

    # ------------------------------------------------------------- checks
    def _check_tokens(self, tokens) -> np.ndarray:
        """``tokens`` as an integer array of shape ``(P, s**L)`` with values in ``[0, v)``."""
        tokens = check_int_array("tokens", tokens, ndim=2)
        if tokens.shape[1] != self.s**self.L:
            raise ValueError(
                f"tokens must have shape (P, s**L = {self.s**self.L}) for s={self.s}, L={self.L}, "
                f"got {tokens.shape}"
            )
        if tokens.shape[0] == 0:
            raise ValueError("tokens must hold at least one sample")
        check_range("tokens", tokens, 0, self.v)
        return tokens

    def _check_labels(self, labels, P: int, n_classes: int | None = None) -> np.ndarray:
        """``labels`` as an integer array of shape ``(P,)`` (values in ``[0, n_classes)`` if given)."""
        if labels is None:
            raise ValueError(f"{type(self).__name__}.fit needs labels")
        labels = check_int_array("labels", labels, ndim=1)
        if labels.shape[0] != P:
            raise ValueError(f"labels must have shape (P,) = ({P},) to match tokens, got {labels.shape}")
        check_range("labels", labels, 0, np.iinfo(np.int64).max if n_classes is None else n_classes)
        return labels

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(tokens) first")

